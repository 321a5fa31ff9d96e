"""Web demo: draw or upload a handwritten formula and read it as LaTeX, typeset.

    make app                                   # the tiny offline model, built if missing
    make app MODEL=outputs/sft ARGS="--port 7861"
    python -m eval.app --model M [--backend auto|hf|vllm] [--host 127.0.0.1] [--port 7860] [--config app.yaml]

The same contract as ``eval.serve.predict``: the image is inverted when it is light ink on a dark page
(``--invert``), prepared by the backend exactly as in training, and asked the task's prompt from
``data_prep.contract`` (main, Tree-CoT or symbol counting); the LaTeX is the answer's last line,
and for the auxiliary tasks the tree or the counts above it are shown too. The page typesets the
LaTeX with the KaTeX that gradio bundles (no network). gradio lives in requirements/app.txt, which
``make app`` installs into the app's own venv (``.venv-app``, layered on the main one: see
docs/app.md). It listens on 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Sequence
from typing import Any

from PIL import Image

from data_prep.contract import TASK_MAIN, extract_latex, prompt_for
from data_prep.images import on_white
from data_prep.tasks.registry import get_task, scored_tasks
from eval.backends.base import BackendOptions
from eval.cli import parse_command_line
from eval.report.html_report import model_label
from eval.serve.predict import INVERT_MODES, PREDICT_TASKS, prepare_for_model
from train.modeling import ModelLoadError

logger = logging.getLogger(__name__)

#: (label, task) for the page's task list: the task table's scored tasks.
TASK_CHOICES = tuple((get_task(task).label, task) for task in scored_tasks())
DEFAULT_MODEL = "artifacts/tiny-qwen2.5-vl"
#: The typeset answer large enough to check a formula by eye.
CSS = "#typeset .katex{font-size:1.8em !important}"
#: Brush radius in canvas pixels: a pen-like stroke on the 800 x 260 canvas (gradio's "auto" gives
#: 25, a marker that merges neighbouring symbols).
BRUSH_RADIUS = 3
#: gradio 6.31's editor opens with its image tool (drawing does nothing until *Brush* is clicked) and
#: has no option to open with another: once the page is up, click the sketchpad's brush button.
SELECT_BRUSH = """() => {
  const pick = () => {
    const pad = document.getElementById("sketchpad");
    const brush = pad && [...pad.querySelectorAll("button")].find(
      (b) => (b.getAttribute("aria-label") || b.title || "").trim() === "Brush");
    if (brush) brush.click();
    return Boolean(brush);
  };
  if (!pick()) {
    const timer = setInterval(() => pick() && clearInterval(timer), 200);
    setTimeout(() => clearInterval(timer), 15000);
  }
}"""


@dataclasses.dataclass
class Reading:
    latex: str
    #: The auxiliary answer above the LaTeX line (the tree or the counts); '' for the main task.
    auxiliary: str
    raw_output: str
    inverted: bool


class BlankImage(ValueError):
    pass


def auxiliary_part(raw: str) -> str:
    """The answer without its last non-empty line (the LaTeX :func:`extract_latex` takes)."""
    lines = raw.rstrip().splitlines()
    return "\n".join(lines[:-1]).rstrip() if len(lines) > 1 else ""


def read_formula(
    backend: Any, image: Image.Image, task: str = TASK_MAIN, invert_mode: str = "auto"
) -> Reading:
    """One image through the backend with ``task``'s prompt (what the web page calls)."""
    if task not in PREDICT_TASKS:
        raise ValueError(f"task must be one of {', '.join(PREDICT_TASKS)}, not {task!r}")
    flat = on_white(image)
    darkest, lightest = flat.convert("L").getextrema()
    if darkest == lightest:
        raise BlankImage("the image is blank: draw or upload a formula first")
    prepared, inverted = prepare_for_model(flat, invert_mode)
    raw = backend.generate([prepared], [prompt_for(task)])[0]
    return Reading(latex=extract_latex(raw), auxiliary=auxiliary_part(raw), raw_output=raw, inverted=inverted)


def _typeset_markdown(latex: str) -> str:
    if not latex:
        return "*(the model gave no LaTeX)*"
    return f"$$\n{latex}\n$$"


def build_app(backend: Any, model: str, invert_mode: str = "auto"):
    """The gradio Blocks; its API: ``/read`` (an image file, a task) and ``/read_sketch``."""
    import gradio as gr

    def answer(image: Image.Image | None, task: str) -> tuple[str, str, str]:
        if image is None:
            raise gr.Error("no image: upload one or draw a formula")
        try:
            reading = read_formula(backend, image, task, invert_mode)
        except BlankImage as err:
            raise gr.Error(str(err)) from None
        note = " (the image was inverted: light ink on a dark page)" if reading.inverted else ""
        return _typeset_markdown(reading.latex) + note, reading.latex, reading.auxiliary

    def read_sketch(editor: dict[str, Any] | None, task: str) -> tuple[str, str, str]:
        return answer((editor or {}).get("composite"), task)

    with gr.Blocks(title="hmer-recipes: read a handwritten formula", analytics_enabled=False) as app:
        gr.Markdown(
            f"## Read a handwritten formula\nModel **{model_label(model)}** ({backend.name} backend, "
            "greedy decoding). Draw or upload a formula, pick a task, press *Read*."
        )
        with gr.Row():
            with gr.Column():
                task = gr.Radio(list(TASK_CHOICES), value=TASK_MAIN, label="task")
                with gr.Tab("Draw"):
                    sketch = gr.Sketchpad(
                        type="pil",
                        canvas_size=(800, 260),
                        label="write a formula",
                        brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=BRUSH_RADIUS),
                        elem_id="sketchpad",
                    )
                    read_drawn = gr.Button("Read", variant="primary")
                with gr.Tab("Upload"):
                    upload = gr.Image(
                        type="pil",
                        sources=["upload", "clipboard"],
                        label="image of a formula",
                        elem_id="upload",
                    )
                    read_uploaded = gr.Button("Read", variant="primary")
            with gr.Column():
                typeset = gr.Markdown(
                    label="typeset",
                    latex_delimiters=[{"left": "$$", "right": "$$", "display": True}],
                    elem_id="typeset",
                )
                latex = gr.Textbox(label="LaTeX", lines=2, buttons=["copy"], elem_id="latex")
                auxiliary = gr.Textbox(label="auxiliary answer (Tree-CoT tree or symbol counts)", lines=8)
        outputs = [typeset, latex, auxiliary]
        read_uploaded.click(answer, [upload, task], outputs, api_name="read")
        read_drawn.click(read_sketch, [sketch, task], outputs, api_name="read_sketch")
        app.load(None, None, None, js=SELECT_BRUSH)
    return app


@dataclasses.dataclass
class AppArgs:
    """The page's model and address; the inference options are :class:`eval.backends.BackendOptions`."""

    model: str = dataclasses.field(
        default=DEFAULT_MODEL, metadata={"help": "model folder, export, LoRA adapter or hub id"}
    )
    invert: str = dataclasses.field(default="auto", metadata={"choices": INVERT_MODES})
    host: str = dataclasses.field(default="127.0.0.1", metadata={"help": "127.0.0.1: this machine only"})
    port: int = 7860


#: The app reads one drawing at a time; 1024 new tokens fit Tree-CoT and counting answers (as eval).
APP_BACKEND_DEFAULTS = {"batch_size": 1, "max_new_tokens": 1024}


def parse_args(argv: Sequence[str] | None = None) -> tuple[AppArgs, BackendOptions]:
    return parse_command_line(
        (AppArgs, BackendOptions),
        argv,
        prog="python -m eval.app",
        description=__doc__,
        defaults=APP_BACKEND_DEFAULTS,
    )


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    args, options = parse_args(argv)
    try:
        import gradio  # noqa: F401
    except ImportError:
        print("error: gradio is not installed here: run `make app` (it uses .venv-app)", file=sys.stderr)
        return 2
    from eval.backends import open_backend

    try:
        backend = open_backend(options, args.model)
    except (ValueError, OSError, ModelLoadError) as err:
        print(f"error: cannot load {args.model}: {err}", file=sys.stderr)
        return 2
    try:
        app = build_app(backend, args.model, args.invert)
        logger.info("serving %s on http://%s:%d", model_label(args.model), args.host, args.port)
        app.launch(server_name=args.host, server_port=args.port, share=False, show_error=True, css=CSS)
    finally:
        backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
