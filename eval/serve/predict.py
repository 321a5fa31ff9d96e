"""LaTeX for a few images, from the command line or a script.

    python -m eval.predict --model exports/merged formula.png scan.jpg
    python -m eval.predict --model outputs/sft samples/crohme2014_test/off_image_test --jsonl preds.jsonl
    python -m eval.predict --config predict.yaml formula.png      # any option from YAML; flags override

Each image is read safely (``data_prep.images.read_image``: fully decoded, pickles refused), inverted
when it is white ink on black (CROHME bitmaps; ``--invert auto|true|false``, decided by ``data_prep.ink.dark_ink_on_light``),
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

from data_prep.contract import TASK_MAIN, extract_latex, prompt_for
from data_prep.images import ImageError, read_image
from data_prep.ink import INVERT_CHOICES, dark_ink_on_light, parse_invert
from data_prep.io_utils import write_text_atomic
from data_prep.tasks.registry import scored_tasks
from eval.backends.base import BackendOptions
from eval.cli import parse_command_line
from eval.scoring.predictions import ERROR_EMPTY_GENERATION
from train.modeling import ModelLoadError

logger = logging.getLogger(__name__)

#: Tasks whose prompt needs only the image (the error-driven ones also need a prediction).
#: Tasks whose prompt needs only the image and whose answer is scored (the task table's).
PREDICT_TASKS = scored_tasks()
#: ``--invert`` as typed: data_prep.ink's one vocabulary.
INVERT_MODES = INVERT_CHOICES
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclasses.dataclass
class Prediction:
    """One image's result; field names follow the predictions file of ``eval.scoring.predictions``."""

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
    return dark_ink_on_light(image, parse_invert(invert_mode))


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


@dataclasses.dataclass
class PredictArgs:
    """What to read and how; the inference options are :class:`eval.backends.BackendOptions`."""

    model: str = dataclasses.field(metadata={"help": "model folder, export, LoRA adapter folder or hub id"})
    #: Image files and folders of images (also the command's positional arguments).
    inputs: list[str] = dataclasses.field(
        default_factory=list, metadata={"help": "image files and/or folders"}
    )
    task: str = dataclasses.field(default=TASK_MAIN, metadata={"choices": PREDICT_TASKS})
    invert: str = dataclasses.field(
        default="auto",
        metadata={"choices": INVERT_MODES, "help": "invert light-on-dark images (auto: when mostly dark)"},
    )
    jsonl: str | None = dataclasses.field(
        default=None, metadata={"help": "write JSON lines here instead of NAME<TAB>latex on stdout"}
    )


def parse_args(argv: Sequence[str] | None = None) -> tuple[PredictArgs, BackendOptions]:
    def images(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "images", nargs="*", metavar="IMAGE|DIR", help="image files and/or folders of images"
        )

    args, options, extra = parse_command_line(
        (PredictArgs, BackendOptions),
        argv,
        prog="python -m eval.predict",
        description=__doc__,
        extend=images,
    )
    return dataclasses.replace(args, inputs=[*args.inputs, *extra.images]), options


def _write_jsonl(path: Path, rows: list[Prediction]) -> None:
    write_text_atomic(path, "".join(row.to_json() + "\n" for row in rows))


def run(args: PredictArgs, options: BackendOptions | None = None, backend: Any | None = None) -> int:
    """Predict and print/write; returns the exit status (1 when any image failed)."""
    options = options or BackendOptions()
    paths = list_images(args.inputs)
    if not paths:
        print("error: no images to predict", file=sys.stderr)
        return 1
    if backend is None:
        from eval.backends import default_max_new_tokens, open_backend

        if options.max_new_tokens is None:
            options = dataclasses.replace(options, max_new_tokens=default_max_new_tokens([args.task]))
        backend = open_backend(options, args.model)
    rows: list[Prediction] = []
    try:
        for row in predict_paths(
            paths,
            backend,
            task=args.task,
            invert_mode=args.invert,
            batch_size=options.batch_size,
            progress=len(paths) > options.batch_size,
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
    args, options = parse_args(argv)
    if argv is None and options.backend == "vllm":  # vLLM may live in its own environment (make install-vllm)
        from eval.backends.vllm_env import run_under_vllm_env

        run_under_vllm_env("eval.predict", sys.argv[1:])
    try:
        return run(args, options)
    except (ValueError, OSError, ModelLoadError) as err:
        print(f"predict failed: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
