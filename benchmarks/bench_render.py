"""Rendering throughput (part of ``make bench-data``): the ``synthetic`` source's build rate against a
bare render loop, in rendered formulas per second per core.

Formulas: the first ``--count`` CROHME training captions (``../shared/data``) when present, else the
generator's. The bare loop calls :func:`data_prep.render.engine.render` on the same formulas and
styles, nothing else; the build adds the PNG encoding, fingerprints, the parquet shards and the
bookkeeping. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from data_prep.build import build_dataset
from data_prep.build.recipe import parse_recipe
from data_prep.rejects import Rejects
from data_prep.render.corpus import iter_corpus
from data_prep.render.engine import render
from data_prep.render.renderers import RenderError
from data_prep.render.style import StyleSpace

REPO = Path(__file__).resolve().parent.parent


def corpus_spec(shared: Path, count: int) -> tuple[dict, Path]:
    captions = shared / "crohme" / "crohme_train_caption_wap.txt"
    if captions.is_file():
        lines = captions.read_text(encoding="utf-8").split("\n")[:count]
        tmp = Path(tempfile.mkdtemp(prefix="bench-render-"))
        (tmp / "captions.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return {"caption_file": "captions.txt"}, tmp
    return {"generator": {}, "count": count, "seed": 0}, REPO


def bare_rate(corpus: dict, root: Path, options: dict) -> tuple[int, int, float]:
    """(rendered, failed, formulas/s) of the render loop alone."""
    space = StyleSpace.from_options(options.get("style", {}))
    formulas = list(iter_corpus(corpus, root, "bench", Rejects(log=False)))
    start = time.perf_counter()
    done = failed = 0
    for formula_id, latex in formulas:
        try:
            render(latex, space.sample(0, f"bench-{formula_id}-r0"))
            done += 1
        except RenderError:
            failed += 1
    return done, failed, len(formulas) / (time.perf_counter() - start)


def build_rate(corpus: dict, root: Path, options: dict, num_proc: int) -> tuple[int, float, dict]:
    with tempfile.TemporaryDirectory() as out:
        source = {
            "reader": "synthetic",
            "root": str(root),
            "split": "bench",
            "options": {"corpus": corpus, **options},
        }
        recipe = parse_recipe(
            {"output_dir": out, "max_reject_fraction": 1.0, "train": [{"name": "rendered", **source}]},
            "bench:render",
        )
        start = time.perf_counter()
        build_dataset(recipe, out, num_proc=num_proc, fresh=True, progress=False)
        seconds = time.perf_counter() - start
        report = json.loads((Path(out) / "report.json").read_text())
    split = report["splits"]["train"]
    rows = split["rows"]
    reasons = {r["reason"]: r["count"] for r in split["rejected_input"]["by_source_and_reason"]}
    return rows, rows / seconds, reasons


def run(shared: Path, count: int, num_proc: int) -> None:
    corpus, root = corpus_spec(shared, count)
    options = {"renderings": 1, "style": {"augment": 0.5}}
    done, failed, bare = bare_rate(corpus, root, {"style": {"augment": 0.5}})
    rows, rate, reasons = build_rate(corpus, root, options, num_proc)
    kind = "CROHME training captions" if "caption_file" in corpus else "generated formulas"
    print(f"rendering {count} {kind} (mathtext, half augmented):")
    print(f"  bare render loop: {bare:.0f} formulas/s on 1 core ({done} drawn, {failed} refused)")
    print(
        f"  synthetic build:  {rate:.0f} formulas/s with num_proc={num_proc} = {rate / num_proc:.0f} per core "
        f"({rows} rows; ratio to the bare loop per core {rate / num_proc / bare:.2f}); rejects {reasons}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--num-proc", type=int, default=1)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    run(args.shared, args.count, args.num_proc)


if __name__ == "__main__":
    main()
