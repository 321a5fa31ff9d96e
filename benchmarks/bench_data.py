"""Data preparation throughput (``make bench-data``): build rate against the decode+encode ceiling.

Measures, on the shared real-data slice (``../shared/data`` or ``$HMER_SHARED_DATA``):

* the full build (read, fingerprint, PNG-encode, write parquet) of the CROHME 2014 test bitmaps
  (986, extracted from the tarball to a temporary folder) and of the HME100K sample, in records/s;
* the ceiling: decoding each of the same image files and encoding it to PNG, nothing else;
* the time to derive Tree-CoT and counting records for the 8,835 CROHME training captions;
* the tokeniser's rate on already tokenised captions (passed through) and on raw im2latex formulas;
* rendering throughput of the ``synthetic`` source against a bare render loop (``bench_render``).

Targets: the build at least half the ceiling, a CROHME-sized set (8,835 records) under 30 s on
2 cores, the auxiliary tasks under 10 s. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import tarfile
import tempfile
import time
from pathlib import Path

from PIL import Image

from data_prep.build import build_dataset, encode_png
from data_prep.build.recipe import parse_recipe
from data_prep.contract import main_record

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("HMER_SHARED_DATA", REPO.parent / "shared" / "data"))
CROHME_TRAIN_SIZE = 8835


def ceiling(files: list[Path]) -> float:
    """Records/s of decode + PNG encode alone over ``files``."""
    start = time.perf_counter()
    for path in files:
        with Image.open(path) as image:
            image.load()
            encode_png(image)
    return len(files) / (time.perf_counter() - start)


def build_rate(name: str, source: dict, out: Path, num_proc: int) -> tuple[int, float]:
    recipe = parse_recipe(
        {"output_dir": str(out), "shard_size": 2000, "test_sets": [{"name": name, **source}]}, f"bench:{name}"
    )
    start = time.perf_counter()
    build_dataset(recipe, out, num_proc=num_proc, fresh=True, progress=False)
    seconds = time.perf_counter() - start
    import json

    rows = json.loads((out / "report.json").read_text())["splits"][name]["rows"]
    return rows, rows / seconds


def aux_tasks_seconds(captions: Path) -> tuple[int, float]:
    from data_prep.tasks import AUX_TASK_BUILDERS

    records = []
    for line in captions.read_text(encoding="utf-8").split("\n"):
        name, _, label = line.partition("\t")
        if label.strip():
            records.append(main_record(name, "crohme", "train", None, label))
    start = time.perf_counter()
    made = 0
    for record in records:
        for builder in AUX_TASK_BUILDERS.values():
            try:
                builder(record)
                made += 1
            except ValueError:
                pass
    return made, time.perf_counter() - start


def tokenizer_rates(captions: Path, formulas: Path) -> tuple[float, float]:
    """Formulas/s of ``tokenize_latex`` on tokenised captions and on raw im2latex formulas."""
    from data_prep.latex import LatexError, tokenize_latex

    rates = []
    for lines in (
        [
            line.partition("\t")[2]
            for line in captions.read_text(encoding="utf-8").split("\n")
            if line.strip()
        ],
        [line for line in formulas.read_bytes().decode("utf-8").split("\n") if line.strip()],
    ):
        start = time.perf_counter()
        for line in lines:
            try:
                tokenize_latex(line)
            except LatexError:
                pass
        rates.append(len(lines) / (time.perf_counter() - start))
    return rates[0], rates[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-proc", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from data_prep.contract import record_features

    record_features()  # import `datasets` once, outside the timings
    if not SHARED.is_dir():
        raise SystemExit(f"shared data slice not found at {SHARED} (set HMER_SHARED_DATA)")
    crohme = SHARED / "crohme"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with tarfile.open(crohme / "crohme2014_test_images.tar.gz") as tar:
            tar.extractall(tmp / "crohme2014", filter="data")
        images = tmp / "crohme2014" / "off_image_test"
        cases = {
            "crohme2014": (
                sorted(images.glob("*.bmp")),
                {
                    "reader": "crohme",
                    "root": str(tmp / "crohme2014"),
                    "split": "2014",
                    "options": {
                        "caption_file": str(crohme / "crohme2014_test_caption_comer.txt"),
                        "images_dir": str(images),
                        "edition": "comer",
                    },
                },
            ),
            "hme100k_sample": (
                sorted((SHARED / "hme100k" / "train" / "train_images").glob("*.jpg")),
                {"reader": "hme100k", "root": str(SHARED / "hme100k"), "split": "train"},
            ),
        }
        print(f"{'set':<16}{'records':>9}{'build rec/s':>13}{'ceiling rec/s':>15}{'ratio':>8}")
        crohme_rate = None
        for name, (files, source) in cases.items():
            top = ceiling(files)
            rows, rate = build_rate(name, source, tmp / f"out-{name}", args.num_proc)
            crohme_rate = crohme_rate or rate
            print(f"{name:<16}{rows:>9}{rate:>13.0f}{top:>15.0f}{rate / top:>8.2f}")
        print(
            f"CROHME-sized build ({CROHME_TRAIN_SIZE} records) at the CROHME 2014 rate: "
            f"{CROHME_TRAIN_SIZE / crohme_rate:.1f} s (target < 30 s), num_proc={args.num_proc}"
        )
    try:
        made, seconds = aux_tasks_seconds(crohme / "crohme_train_caption_wap.txt")
        print(
            f"tree_cot + counting for the CROHME training captions: {made} records in {seconds:.1f} s (target < 10 s)"
        )
    except ImportError as err:
        print(f"auxiliary tasks not measured: {err}")
    tokenised, raw = tokenizer_rates(
        crohme / "crohme_train_caption_wap.txt", SHARED / "im2latex" / "im2markup_sample" / "formulas.lst"
    )
    print(
        f"tokenize_latex: {tokenised:,.0f} tokenised captions/s (passed through), {raw:,.0f} raw im2latex formulas/s"
    )
    from benchmarks.bench_render import run as bench_render

    bench_render(SHARED, 2000, args.num_proc)


if __name__ == "__main__":
    main()
