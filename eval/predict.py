"""LaTeX for a few images, from the command line or a script.

    python -m eval.predict --model exports/merged formula.png scan.jpg
    python -m eval.predict --model outputs/sft samples/crohme2014_test/off_image_test --jsonl preds.jsonl

Each image is read safely (``data_prep.images.read_image``: fully decoded, pickles refused), inverted
when it is white ink on black (CROHME bitmaps; ``--invert auto`` asks ``data_prep.images.mostly_dark``),
then handed to an inference backend (``eval.backends``), which prepares it exactly as in training
(``contract.prepare_image``) and asks the task's prompt. Output: ``NAME<TAB>latex`` per image on
stdout, or JSON lines (``--jsonl``). Folders are read in sorted order. An image that cannot be read
is reported on stderr with the reason, the others are still predicted, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from data_prep.contract import TASK_COUNTING, TASK_MAIN, TASK_TREE_COT, extract_latex, prompt_for
from data_prep.images import ImageError, invert, mostly_dark, on_white, read_image
from data_prep.io_utils import write_text_atomic
from eval.predictions import ERROR_EMPTY_GENERATION
from train.modeling import ModelLoadError

logger = logging.getLogger(__name__)

#: Tasks whose prompt needs only the image (the error-driven ones also need a prediction).
PREDICT_TASKS = (TASK_MAIN, TASK_TREE_COT, TASK_COUNTING)
INVERT_MODES = ("auto", "yes", "no")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclasses.dataclass
class Prediction:
    """One image's result; field names follow the predictions file of ``eval.predictions``."""

    id: str
    image_path: str
    task: str
    pred: str = ""
    raw_output: str | None = None
    inverted: bool = False
    error: str | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)


def prepare_for_model(image: Image.Image, invert_mode: str = "auto") -> tuple[Image.Image, bool]:
    """The image with dark ink on a light page, and whether it was inverted."""
    if invert_mode not in INVERT_MODES:
        raise ValueError(f"invert must be one of {', '.join(INVERT_MODES)}, not {invert_mode!r}")
    flip = invert_mode == "yes" or (invert_mode == "auto" and mostly_dark(image))
    return (invert(image) if flip else on_white(image)), flip


def list_images(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given (a missing one is kept, to be reported); folders expanded to their images, sorted."""
    paths: list[Path] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                logger.warning("no images (%s) in %s", ", ".join(IMAGE_SUFFIXES), item)
            paths.extend(found)
        else:
            paths.append(item)
    return paths


def predict_paths(
    paths: Sequence[str | Path],
    backend: Any,
    *,
    task: str = TASK_MAIN,
    invert_mode: str = "auto",
    batch_size: int = 8,
    progress: bool = False,
) -> Iterable[Prediction]:
    """Yield one :class:`Prediction` per path, in order; failures carry ``error`` and no LaTeX.

    ``backend`` is an ``eval.backends.Backend`` (anything with ``generate(images, prompts)``).
    """
    if task not in PREDICT_TASKS:
        raise ValueError(f"predict supports the tasks {', '.join(PREDICT_TASKS)}, not {task!r}")
    prompt = prompt_for(task)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(paths), desc="predict", unit="img", file=sys.stderr)
    for start in range(0, len(paths), batch_size):
        batch = [Path(p) for p in paths[start : start + batch_size]]
        results = [Prediction(id=p.stem, image_path=str(p), task=task) for p in batch]
        ready: list[tuple[int, Image.Image]] = []
        for i, path in enumerate(batch):
            try:
                image, results[i].inverted = prepare_for_model(read_image(path), invert_mode)
                ready.append((i, image))
            except ImageError as err:
                results[i].error = f"{err.reason}: {err.detail}" if err.detail else err.reason
        if ready:
            try:
                texts = backend.generate([im for _, im in ready], [prompt] * len(ready))
            except Exception as err:  # a failed batch must not lose the rest of the run
                logger.exception("generation failed for %s", ", ".join(str(batch[i]) for i, _ in ready))
                for i, _ in ready:
                    results[i].error = f"generation_failed: {type(err).__name__}: {err}"
            else:
                for (i, _), text in zip(ready, texts):
                    results[i].raw_output = text
                    results[i].pred = extract_latex(text)
                    if not results[i].pred:  # as in evaluation: a blank answer is a failure, not LaTeX
                        results[i].error = ERROR_EMPTY_GENERATION
        if bar is not None:
            bar.update(len(batch))
        yield from results
    if bar is not None:
        bar.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m eval.predict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="IMAGE|DIR", help="image files and/or folders of images")
    parser.add_argument("--model", required=True, help="model folder, export, LoRA adapter folder or hub id")
    parser.add_argument("--backend", default="auto", choices=("auto", "hf", "vllm"))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--task", default=TASK_MAIN, choices=PREDICT_TASKS)
    parser.add_argument(
        "--invert",
        default="auto",
        choices=INVERT_MODES,
        help="invert light-on-dark images (auto: when the image is mostly dark)",
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="default: 256 for main, 1024 for tree_cot and counting (their answers are longer)",
    )
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--jsonl", help="write JSON lines here instead of NAME<TAB>latex on stdout")
    return parser


def _write_jsonl(path: Path, rows: list[Prediction]) -> None:
    write_text_atomic(path, "".join(row.to_json() + "\n" for row in rows))


def run(args: argparse.Namespace, backend: Any | None = None) -> int:
    """Predict and print/write; returns the exit status (1 when any image failed)."""
    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    paths = list_images(args.inputs)
    if not paths:
        print("error: no images to predict", file=sys.stderr)
        return 1
    if backend is None:
        from eval.backends import get_backend

        max_new_tokens = args.max_new_tokens or (256 if args.task == TASK_MAIN else 1024)
        backend = get_backend(
            args.backend,
            args.model,
            batch_size=args.batch_size,
            max_new_tokens=max_new_tokens,
            dtype=args.dtype,
        )
    rows: list[Prediction] = []
    try:
        for row in predict_paths(
            paths,
            backend,
            task=args.task,
            invert_mode=args.invert,
            batch_size=args.batch_size,
            progress=len(paths) > args.batch_size,
        ):
            rows.append(row)
            if row.error:
                print(f"error: {row.image_path}: {row.error}", file=sys.stderr)
            elif not args.jsonl:
                print(f"{row.id}\t{row.pred}", flush=True)
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()
    if args.jsonl:
        _write_jsonl(Path(args.jsonl), rows)
        logger.info("%d predictions written to %s", len(rows), args.jsonl)
    failed = sum(1 for r in rows if r.error)
    if failed:
        print(f"{failed} of {len(rows)} images failed", file=sys.stderr)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    args = build_parser().parse_args(argv)
    if argv is None and args.backend == "vllm":  # vLLM may live in its own environment (make install-vllm)
        from eval.backends.vllm_env import run_under_vllm_env

        run_under_vllm_env("eval.predict", sys.argv[1:])
    try:
        return run(args)
    except (ValueError, OSError, ModelLoadError) as err:
        print(f"predict failed: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
