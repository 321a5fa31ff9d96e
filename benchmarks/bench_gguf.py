"""GGUF through llama.cpp's own runtime: do its greedy answers match the HF model's?

1. llama.cpp's sources from the ``llama-cpp-python`` sdist on PyPI (the same pinned version whose
   converter ``make export FORMAT=gguf`` uses; nothing is downloaded from elsewhere), unpacked
   into ``.cache/llama.cpp/src-<version>``, and built once with CMake (``llama-mtmd-cli`` and
   ``llama-quantize``, into ``.cache/llama.cpp/build-<version>``; ~11 min on 2 cores),
2. the model converted to GGUF (``train.export.gguf.convert``: text model + mmproj),
3. every held-out image pre-sized the project's way (``train.export.gguf.presize``, the bounds read
   back from the GGUF) and read by ``llama-mtmd-cli --temp 0`` with the contract's main prompt,
4. the same images through ``eval.evaluate`` (HF backend, greedy), and the answers compared.

    python -m benchmarks.bench_gguf                  # the demo's reader (run `make demo` first)
    python -m benchmarks.bench_gguf --model M --data-dir D --split S [--limit N] [--outtype q8_0]

Writes ``benchmarks/results/gguf_llama_cpp.json``: agreement, both ExpRates, build and run times,
with the command, commit and machine. A benchmark, not a test: it needs a C++ toolchain and CMake.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.learning.results import REPO, provenance, start_commit

CACHE = REPO / ".cache" / "llama.cpp"
RESULTS = REPO / "benchmarks" / "results" / "gguf_llama_cpp.json"
TARGETS = ("llama-mtmd-cli", "llama-quantize")


class BenchError(RuntimeError):
    """The benchmark cannot go on (one line for the user)."""


def llama_cpp_sources() -> Path:
    """llama.cpp's full sources from the pinned sdist, unpacked once (atomically)."""
    from train.export.gguf import LLAMA_CPP_PYTHON_VERSION, download_sdist, extract_vendor

    target = CACHE / f"src-{LLAMA_CPP_PYTHON_VERSION}"
    if (target / "CMakeLists.txt").is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        print(
            f"downloading llama-cpp-python {LLAMA_CPP_PYTHON_VERSION} (sdist, PyPI) for llama.cpp's sources"
        )
        staging = extract_vendor(download_sdist(tmp), Path(tmp) / "src", keep=None)
        os.replace(staging, target)
    return target


def build_llama_cpp(jobs: int) -> dict[str, Any]:
    """CMake configure + build of :data:`TARGETS` (skipped when built); their paths and the time."""
    from train.export.gguf import LLAMA_CPP_PYTHON_VERSION

    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            raise BenchError(f"building llama.cpp needs {tool} on PATH (apt install cmake g++)")
    source = llama_cpp_sources()
    build = CACHE / f"build-{LLAMA_CPP_PYTHON_VERSION}"
    binaries = {name: build / "bin" / name for name in TARGETS}
    started = time.time()
    if not all(path.is_file() for path in binaries.values()):
        print(f"building llama.cpp ({', '.join(TARGETS)}) in {build}: about 11 minutes on 2 cores")
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        configure = [
            "cmake", "-S", str(source), "-B", str(build), *generator, "-DCMAKE_BUILD_TYPE=Release",
            "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF",
            "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_OPENSSL=OFF", "-DGGML_NATIVE=ON", "-DBUILD_SHARED_LIBS=OFF",
        ]  # fmt: skip
        subprocess.run(configure, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", str(build), "--target", *TARGETS, "-j", str(jobs)], check=True)
    return {
        "binaries": {k: str(v) for k, v in binaries.items()},
        "build_seconds": round(time.time() - started, 1),
    }


def read_answer(stdout: str) -> str:
    """The generated text of ``llama-mtmd-cli`` (its logs go to stderr)."""
    return stdout.strip()


def image_token_flags(min_pixels: int, max_pixels: int) -> list[str]:
    """llama-mtmd-cli's image-token bounds for the model's pixel bounds (one token per 28 x 28
    pixels). Without them llama.cpp scales every image up to its own minimum token count (the
    pre-sized image is resized again and the answers change: 0/132 agreed with HF)."""
    from train.export.gguf import image_token_bounds

    low, high = image_token_bounds(min_pixels, max_pixels)
    return ["--image-min-tokens", str(low), "--image-max-tokens", str(high)]


#: Runs of one image at most (see :func:`run_llama`).
MAX_RUNS = 5


def run_llama(
    cli: Path, model: Path, mmproj: Path, image: Path, prompt: str, max_tokens: int, bounds: tuple[int, int]
) -> tuple[str, int]:
    """``(answer, runs)``. llama-mtmd-cli prints through llama.cpp's asynchronous logger, which now
    and then loses the tail of the output at exit (measured: 1 to 3 of 16 identical runs printed
    ``9`` or nothing instead of ``9 6``; decoding itself is deterministic). A lost tail leaves a
    prefix of the answer, so the image is run until one output is seen twice (at most
    :data:`MAX_RUNS` times) and the longest output is the answer."""
    command = [
        str(cli), "-m", str(model), "--mmproj", str(mmproj), "--image", str(image), "-p", prompt,
        "--temp", "0", "-n", str(max_tokens), "-t", "1", "--no-warmup", *image_token_flags(*bounds),
    ]  # fmt: skip
    outputs: list[str] = []
    runs = 0
    while runs < MAX_RUNS:
        runs += 1
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise BenchError(f"llama-mtmd-cli failed on {image.name}: {result.stderr.strip()[-800:]}")
        answer = read_answer(result.stdout)
        if answer in outputs:
            break
        outputs.append(answer)
    longest = max(outputs, key=len)
    if not all(longest.startswith(o) for o in outputs):
        raise BenchError(f"llama-mtmd-cli gave different answers on {image.name}: {outputs}")
    return longest, runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_gguf", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=REPO / "outputs" / "demo" / "learning" / "model",
        help="a merged model folder",
    )
    parser.add_argument("--data-dir", type=Path, default=REPO / "outputs" / "data" / "rendered_demo")
    parser.add_argument("--split", default="rendered_heldout")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument(
        "--outtype", default="f16", help="GGUF type of the text model (f16, q8_0, Q4_K_M ...)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel compile jobs")
    parser.add_argument("--output-dir", type=Path, default=REPO / "outputs" / "bench" / "gguf")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    from data_prep.contract import MAIN_PROMPT, extract_latex, normalize_answer
    from data_prep.dataset import load_split
    from data_prep.io_utils import write_json_atomic
    from eval import evaluate
    from eval.scoring.metrics import percent
    from train.export.gguf import convert, fetch, gguf_bounds, presize

    started, git = time.time(), start_commit()
    if not (args.model / "config.json").is_file():
        raise BenchError(
            f"{args.model} is not a model folder: run `make demo` first (it trains outputs/demo/learning/model)"
        )
    build = build_llama_cpp(args.jobs)
    fetch()
    out = args.output_dir
    gguf_dir = out / f"gguf-{args.outtype}"
    print(f"converting {args.model} to GGUF ({args.outtype} + f16 mmproj) -> {gguf_dir}")
    files = convert(args.model, gguf_dir, args.outtype, overwrite=True)
    bounds = gguf_bounds(files["mmproj"])
    rows = load_split(args.data_dir, args.split)
    if args.limit:
        rows = rows.select(range(min(args.limit, len(rows))))
    print(f"HF answers on {len(rows)} images (eval.evaluate, greedy)")
    hf_dir = out / "hf"
    shutil.rmtree(hf_dir, ignore_errors=True)
    eval_args = [
        "--model", str(args.model), "--data-dir", str(args.data_dir), "--sets", args.split, "--backend", "hf",
        "--max-new-tokens", str(args.max_new_tokens), "--output-dir", str(hf_dir), "--no-progress",
    ] + (["--limit", str(args.limit)] if args.limit else [])  # fmt: skip
    if evaluate.main(eval_args) != 0:
        raise BenchError("the HF evaluation failed (see the messages above)")
    from data_prep.predictions import read_prediction_rows

    hf = {r.id: r for r in read_prediction_rows(hf_dir / f"{args.split}.main.jsonl")}
    images = out / "presized"
    images.mkdir(parents=True, exist_ok=True)
    cli = Path(build["binaries"]["llama-mtmd-cli"])
    agree, exact_gguf, items, extra_runs = 0, 0, [], 0
    llama_started = time.time()
    from tqdm import tqdm

    for row in tqdm(rows, desc="llama-mtmd-cli", unit="image"):
        item_id = row["id"]
        raw = images / f"{item_id}.raw.png"
        row["image"].save(raw)  # a PIL image: the split's Image feature decodes it
        sized = images / f"{item_id}.png"
        presize(raw, sized, *bounds)
        answer, runs = run_llama(
            cli, files["model"], files["mmproj"], sized, MAIN_PROMPT, args.max_new_tokens, bounds
        )
        extra_runs += runs - 2
        latex = normalize_answer(extract_latex(answer))
        hf_pred = hf[item_id].pred if item_id in hf else None
        same = hf_pred is not None and latex.split() == hf_pred.split()
        agree += same
        exact_gguf += latex.split() == str(row["answer"]).split()
        items.append({"id": item_id, "gt": row["answer"], "hf": hf_pred, "gguf": latex, "same": same})
    n = len(items)
    summary = {
        "benchmark": "gguf_llama_cpp",
        "model": str(args.model),
        "data": {"dir": str(args.data_dir), "split": args.split},
        "outtype": args.outtype,
        "image_bounds": {"min_pixels": bounds[0], "max_pixels": bounds[1]},
        "n": n,
        "agree": agree,
        "agree_percent": percent(agree, n),
        "exprate_hf": percent(sum(r.distance == 0 for r in hf.values()), len(hf)),
        "exprate_gguf": percent(exact_gguf, n),
        "llama_seconds_per_image": round((time.time() - llama_started) / max(n, 1), 3),
        "llama_runs_beyond_two": extra_runs,
        **build,
        "disagreements": [i for i in items if not i["same"]][:20],
        **provenance("benchmarks.bench_gguf", args.argv, started, time.time(), git),
    }
    write_json_atomic(args.results, summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    from train.export.gguf import GGUFError

    try:
        summary = run(parse_args(argv))
    except (BenchError, GGUFError, subprocess.CalledProcessError) as err:
        print(f"bench-gguf: {err}")
        return 1
    print(
        f"bench-gguf: llama.cpp agrees with HF on {summary['agree']}/{summary['n']} images "
        f"({summary['agree_percent']:.2f}%); ExpRate HF {summary['exprate_hf']:.2f}, "
        f"GGUF {summary['exprate_gguf']:.2f}; {summary['llama_seconds_per_image']} s an image"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
