"""The sample contract shared by data preparation, training and evaluation.

Everything a model sees at training time and again at evaluation time is defined
here, once: the prompt texts, the answer format, the image pixel bounds and the
record schema. Training, the HF and vLLM backends, the predict command and the
OpenAI-style client all build their inputs through this module, so a change here
changes all of them together.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from PIL import Image, ImageOps

# --------------------------------------------------------------------------- #
# Prompts
# --------------------------------------------------------------------------- #

#: The first sentence that every task's prompt shares (Uni-MuMER protocol).
PROMPT_PREFIX = "I have an image of a handwritten mathematical expression."

#: The main recognition prompt, exactly as the reference method uses it.
MAIN_PROMPT = (
    f"{PROMPT_PREFIX} Please write out the expression of the formula in the image using LaTeX format."
)
TREE_COT_PROMPT = (
    f"{PROMPT_PREFIX} Please generate the abstract syntax tree (AST) of the formula in the image, "
    "and then provide its corresponding LaTeX format."
)
COUNTING_PROMPT = (
    f"{PROMPT_PREFIX} Please identify and count each distinct visible mathematical symbol in the "
    "image, and then provide its corresponding LaTeX format."
)
#: Fig. 2's second, "vanilla" recognition prompt (a recipe option on a share of the main records:
#: ``vanilla_prompt``; off by default). Its spelling ("recognise") is the figure's.
VANILLA_PROMPT = (
    "Please recognise this image of a mathematical expression and give the result in latex format."
)
# Error-driven learning, in the wording of the paper's Fig. 2. The figure elides the middle of the
# first sentence ("I have an image ... and its OCR recognition result"); the shared prefix is our
# inference (docs/error_driven.md). ``{prediction}`` is the space-separated (marked) prediction.
ERROR_DETECTION_PROMPT = (
    "I have an image of a handwritten mathematical expression and its OCR recognition result. "
    "Please help me to detect possible errors in the recognition result and mark the places where "
    "errors occur with <error_start> <error_end> and <deleted>. Expression: {prediction}"
)
ERROR_CORRECTION_PROMPT = (
    "I have an image of a handwritten mathematical expression and its OCR recognition result. "
    "Please correct the errors marked <error_start> <error_end> and <deleted> and give the correct "
    "mathematical expression. Marked Expression: {prediction}"
)
#: Version of the auxiliary answers and prompts a built dataset holds (part of a data recipe's
#: hash, so a build made with another version is rebuilt, not resumed and mixed). 2: Tree-CoT and
#: counting in the reference's serialisation, error-driven prompts and edits in Fig. 2's wording.
TASK_FORMAT_VERSION = 2

TASK_MAIN = "main"
TASK_TREE_COT = "tree_cot"
TASK_COUNTING = "counting"
TASK_ERROR_DETECTION = "error_detection"
TASK_ERROR_CORRECTION = "error_correction"
#: Records read from released ShareGPT files whose prompt matches no known task: kept verbatim.
TASK_OTHER = "other"

#: Prompt per task. The two error-driven prompts are templates (see :func:`prompt_for`). The task
#: table (:mod:`data_prep.tasks.registry`) owns what each task is and adds the tasks it registers.
TASK_PROMPTS: dict[str, str] = {
    TASK_MAIN: MAIN_PROMPT,
    TASK_TREE_COT: TREE_COT_PROMPT,
    TASK_COUNTING: COUNTING_PROMPT,
    TASK_ERROR_DETECTION: ERROR_DETECTION_PROMPT,
    TASK_ERROR_CORRECTION: ERROR_CORRECTION_PROMPT,
}
BUILTIN_TASKS = tuple(TASK_PROMPTS)

#: Markers used by the error-driven tasks. They are plain text, not added special tokens, so a
#: base model's tokenizer handles them unchanged.
ERROR_START = "<error_start>"
ERROR_END = "<error_end>"
DELETED = "<deleted>"


def prompt_for(task: str, prediction: str | None = None) -> str:
    """Return the prompt text for ``task``; error-driven tasks need the ``prediction`` they show."""
    if task not in TASK_PROMPTS:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(TASK_PROMPTS)}")
    template = TASK_PROMPTS[task]
    if "{prediction}" in template:
        if prediction is None:
            raise ValueError(f"task {task!r} needs the prediction its prompt shows")
        return template.format(prediction=prediction)
    return template


# --------------------------------------------------------------------------- #
# Answers
# --------------------------------------------------------------------------- #


def normalize_answer(latex: str) -> str:
    """Collapse whitespace: the answer format is LaTeX tokens separated by single spaces."""
    return " ".join(latex.split())


def extract_latex(answer: str) -> str:
    """The LaTeX of an answer: its last non-empty line.

    The main task's answer is one line; every auxiliary answer (Tree-CoT, counting, correction)
    ends with the LaTeX on its last line, so the same rule scores all of them.
    """
    for line in reversed(answer.strip().splitlines()):
        if line.strip():
            return normalize_answer(line)
    return ""


# --------------------------------------------------------------------------- #
# Images
# --------------------------------------------------------------------------- #

#: Qwen2.5-VL's vision patch (14) times its spatial merge (2): sides are rounded to multiples.
IMAGE_FACTOR = 28
#: Training images are capped at 512 x 512 pixels by the reference; evaluation uses the same cap.
MAX_PIXELS = 262_144
MIN_PIXELS = 3_136
#: Qwen's smart_resize refuses aspect ratios above 200; we stay safely below by padding.
MAX_ASPECT_RATIO = 150
#: Ink on a light page, as the base model saw in pre-training.
BACKGROUND = (255, 255, 255)


@dataclasses.dataclass(frozen=True)
class ImageBounds:
    """Pixel bounds that both training and every inference backend apply."""

    min_pixels: int = MIN_PIXELS
    max_pixels: int = MAX_PIXELS

    def __post_init__(self) -> None:
        if self.min_pixels < IMAGE_FACTOR * IMAGE_FACTOR:
            raise ValueError(f"min_pixels must be at least {IMAGE_FACTOR * IMAGE_FACTOR}")
        if self.max_pixels < self.min_pixels:
            raise ValueError("max_pixels must be at least min_pixels")

    def processor_kwargs(self) -> dict[str, int]:
        """Keyword arguments for the Qwen image processor (HF and vLLM alike)."""
        return {"min_pixels": self.min_pixels, "max_pixels": self.max_pixels}


DEFAULT_BOUNDS = ImageBounds()


def _pad_to(image: Image.Image, width: int, height: int) -> Image.Image:
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    canvas.paste(image, ((width - image.width) // 2, (height - image.height) // 2))
    return canvas


def prepare_image(image: Image.Image, bounds: ImageBounds = DEFAULT_BOUNDS) -> Image.Image:
    """Bring any formula image into the shape the model is trained and evaluated on.

    RGB; thin images padded (white) so both sides reach 28 px and the aspect ratio stays
    under :data:`MAX_ASPECT_RATIO` (Qwen's resize rejects the others); then scaled, keeping the
    aspect ratio, into ``[min_pixels, max_pixels]``; last, resized here to the size Qwen's processor
    would resize it to (:func:`patch_grid_size`, sides multiples of 28), so that no processor resizes
    it again. That last step matters: the HF processor (PIL) and vLLM's (torchvision) resize with
    different bicubic kernels, and left to them the same image reached the model with up to 21/255
    differences in 2% of its pixel values (vLLM then agreed with HF on 28/48 answers of a tiny model).
    """
    image = ImageOps.exif_transpose(image) if image.mode != "L" else image
    image = image.convert("RGB")
    width, height = image.size
    if width == 0 or height == 0:
        raise ValueError("image has a zero-length side")
    # Pad the short side so the aspect ratio is acceptable.
    if width > height * MAX_ASPECT_RATIO:
        image = _pad_to(image, width, -(-width // MAX_ASPECT_RATIO))
    elif height > width * MAX_ASPECT_RATIO:
        image = _pad_to(image, -(-height // MAX_ASPECT_RATIO), height)
    width, height = image.size
    pixels = width * height
    if pixels > bounds.max_pixels or pixels < bounds.min_pixels:
        target = bounds.max_pixels if pixels > bounds.max_pixels else bounds.min_pixels
        scale = (target / pixels) ** 0.5
        width = max(1, int(width * scale))
        height = max(1, int(height * scale))
        image = image.resize((width, height), Image.Resampling.BICUBIC)
    # Finally make sure no side is under one patch group (after a downscale of a long thin image).
    if width < IMAGE_FACTOR or height < IMAGE_FACTOR:
        image = _pad_to(image, max(width, IMAGE_FACTOR), max(height, IMAGE_FACTOR))
    size = image.size
    # One step is enough unless a thin image sits at the cap: its short side is held at 28 and the
    # area may exceed the cap, so the processor would shrink it again. Stop where it would not.
    for _ in range(16):
        snapped = patch_grid_size(*size, bounds)
        if snapped == size:
            break
        size = snapped
    if size != image.size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    return image


def patch_grid_size(width: int, height: int, bounds: ImageBounds = DEFAULT_BOUNDS) -> tuple[int, int]:
    """(width, height) Qwen2.5-VL's image processor resizes a ``width`` x ``height`` image to: each
    side rounded to a multiple of :data:`IMAGE_FACTOR`, the area kept in the bounds (``smart_resize``
    of transformers, qwen-vl-utils and vLLM alike; the same arithmetic, without importing them).
    Applied to its own result it changes nothing, except for a thin image over the cap (its short
    side held at 28), which a second application shrinks further."""
    factor = IMAGE_FACTOR
    grid_height = round(height / factor) * factor
    grid_width = round(width / factor) * factor
    if grid_height * grid_width > bounds.max_pixels:
        beta = math.sqrt((height * width) / bounds.max_pixels)
        grid_height = max(factor, math.floor(height / beta / factor) * factor)
        grid_width = max(factor, math.floor(width / beta / factor) * factor)
    elif grid_height * grid_width < bounds.min_pixels:
        beta = math.sqrt(bounds.min_pixels / (height * width))
        grid_height = math.ceil(height * beta / factor) * factor
        grid_width = math.ceil(width * beta / factor) * factor
    return grid_width, grid_height


# --------------------------------------------------------------------------- #
# Chat messages
# --------------------------------------------------------------------------- #


#: The image placeholder of a ShareGPT (LLaMA-Factory) user turn: the export writes it, the reader
#: reads it.
IMAGE_TAG = "<image>"


def user_message(prompt: str) -> dict[str, Any]:
    """The single user turn: one image, then the prompt. No system turn (the Qwen template adds
    its default one, as in the reference)."""
    return {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}


def build_messages(prompt: str, answer: str | None = None) -> list[dict[str, Any]]:
    """Messages for the chat template; with ``answer``, the assistant turn is included."""
    messages = [user_message(prompt)]
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


# --------------------------------------------------------------------------- #
# Records
# --------------------------------------------------------------------------- #

#: Column order of every dataset the project writes.
RECORD_FIELDS = ("id", "source", "split", "task", "image", "prompt", "answer", "meta")


@dataclasses.dataclass
class Record:
    """One training or test sample.

    ``image`` is a PIL image, a path, or encoded bytes (PNG/JPEG/BMP); ``meta`` holds
    source-specific facts (caption edition, CJK flag, original file) as a JSON-serialisable dict.
    """

    id: str
    source: str
    split: str
    task: str
    image: Any
    prompt: str
    answer: str
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("record id is empty")
        if self.task not in TASK_PROMPTS and self.task != TASK_OTHER:
            raise ValueError(f"record {self.id}: unknown task {self.task!r}")
        if not self.answer.strip():
            raise ValueError(f"record {self.id}: empty answer")

    @property
    def latex(self) -> str:
        """The ground-truth LaTeX this record teaches (the last line of its answer)."""
        return extract_latex(self.answer)

    def to_row(self) -> dict[str, Any]:
        """A flat row for HF ``datasets`` (``meta`` serialised as JSON text)."""
        row = dataclasses.asdict(self)
        row["image"] = self.image
        row["meta"] = json.dumps(self.meta, ensure_ascii=False, sort_keys=True)
        return row


def main_record(id: str, source: str, split: str, image: Any, latex: str, **meta: Any) -> Record:
    """A main-task record: the image, the main prompt, the normalised LaTeX as the answer."""
    return Record(
        id=id,
        source=source,
        split=split,
        task=TASK_MAIN,
        image=image,
        prompt=MAIN_PROMPT,
        answer=normalize_answer(latex),
        meta=dict(meta),
    )


def record_features():
    """HF ``datasets`` features for a record table (images embedded)."""
    import datasets  # local import: keeps this module importable without datasets installed

    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "source": datasets.Value("string"),
            "split": datasets.Value("string"),
            "task": datasets.Value("string"),
            "image": datasets.Image(),
            "prompt": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "meta": datasets.Value("string"),
        }
    )
