"""Per-record work of the dataset build: decode, settle the ink polarity, check the answer,
fingerprint and PNG-encode each record's image once, and derive its auxiliary task records. Runs
in worker processes when ``num_proc > 1`` (:class:`RecordProcessor` is what they are given)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from data_prep.answer_check import KEPT_WHEN_PUBLISHED, answer_problem
from data_prep.build.contamination import Fingerprint, fingerprint
from data_prep.build.recipe import RecipeError, TaskSpec
from data_prep.contract import TASK_MAIN, VANILLA_PROMPT, Record
from data_prep.images import blank_detail
from data_prep.ink import dark_ink_on_light
from data_prep.rejects import Reject, Rejects, clean_detail
from data_prep.tasks.registry import checked_tasks, derived_tasks, error_tasks

if TYPE_CHECKING:
    from data_prep.tasks.error_driven.confusions import ConfusionTable

logger = logging.getLogger("data_prep.build")

#: zlib level 1: about 3x faster than the default 6 for ~10 % larger PNGs (see benchmarks).
PNG_COMPRESS_LEVEL = 1
#: Tasks whose answer ends with the correct LaTeX (checked like a main answer). Error detection's


# --------------------------------------------------------------------------- #
# Small helpers
# --------------------------------------------------------------------------- #


def stable_fraction(*parts: Any) -> float:
    """A number in [0, 1) fixed by ``parts``: seeded, order-free sampling of records."""
    digest = hashlib.sha1(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def as_image(value: Any) -> Image.Image:
    """A record's image as an ``L`` or ``RGB`` PIL image (readers may also give bytes or a path)."""
    from data_prep.images import decode_image, on_white

    if callable(value):  # a deferred rendering (data_prep.render.engine.RenderJob)
        value = value()
    if isinstance(value, (str, Path)):
        value = Path(value).read_bytes()
    if isinstance(value, (bytes, bytearray)):
        value = decode_image(bytes(value))
    if not isinstance(value, Image.Image):
        raise ValueError(f"unsupported image value of type {type(value).__name__}")
    return on_white(value)


def where_of(record: Record) -> tuple[str, int | None]:
    """File and line to cite for a record in a rejection (what the reader recorded in ``meta``).

    Readers of label files record ``label_file`` and its ``line``; others name the file the record
    came from (``image_file``, ``inkml_file`` ...).
    """
    meta = record.meta
    line = meta.get("line") if isinstance(meta.get("line"), int) else None
    for key in ("label_file", "image_file", "inkml_file", "file", "path", "caption_file"):
        if meta.get(key):
            return str(meta[key]), line
    return record.id, None


class ListRejects(Rejects):
    """Keeps every rejection so a worker process can hand them back to the parent."""

    def __init__(self) -> None:
        super().__init__(log=False)
        self.items: list[Reject] = []

    def add(self, source, reason, file, line=None, detail="") -> None:  # noqa: D401 - same API
        super().add(source, reason, file, line, detail)
        self.items.append(Reject(source, reason, str(file), line, clean_detail(detail)))


# --------------------------------------------------------------------------- #
# Per-record work (runs in worker processes when num_proc > 1)
# --------------------------------------------------------------------------- #


@dataclasses.dataclass
class Prepared:
    """A main record made ready to write: encoded image, fingerprint, derived task records."""

    record: Record
    png: bytes
    width: int
    height: int
    print_: Fingerprint
    derived: list[Record]
    rejects: list[Reject]
    #: ``(reason, detail)`` of a published answer kept with a problem (``answers: published``).
    answer_problem: tuple[str, str] | None = None


def learned_confusions(path: str | Path, where: str) -> ConfusionTable:
    """The built-in confusion table plus the learned one at ``path`` (a
    :meth:`ConfusionTable.to_json` file); a :class:`RecipeError` naming ``where`` when unusable."""
    from data_prep.tasks.error_driven.confusions import ConfusionTable

    if not Path(path).is_file():
        raise RecipeError(
            f"{where}: confusion table {path} does not exist (write one with python -m eval.mine_errors "
            "or python -m data_prep.tasks.error_driven.confusions)"
        )
    try:
        learned = ConfusionTable.from_json(path)
    except (OSError, ValueError) as err:
        raise RecipeError(f"{where}: {err}") from None
    logger.info(
        "%s: %d learned confusion pairs from %s, added to the built-in table", where, len(learned), path
    )
    return ConfusionTable.builtin().merged(learned)


class RecordProcessor:
    """Fingerprint + PNG-encode one main record's image and derive its auxiliary records.

    ``confusions``: per error task, the table its synthetic errors draw substitutions from
    (absent: the built-in table).
    """

    def __init__(
        self,
        seed: int,
        source: str,
        tasks: dict[str, TaskSpec],
        predictions: dict[str, dict[str, list[str]]],
        confusions: dict[str, ConfusionTable] | None = None,
        vanilla_prompt: float = 0.0,
        keep_answers: bool = False,
    ):
        self.seed = seed
        self.source = source
        self.tasks = tasks
        self.predictions = predictions
        self.confusions = confusions or {}
        self.vanilla_prompt = vanilla_prompt
        self.keep_answers = keep_answers

    def chosen(self, task: str, record_id: str) -> bool:
        spec = self.tasks[task]
        return spec.fraction >= 1 or stable_fraction(self.seed, self.source, task, record_id) < spec.fraction

    def derive(self, record: Record, rejects: Rejects) -> list[Record]:
        derived: list[Record] = []
        if any(task in self.tasks for task in derived_tasks()):
            from data_prep.tasks import aux_task_builder

            for task in derived_tasks():
                if task in self.tasks and self.chosen(task, record.id):
                    try:
                        derived.append(aux_task_builder(task, self.tasks[task].style)(record))
                    except ValueError as err:  # TaskError: this formula cannot give this task
                        file, line = where_of(record)
                        rejects.add(record.source, f"{task}_failed", file, line, f"{record.id}: {err}")
        # Detection and correction usually share a spec: build the pair once, keep what is asked.
        error_samples: dict[TaskSpec, list[Record]] = {}
        for task in error_tasks():
            spec = self.tasks.get(task)
            if spec is None or not self.chosen(task, record.id):
                continue
            if spec not in error_samples:
                error_samples[spec] = self._error_samples(task, spec, record, rejects)
            derived += [r for r in error_samples[spec] if r.task == task]
        return derived

    def _error_samples(self, task: str, spec: TaskSpec, record: Record, rejects: Rejects) -> list[Record]:
        from data_prep.tasks import error_driven

        if spec.synthetic is not None:
            rng = random.Random(f"{self.seed}:{self.source}:{task}:{record.id}")
            return error_driven.synthetic_samples(
                record, rng, spec.synthetic, confusions=self.confusions.get(task), rejects=rejects
            )
        wrong = self.predictions.get(task, {}).get(record.id)
        if not wrong:
            return []
        return error_driven.samples_from_predictions(
            record, wrong, max_per_record=len(wrong), rejects=rejects
        )

    def __call__(self, record: Record) -> Prepared | Reject:
        file, line = where_of(record)
        kept_problem = None
        if record.task in checked_tasks():
            # Readers check their answers; this catches a reader that does not (same rule).
            problem = answer_problem(record.latex)
            if problem is not None and self.keep_answers and problem[0] in KEPT_WHEN_PUBLISHED:
                kept_problem = (problem[0], f"{record.id}: {problem[1]}")
            elif problem is not None:
                return Reject(record.source, problem[0], file, line, f"{record.id}: {problem[1]}")
        try:
            image = as_image(record.image)
        except (OSError, ValueError) as err:
            # A rendering that failed says why (render_blank, render_clipped, render_unsupported ...).
            reason = (
                f"render_{err.reason}"
                if record.meta.get("rendered") and getattr(err, "reason", None)
                else "unreadable_image"
            )
            return Reject(record.source, reason, file, line, f"{record.id}: {err}")
        blank = blank_detail(image)
        if blank is not None:  # every reader's records pass here: one check (data_prep.images)
            return Reject(record.source, "blank_image", file, line, f"{record.id}: {blank}")
        if "inverted" not in record.meta:  # a reader that did not settle the ink polarity itself
            image, record.meta["inverted"] = dark_ink_on_light(image, "auto")
        rejects = ListRejects()
        png = encode_png(image)
        record.image = None  # the PIL image is not needed (nor shipped back) from here on
        derived = self.derive(record, rejects) if self.tasks and record.task == TASK_MAIN else []
        # Fig. 2's second vanilla prompt on a stable share of the main records (recipe option).
        if (
            self.vanilla_prompt
            and record.task == TASK_MAIN
            and stable_fraction(self.seed, self.source, "vanilla", record.id) < self.vanilla_prompt
        ):
            record.prompt = VANILLA_PROMPT
        return Prepared(
            record, png, image.width, image.height, fingerprint(image), derived, rejects.items, kept_problem
        )


@dataclasses.dataclass
class StreamItem:
    """One record on its way from the reader to the writer, with the resume bookkeeping.

    ``index``: items the reader has passed so far (its ``ReadCursor.passed``: records made and
    items rejected; ``None`` marks the end of the source);
    ``selected``: records kept after the holdout and the cap; ``snapshot``: the reader's rejections
    so far when they changed; ``record`` is replaced by ``prepared`` once processed.
    """

    index: int | None
    selected: int
    snapshot: dict[str, Any] | None
    record: Record | None
    prepared: Prepared | Reject | None = None


def process_item(processor: RecordProcessor, item: StreamItem) -> StreamItem:
    if item.record is not None:
        item.prepared = processor(item.record)
        item.record = None
    return item


_WORKER: RecordProcessor | None = None


def init_worker(processor: RecordProcessor) -> None:
    global _WORKER
    _WORKER = processor


def work(item: StreamItem) -> StreamItem:
    return process_item(_WORKER, item)
