"""One command from a data recipe to one validated HF dataset with a report.

    python -m data_prep.build --config recipes/data/crohme.yaml [--output-dir DIR]
        [--max-reject-fraction F] [--num-proc N] [--sharegpt] [--fresh]

Writes ``<out>/<split>/shard-00000-of-000NN.parquet`` (``train`` and one split per test set,
images embedded as PNG), ``<out>/report.json``, ``<out>/report.md`` and ``<out>/vocab.txt``.

How it works, per split (test sets first, so training records can be checked against them):
read each source with its reader, fingerprint and PNG-encode every image once, derive the
auxiliary task records, drop training records that overlap a test set, and write shards of about
``shard_size`` rows. A shard is written to a temporary file and renamed into place, then recorded
in ``<out>/manifest.json`` with the recipe hash, the position reached in each source (the reader's
items passed, known before any image is decoded) and the rejections so far; a re-run skips
completed shards and finished sources, and has each reader pass over the items it had covered
without opening their images, then continues.
A finished split's shards move to ``<out>/<split>/`` and get their final ``-of-NNNNN`` names.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import io
import json
import logging
import multiprocessing
import os
import random
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image
from tqdm.auto import tqdm

from data_prep.contamination import ContaminationIndex, Fingerprint, Match, fingerprint
from data_prep.contract import TASK_MAIN, Record, record_features
from data_prep.io_utils import atomic_output, write_json_atomic
from data_prep.recipe import (
    DERIVED_TASKS,
    ERROR_TASKS,
    DataRecipe,
    RecipeError,
    SourceSpec,
    TaskSpec,
    load_recipe,
)
from data_prep.rejects import Reject, Rejects, TooManyRejects

if TYPE_CHECKING:
    from data_prep.confusions import ConfusionTable

logger = logging.getLogger("data_prep.build")

MANIFEST = "manifest.json"
#: Bumped when the manifest's meaning changes (2: a source's position counts the reader's items,
#: see ``ReadCursor``, not the records it yielded); an older manifest is rebuilt, not misread.
MANIFEST_FORMAT = 2
WORK_DIR = ".build"
SHARD_PATTERN = "shard-{index:05d}-of-{total:05d}.parquet"
#: zlib level 1: about 3x faster than the default 6 for ~10 % larger PNGs (see benchmarks).
PNG_COMPRESS_LEVEL = 1
#: Rows per parquet row group (what `datasets` itself uses for image datasets).
PARQUET_ROW_GROUP = 100
#: Records in flight between the reader and the writer when encoding in worker processes.
MAX_IN_FLIGHT = 256


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


def _where(record: Record) -> tuple[str, int | None]:
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


class _ListRejects(Rejects):
    """Keeps every rejection so a worker process can hand them back to the parent."""

    def __init__(self) -> None:
        super().__init__(log=False)
        self.items: list[Reject] = []

    def add(self, source, reason, file, line=None, detail="") -> None:  # noqa: D401 - same API
        super().add(source, reason, file, line, detail)
        self.items.append(Reject(source, reason, str(file), line, detail[:300]))


def rejects_to_state(rejects: Rejects) -> dict[str, Any]:
    return {
        "counts": [[s, r, n] for (s, r), n in rejects.counts.items()],
        "examples": [dataclasses.asdict(x) for items in rejects.examples.values() for x in items],
    }


def rejects_from_state(state: dict[str, Any] | None, rejects: Rejects) -> Rejects:
    """Restore counts and examples saved with a shard into ``rejects`` (which is returned)."""
    if state:
        for source, reason, n in state["counts"]:
            rejects.counts[(source, reason)] = n
        for example in state["examples"]:
            reject = Reject(**example)
            rejects.examples[(reject.source, reject.reason)].append(reject)
    return rejects


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


def learned_confusions(path: str | Path, where: str) -> ConfusionTable:
    """The built-in confusion table plus the learned one at ``path`` (a
    :meth:`ConfusionTable.to_json` file); a :class:`RecipeError` naming ``where`` when unusable."""
    from data_prep.confusions import ConfusionTable

    if not Path(path).is_file():
        raise RecipeError(
            f"{where}: confusion table {path} does not exist (write one with python -m eval.mine_errors "
            "or python -m data_prep.confusions)"
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
    ):
        self.seed = seed
        self.source = source
        self.tasks = tasks
        self.predictions = predictions
        self.confusions = confusions or {}

    def chosen(self, task: str, record_id: str) -> bool:
        spec = self.tasks[task]
        return spec.fraction >= 1 or stable_fraction(self.seed, self.source, task, record_id) < spec.fraction

    def derive(self, record: Record, rejects: Rejects) -> list[Record]:
        derived: list[Record] = []
        if any(task in self.tasks for task in DERIVED_TASKS):
            from data_prep.tasks import AUX_TASK_BUILDERS

            for task in DERIVED_TASKS:
                if task in self.tasks and self.chosen(task, record.id):
                    try:
                        derived.append(AUX_TASK_BUILDERS[task](record))
                    except ValueError as err:  # TaskError: this formula cannot give this task
                        file, line = _where(record)
                        rejects.add(record.source, f"{task}_failed", file, line, f"{record.id}: {err}")
        # Detection and correction usually share a spec: build the pair once, keep what is asked.
        error_samples: dict[TaskSpec, list[Record]] = {}
        for task in ERROR_TASKS:
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
        file, line = _where(record)
        try:
            image = as_image(record.image)
        except (OSError, ValueError) as err:
            # A rendering that failed says why (render_blank, render_clipped, render_unsupported ...).
            reason = f"render_{err.reason}" if record.meta.get("rendered") else "unreadable_image"
            return Reject(record.source, reason, file, line, f"{record.id}: {err}")
        rejects = _ListRejects()
        png = encode_png(image)
        record.image = None  # the PIL image is not needed (nor shipped back) from here on
        derived = self.derive(record, rejects) if self.tasks else []
        return Prepared(record, png, image.width, image.height, fingerprint(image), derived, rejects.items)


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


def _process(processor: RecordProcessor, item: StreamItem) -> StreamItem:
    if item.record is not None:
        item.prepared = processor(item.record)
        item.record = None
    return item


_WORKER: RecordProcessor | None = None


def _init_worker(processor: RecordProcessor) -> None:
    global _WORKER
    _WORKER = processor


def _work(item: StreamItem) -> StreamItem:
    return _process(_WORKER, item)


# --------------------------------------------------------------------------- #
# Statistics of one shard (saved beside it so a resumed build reports the whole split)
# --------------------------------------------------------------------------- #


@dataclasses.dataclass
class ShardStats:
    rows: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # "source|task" -> n
    latex_lengths: list[int] = dataclasses.field(default_factory=list)
    answer_lengths: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    widths: list[int] = dataclasses.field(default_factory=list)
    heights: list[int] = dataclasses.field(default_factory=list)
    vocab: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    main_ids: list[str] = dataclasses.field(default_factory=list)
    index: list[list[str]] = dataclasses.field(default_factory=list)  # test sets: id, exact, dhash, formula
    contamination: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def add_row(self, source: str, record: Record) -> None:
        self.rows[f"{source}|{record.task}"] += 1
        self.answer_lengths.setdefault(record.task, []).append(len(record.answer.split()))

    def to_json(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it rebuilds a Counter from (key, value) pairs, counting the pairs.
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardStats:
        stats = cls(**data)
        stats.rows = collections.Counter(stats.rows)
        stats.vocab = collections.Counter(stats.vocab)
        return stats


# --------------------------------------------------------------------------- #
# The build
# --------------------------------------------------------------------------- #


@dataclasses.dataclass
class SplitPlan:
    """One output split: which sources feed it and which side of each holdout it takes."""

    name: str
    is_train: bool
    sources: list[SourceSpec]
    holdout_side: str | None = None  # "in" (the holdout test set) or "out" (train minus holdouts)


def plan_splits(recipe: DataRecipe) -> list[SplitPlan]:
    plans = [SplitPlan(s.name, False, [s]) for s in recipe.test_sets]
    plans += [SplitPlan(s.holdout.name, False, [s], "in") for s in recipe.train if s.holdout]
    if recipe.train:
        plans.append(SplitPlan("train", True, list(recipe.train), "out"))
    return plans


@dataclasses.dataclass
class SplitResult:
    name: str
    shards: list[str]
    stats: list[ShardStats]
    reader_rejects: Rejects  # what the readers refused
    rejects: Rejects  # what the build refused (unreadable image, duplicate id)
    task_rejects: Rejects  # auxiliary records that could not be derived
    excluded: Rejects  # training records dropped as test-set contamination

    @property
    def input_rejects(self) -> Rejects:
        """Reader and build rejections together: the share checked by ``max_reject_fraction``."""
        merged = Rejects(log=False)
        for part in (self.reader_rejects, self.rejects):
            rejects_from_state(rejects_to_state(part), merged)
        return merged

    @property
    def main_rows(self) -> int:
        return sum(n for s in self.stats for key, n in s.rows.items() if key.endswith(f"|{TASK_MAIN}"))


class DatasetBuilder:
    """Builds every split of a recipe into ``out_dir``; see the module docstring."""

    def __init__(
        self,
        recipe: DataRecipe,
        out_dir: Path,
        *,
        num_proc: int = 1,
        fresh: bool = False,
        progress: bool = True,
    ):
        self.recipe = recipe
        self.out = Path(out_dir)
        self.work = self.out / WORK_DIR
        self.num_proc = max(1, num_proc)
        self.progress = progress
        self.recipe_hash = recipe.content_hash()
        self.confusions = self._load_confusions()  # before any work: a bad table fails at once
        for spec in [*recipe.test_sets, *recipe.train]:
            if "cursor" in spec.options:
                raise RecipeError(f"source {spec.name!r}: 'cursor' is set by the build, not a reader option")
        self.index = ContaminationIndex(recipe.contamination.perceptual_max_distance)
        self.features = record_features()
        self.manifest = self._open_manifest(fresh)

    # ---- manifest -------------------------------------------------------------------------- #

    def _open_manifest(self, fresh: bool) -> dict[str, Any]:
        path = self.out / MANIFEST
        if path.is_file():
            manifest = json.loads(path.read_text(encoding="utf-8"))
            old_hash = manifest.get("recipe_hash")
            why = None
            if fresh:
                why = "--fresh was given"
            elif old_hash != self.recipe_hash:
                why = f"the recipe changed since the last build (hash {old_hash} -> {self.recipe_hash})"
            elif manifest.get("format") != MANIFEST_FORMAT:
                why = "it was written by an older version of the build, whose resume positions differ"
            if why:
                logger.warning("%s holds an earlier build; %s: rebuilding from scratch", self.out, why)
                self._remove_build(manifest)
            else:
                logger.info("resuming the build in %s (recipe hash %s)", self.out, self.recipe_hash)
                return manifest
        self.out.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": MANIFEST_FORMAT,
            "recipe_hash": self.recipe_hash,
            "recipe": self.recipe.path,
            "splits": {},
        }
        write_json_atomic(path, manifest)
        return manifest

    def _remove_build(self, manifest: dict[str, Any]) -> None:
        """Delete what an earlier build wrote here (only its own files and folders)."""
        for split in manifest.get("splits", {}):
            shutil.rmtree(self.out / split, ignore_errors=True)
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.rmtree(self.out / "sharegpt", ignore_errors=True)
        for name in (MANIFEST, "report.json", "report.md", "vocab.txt"):
            (self.out / name).unlink(missing_ok=True)

    def _save_manifest(self) -> None:
        write_json_atomic(self.out / MANIFEST, self.manifest)

    # ---- top level --------------------------------------------------------------------------- #

    def build(self, max_reject_fraction: float | None = None) -> list[SplitResult]:
        results = []
        for plan in plan_splits(self.recipe):
            result = self.build_split(plan)
            results.append(result)
            what = f"split {plan.name!r}"
            try:
                result.input_rejects.check_fraction(result.main_rows, max_reject_fraction, what)
            except TooManyRejects:
                self.write_report(results, failed=what)
                raise
        self.write_report(results)
        return results

    def write_report(self, results: list[SplitResult], failed: str | None = None) -> None:
        from data_prep.report import build_report, write_report

        report = build_report(self.recipe, results, self.recipe_hash, failed=failed)
        write_report(report, self.out)

    # ---- one split --------------------------------------------------------------------------- #

    def build_split(self, plan: SplitPlan) -> SplitResult:
        state = self.manifest["splits"].setdefault(plan.name, {"complete": False, "shards": []})
        work_dir = self.work / plan.name
        work_dir.mkdir(parents=True, exist_ok=True)
        done = state["shards"]
        stats = [
            ShardStats.from_json(json.loads((work_dir / f"{s['name']}.stats.json").read_text())) for s in done
        ]
        last = done[-1] if done else {}
        reader_rejects = rejects_from_state(last.get("reader_rejects"), Rejects())
        rejects = rejects_from_state(last.get("rejects"), Rejects())
        task_rejects = rejects_from_state(last.get("task_rejects"), Rejects())
        excluded = rejects_from_state(last.get("excluded"), Rejects())
        if not plan.is_train:
            for shard in stats:
                for record_id, exact, dhash, formula in shard.index:
                    self.index.add(plan.name, record_id, Fingerprint(exact, bytes.fromhex(dhash)), formula)
        result = SplitResult(
            plan.name, [s["file"] for s in done], stats, reader_rejects, rejects, task_rejects, excluded
        )
        if state["complete"]:
            logger.info("split %s: already built (%d shards), skipping", plan.name, len(done))
            return result
        self._clean_leftovers(plan.name, work_dir, {s["name"] for s in done})
        if done:
            logger.info("split %s: resuming after %d completed shard(s)", plan.name, len(done))
        else:
            logger.info("split %s: building from %s", plan.name, ", ".join(s.name for s in plan.sources))

        # Where each source stands: reader items passed, records selected, whether it is finished.
        position: dict[str, Any] = json.loads(json.dumps(last.get("position", {})))
        self._task_counts = collections.Counter(
            {tuple(k.split("|")): v for k, v in position.get("_task_counts", {}).items()}
        )
        reader_state = last.get("reader_rejects")
        seen_ids = {record_id for shard in stats for record_id in shard.main_ids}
        buffer: list[dict[str, Any]] = []
        current = ShardStats()
        bar = tqdm(desc=plan.name, unit=" rec", disable=not self.progress, dynamic_ncols=True)

        def checkpoint() -> dict[str, Any]:
            position["_task_counts"] = {"|".join(k): v for k, v in self._task_counts.items()}
            return {
                "position": json.loads(json.dumps(position)),
                "reader_rejects": reader_state,
                "rejects": rejects_to_state(rejects),
                "task_rejects": rejects_to_state(task_rejects),
                "excluded": rejects_to_state(excluded),
            }

        def flush() -> None:
            nonlocal buffer, current
            name = f"shard-{len(state['shards']):05d}"
            self._write_shard(work_dir / f"{name}.parquet", buffer)
            write_json_atomic(work_dir / f"{name}.stats.json", current.to_json(), indent=None)
            file = str(Path(WORK_DIR) / plan.name / f"{name}.parquet")
            state["shards"].append({"name": name, "file": file, "rows": len(buffer), **checkpoint()})
            self._save_manifest()
            result.shards.append(file)
            result.stats.append(current)
            buffer, current = [], ShardStats()

        for spec, item in self._prepared_stream(plan, position, reader_rejects):
            source_position = position.setdefault(spec.name, {"items": 0, "selected": 0, "done": False})
            if item.snapshot is not None:
                reader_state = item.snapshot
            if item.index is None:  # the source is exhausted (or capped)
                source_position["done"] = True
                continue
            source_position.update(items=item.index, selected=item.selected)
            bar.update(1)
            if isinstance(item.prepared, Reject):
                r = item.prepared
                rejects.add(r.source, r.reason, r.file, r.line, r.detail)
                continue
            self._accept(
                plan, spec, item.prepared, buffer, current, seen_ids, rejects, task_rejects, excluded
            )
            if len(buffer) >= self.recipe.shard_size:
                flush()
        bar.close()
        result.reader_rejects = rejects_from_state(reader_state, Rejects())
        if buffer or not state["shards"]:
            flush()
        else:
            # Nothing left to write, but what came after the last row (rejections, exclusions,
            # finished sources) belongs to the split: fold it into the last shard's record.
            self._merge_into_last(work_dir, state["shards"][-1], current, checkpoint())
            result.stats[-1].contamination += current.contamination
        self._finish_split(plan.name, state, result)
        return result

    def _accept(
        self,
        plan,
        spec,
        prepared: Prepared,
        buffer,
        current: ShardStats,
        seen_ids,
        rejects,
        task_rejects,
        excluded,
    ) -> None:
        record = prepared.record
        file, line = _where(record)
        if record.task != TASK_MAIN:
            rejects.add(record.source, "not_main_task", file, line, f"{record.id}: task {record.task!r}")
            return
        if record.id in seen_ids:
            rejects.add(
                record.source, "duplicate_id", file, line, f"{record.id} already in split {plan.name}"
            )
            return
        if plan.is_train and len(self.index):
            if not self._passes_contamination(spec, prepared, current, excluded):
                return
        for reject in prepared.rejects:
            task_rejects.add(reject.source, reject.reason, reject.file, reject.line, reject.detail)
        seen_ids.add(record.id)
        record.split = plan.name
        image = {"bytes": prepared.png, "path": None}
        derived = self._capped(spec, prepared.derived, current)
        for row_record in [record, *derived]:
            row_record.split = plan.name
            row = row_record.to_row()
            row["image"] = image
            buffer.append(row)
            current.add_row(spec.name, row_record)
        latex = record.latex
        current.latex_lengths.append(len(latex.split()))
        current.vocab.update(latex.split())
        current.widths.append(prepared.width)
        current.heights.append(prepared.height)
        current.main_ids.append(record.id)
        if not plan.is_train:
            print_ = prepared.print_
            current.index.append([record.id, print_.exact, print_.perceptual.hex(), latex])
            self.index.add(plan.name, record.id, print_, latex)

    def _capped(self, spec: SourceSpec, derived: list[Record], current: ShardStats) -> list[Record]:
        """Apply each task's ``max_records`` (counted over the whole split, resumes included)."""
        kept = []
        for record in derived:
            cap = spec.tasks[record.task].max_records
            if cap is not None:
                key = (spec.name, record.task)
                count = self._task_counts.get(key, 0)
                if count >= cap:
                    continue
                self._task_counts[key] = count + 1
            kept.append(record)
        return kept

    def _passes_contamination(
        self, spec: SourceSpec, prepared: Prepared, current: ShardStats, excluded: Rejects
    ) -> bool:
        policy = self.recipe.contamination
        record = prepared.record
        matches: list[tuple[Match, str]] = []
        if policy.image != "off":
            match = self.index.image_match(prepared.print_)
            if match is not None:
                matches.append((match, policy.image))
        # A rendered formula is the formula itself: it follows its own (stricter) policy.
        formula_action = policy.rendered_formula if record.meta.get("rendered") else policy.formula
        if formula_action != "off":
            match = self.index.formula_match(record.latex)
            if match is not None:
                matches.append((match, formula_action))
        keep = True
        for match, action in matches:
            reason = "contaminated_formula" if match.kind == "formula" else "contaminated_image"
            current.contamination.append(
                {
                    "train_source": spec.name,
                    "train_id": record.id,
                    "kind": match.kind,
                    "test_set": match.test_set,
                    "test_id": match.test_id,
                    "distance": match.distance,
                    "excluded": action == "exclude" and keep,
                    "rendered": bool(record.meta.get("rendered")),
                }
            )
            if action == "exclude" and keep:
                file, line = _where(record)
                excluded.add(spec.name, reason, file, line, f"{record.id}: {match.describe()}")
                keep = False
        return keep

    # ---- reading -------------------------------------------------------------------------------- #

    def _selected_records(
        self, plan: SplitPlan, spec: SourceSpec, position: dict[str, Any], reader_rejects: Rejects
    ):
        """:class:`StreamItem`\\ s of one source after the holdout and the cap, then an end marker.

        ``index`` is the reader's cursor after each record (the resume position). The first
        ``items`` were handled by completed shards, whose saved reader rejections already count
        them: the reader passes over them without opening their images and without reporting
        their rejections (:class:`~data_prep.readers.common.ReadCursor`).
        """
        from data_prep.readers import get_reader
        from data_prep.readers.common import ReadCursor

        reader = get_reader(spec.reader)
        cursor = ReadCursor(skip=position.get("items", 0))
        selected = position.get("selected", 0)
        last_total = -1

        def snapshot() -> dict[str, Any] | None:
            nonlocal last_total
            if len(reader_rejects) == last_total:
                return None
            last_total = len(reader_rejects)
            return rejects_to_state(reader_rejects)

        records = reader(Path(spec.root), spec.split, reader_rejects, cursor=cursor, **spec.options)
        if cursor.skip:
            logger.info("%s: passing over the %d items completed shards cover", spec.name, cursor.skip)
        for record in records:
            index = cursor.passed
            if spec.holdout is not None and plan.holdout_side is not None:
                in_holdout = (
                    stable_fraction(self.recipe.seed, "holdout", spec.name, record.id) < spec.holdout.fraction
                )
                if in_holdout != (plan.holdout_side == "in"):
                    continue
            if spec.max_records is not None and selected >= spec.max_records:
                break
            selected += 1
            yield StreamItem(index, selected, snapshot(), record)
        yield StreamItem(None, selected, rejects_to_state(reader_rejects), None)

    def _prepared_stream(self, plan: SplitPlan, position: dict[str, Any], reader_rejects: Rejects):
        """``(spec, StreamItem)`` with ``prepared`` filled in, in reader order, source after source."""
        for spec in plan.sources:
            source_position = position.get(spec.name, {})
            if source_position.get("done"):
                continue
            if plan.is_train:
                processor = RecordProcessor(
                    self.recipe.seed,
                    spec.name,
                    spec.tasks,
                    self._load_predictions(spec),
                    self.confusions.get(spec.name),
                )
            else:
                processor = RecordProcessor(self.recipe.seed, spec.name, {}, {})
            items = self._selected_records(plan, spec, source_position, reader_rejects)
            for item in self._map(processor, items):
                yield spec, item

    def _map(self, processor: RecordProcessor, items) -> Iterator[StreamItem]:
        if self.num_proc == 1:
            for item in items:
                yield _process(processor, item)
            return
        # Workers encode while the pool's feeder thread runs the reader; the semaphore bounds the
        # number of decoded images waiting in between.
        slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)

        def bounded():
            for item in items:
                slots.acquire()
                yield item

        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        with context.Pool(self.num_proc, initializer=_init_worker, initargs=(processor,)) as pool:
            for item in pool.imap(_work, bounded(), chunksize=4):
                slots.release()
                yield item

    def _load_confusions(self) -> dict[str, dict[str, ConfusionTable]]:
        """Per train source and error task, the built-in table plus the learned one it names."""
        tables: dict[str, ConfusionTable] = {}
        out: dict[str, dict[str, ConfusionTable]] = {}
        for spec in self.recipe.train:
            for task, task_spec in spec.tasks.items():
                path = task_spec.confusions
                if path:
                    if path not in tables:
                        where = f"{self.recipe.path}: source {spec.name!r}: tasks.{task}.confusions"
                        tables[path] = learned_confusions(path, where)
                    out.setdefault(spec.name, {})[task] = tables[path]
        return out

    def _load_predictions(self, spec: SourceSpec) -> dict[str, dict[str, list[str]]]:
        out: dict[str, dict[str, list[str]]] = {}
        for task, task_spec in spec.tasks.items():
            if task_spec.predictions:
                from data_prep.tasks.error_driven import read_predictions

                merged: dict[str, list[str]] = {}
                for path in task_spec.predictions:
                    for record_id, wrong in read_predictions(path).items():
                        merged.setdefault(record_id, []).extend(
                            p for p in wrong if p not in merged.get(record_id, [])
                        )
                out[task] = merged
        return out

    # ---- files --------------------------------------------------------------------------------- #

    def _write_shard(self, path: Path, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        # The arrow schema of the record features carries the HF metadata that `datasets` reads
        # back (the Image feature); small row groups keep random access to embedded images cheap.
        schema = self.features.arrow_schema
        table = pa.Table.from_pydict(
            {name: [row[name] for row in rows] for name in schema.names}, schema=schema
        )
        with atomic_output(path) as tmp:
            pq.write_table(table, tmp, row_group_size=PARQUET_ROW_GROUP)

    def _merge_into_last(
        self, work_dir: Path, entry: dict[str, Any], current: ShardStats, checkpoint: dict[str, Any]
    ) -> None:
        """Fold what was gathered after the last row into the last shard's record."""
        stats_path = work_dir / f"{entry['name']}.stats.json"
        stats = json.loads(stats_path.read_text())
        stats["contamination"] += current.contamination
        write_json_atomic(stats_path, stats, indent=None)
        entry.update(checkpoint)
        self._save_manifest()

    def _clean_leftovers(self, split: str, work_dir: Path, keep: set[str]) -> None:
        """Remove temporary files and shards of an interrupted run that the manifest never recorded."""
        for path in work_dir.iterdir():
            stem = path.name.split(".")[0]
            if path.name.endswith(".tmp") or stem not in keep:
                logger.info("removing leftover %s", path)
                path.unlink()
        final_dir = self.out / split
        if final_dir.is_dir():
            for path in final_dir.glob("*.parquet*"):
                if path.name.split("-of-")[0] not in keep:
                    path.unlink()

    def _finish_split(self, split: str, state: dict[str, Any], result: SplitResult) -> None:
        """Move the shards to ``<out>/<split>/`` under their final names and mark the split done."""
        final_dir = self.out / split
        final_dir.mkdir(parents=True, exist_ok=True)
        total = len(state["shards"])
        files = []
        for index, entry in enumerate(state["shards"]):
            target = final_dir / SHARD_PATTERN.format(index=index, total=total)
            source = self.out / entry["file"]
            if source.exists():
                os.replace(source, target)
            elif not target.exists():
                raise RuntimeError(f"shard {entry['file']} of split {split} is missing; rerun with --fresh")
            entry["file"] = str(target.relative_to(self.out))
            files.append(entry["file"])
        state["complete"] = True
        self._save_manifest()
        result.shards = files
        rows = sum(e["rows"] for e in state["shards"])
        logger.info("split %s: %d rows in %d shard(s) -> %s", split, rows, total, final_dir)


# --------------------------------------------------------------------------- #
# Entry point
# --------------------------------------------------------------------------- #


def build_dataset(
    recipe: DataRecipe | str | Path,
    output_dir: str | Path | None = None,
    *,
    max_reject_fraction: float | None = None,
    num_proc: int | None = None,
    sharegpt: bool | None = None,
    fresh: bool = False,
    progress: bool = True,
) -> Path:
    """Build the recipe's dataset; returns the output folder. Arguments override the recipe."""
    if not isinstance(recipe, DataRecipe):
        recipe = load_recipe(recipe, require_paths=True)
    out = Path(output_dir or recipe.output_dir)
    limit = max_reject_fraction if max_reject_fraction is not None else recipe.max_reject_fraction
    builder = DatasetBuilder(
        recipe, out, num_proc=num_proc or recipe.num_proc, fresh=fresh, progress=progress
    )
    builder.build(limit)
    if sharegpt if sharegpt is not None else recipe.sharegpt:
        from data_prep.sharegpt import export_sharegpt

        export_sharegpt(out, out / "sharegpt")
    logger.info("dataset written to %s (report: %s)", out, out / "report.md")
    return out


def _fraction_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1 (0.02 = 2%), got {text!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m data_prep.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="data recipe YAML (recipes/data/*.yaml)")
    parser.add_argument("--output-dir", help="where to write the dataset (default: the recipe's output_dir)")
    parser.add_argument(
        "--max-reject-fraction",
        type=_fraction_arg,
        help="fail when a larger share of a split's input is rejected (a number from 0 to 1)",
    )
    parser.add_argument(
        "--num-proc", type=int, help="worker processes encoding images (default: the recipe's, else 1)"
    )
    parser.add_argument(
        "--sharegpt", action="store_true", default=None, help="also export LLaMA-Factory ShareGPT JSON"
    )
    parser.add_argument("--fresh", action="store_true", help="discard an earlier build in the output folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        build_dataset(
            args.config,
            args.output_dir,
            max_reject_fraction=args.max_reject_fraction,
            num_proc=args.num_proc,
            sharegpt=args.sharegpt,
            fresh=args.fresh,
            progress=not args.no_progress,
        )
    except (RecipeError, FileNotFoundError, TooManyRejects) as err:
        logger.error("%s", err)
        return 2 if not isinstance(err, TooManyRejects) else 3
    except KeyboardInterrupt:
        # Ctrl-C is a normal way to stop a long build: finished shards are kept, so say how to go on.
        logger.warning("interrupted: finished shards are kept; run the same command again to resume")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
