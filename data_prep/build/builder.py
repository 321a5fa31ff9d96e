"""The dataset builder: every split of a recipe into ``<out>``, resumably (see ``data_prep.build``).

Per split: stream each source's records (``stream``), check and place each prepared record
(duplicates, test-set contamination, task caps), write shards atomically with their resume state
(``state``), then either finish the split (shards under their final names) or, when it has
no rows or too many rejects, discard it so a rerun reads it afresh.
"""

from __future__ import annotations

import collections
import json
import logging
import os
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from data_prep.build.contamination import ContaminationIndex, Fingerprint
from data_prep.build.recipe import DEFAULT_MAX_REJECT_FRACTION, DataRecipe, RecipeError, SourceSpec
from data_prep.build.records import Prepared, where_of
from data_prep.build.results import SplitResult, split_problem
from data_prep.build.safety import check_output_dir, remove_leftovers, remove_own_files
from data_prep.build.screening import passes_contamination
from data_prep.build.state import ShardStats, rejects_from_state, rejects_to_state
from data_prep.build.stream import SplitPlan, load_confusions, plan_splits, prepared_stream
from data_prep.contract import Record, record_features
from data_prep.dataset import MANIFEST, shard_name, write_shard
from data_prep.fingerprint import rows_fingerprint, split_fingerprint
from data_prep.io_utils import file_sha256, write_json_atomic
from data_prep.rejects import Reject, Rejects, TooManyRejects

logger = logging.getLogger("data_prep.build")

#: Bumped when the manifest's meaning changes (2: a source's position counts the reader's items,
#: see ``ReadCursor``, not the records it yielded; 3: shard statistics count reader records and
#: inverted images); an older manifest is rebuilt, not misread.
MANIFEST_FORMAT = 3
WORK_DIR = ".build"


# --------------------------------------------------------------------------- #
# The build
# --------------------------------------------------------------------------- #


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
        check_output_dir(self.out, recipe)  # before anything is written
        self.work = self.out / WORK_DIR
        self.num_proc = max(1, num_proc)
        self.progress = progress
        self.recipe_hash = recipe.content_hash()
        self.confusions = load_confusions(recipe)  # before any work: a bad table fails at once
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
                why = (
                    f"the recipe changed since the last build (hash {old_hash} -> {self.recipe_hash}; "
                    "the hash also covers the task answer format, contract.TASK_FORMAT_VERSION)"
                )
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
        """Delete what an earlier build wrote here (only its own files, by name; see
        :func:`data_prep.build.safety.remove_own_files`)."""
        from data_prep.build.card import CARD_MARKER

        remove_own_files(self.out, list(manifest.get("splits", {})), WORK_DIR, CARD_MARKER)

    def _save_manifest(self) -> None:
        write_json_atomic(self.out / MANIFEST, self.manifest)

    # ---- top level --------------------------------------------------------------------------- #

    def build(self, max_reject_fraction: float | None = DEFAULT_MAX_REJECT_FRACTION) -> list[SplitResult]:
        """Build every split; a split that fails its checks is discarded, never recorded finished
        (:class:`TooManyRejects` says what to do), and the report says which one failed."""
        results: list[SplitResult] = []
        for plan in plan_splits(self.recipe):
            result, state = self.build_split(plan)
            results.append(result)
            if state is None:  # finished by an earlier run, checked then
                continue
            problem = split_problem(plan, result, results, max_reject_fraction)
            if problem is not None:
                self._discard_split(plan.name, state)
                self.write_report(results, failed=f"split {plan.name!r}")
                raise TooManyRejects(
                    f"{problem}. Nothing of split {plan.name!r} was kept: fix the input (the first "
                    f"rejections of each reason are listed in {self.out / 'report.md'}) and run the same "
                    "command again, which rebuilds this split (finished splits are kept); or allow more "
                    "rejections with --max-reject-fraction (the recipe's max_reject_fraction)"
                )
            self._finish_split(plan.name, state, result)
        report = self.write_report(results)
        from data_prep.build.card import write_card

        write_card(self.out, report, self.recipe)
        return results

    def _discard_split(self, split: str, state: dict[str, Any]) -> None:
        """Forget a failed split: its shards and resume state go, so a rerun reads it afresh."""
        for entry in state["shards"]:
            (self.out / entry["file"]).unlink(missing_ok=True)
            (self.work / split / f"{entry['name']}.stats.json").unlink(missing_ok=True)
        self.manifest["splits"].pop(split, None)
        self._save_manifest()

    def write_report(self, results: list[SplitResult], failed: str | None = None) -> dict[str, Any]:
        from data_prep.build.report import build_report, write_report

        report = build_report(self.recipe, results, self.recipe_hash, failed=failed)
        write_report(report, self.out)
        return report

    # ---- one split --------------------------------------------------------------------------- #

    def build_split(self, plan: SplitPlan) -> tuple[SplitResult, dict[str, Any] | None]:
        """The split's result and its manifest state to finish (``None`` when already finished)."""
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
            plan.name,
            [s["file"] for s in done],
            stats,
            reader_rejects,
            rejects,
            task_rejects,
            excluded,
            reader_rejects_in="train" if plan.holdout_side == "in" else None,
        )
        if state["complete"]:
            logger.info("split %s: already built (%d shards), skipping", plan.name, len(done))
            return result, None
        remove_leftovers(self.out, plan.name, work_dir, {s["name"] for s in done})
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
            # The checksum lets every loader tell a damaged or replaced shard (data_prep.dataset).
            sha256 = file_sha256(work_dir / f"{name}.parquet")
            # What the rows hold: the split's fingerprint is read from the manifest (data_prep.fingerprint).
            fingerprint = rows_fingerprint(buffer)
            state["shards"].append(
                {
                    "name": name,
                    "file": file,
                    "rows": len(buffer),
                    "sha256": sha256,
                    "fingerprint": fingerprint,
                    **checkpoint(),
                }
            )
            self._save_manifest()
            result.shards.append(file)
            result.stats.append(current)
            buffer, current = [], ShardStats()

        for spec, item in prepared_stream(
            self.recipe, plan, position, reader_rejects, self.confusions, self.num_proc
        ):
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
            flush()  # an empty split still gets its (empty) shard: the report counts from it
        else:
            # Nothing left to write, but what came after the last row (rejections, exclusions,
            # finished sources) belongs to the split: fold it into the last shard's record.
            self._merge_into_last(work_dir, state["shards"][-1], current, checkpoint())
            result.stats[-1].contamination += current.contamination
        return result, state

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
        file, line = where_of(record)
        if record.id in seen_ids:
            rejects.add(
                record.source, "duplicate_id", file, line, f"{record.id} already in split {plan.name}"
            )
            return
        if plan.is_train and len(self.index):
            if not passes_contamination(
                self.recipe.contamination, self.index, spec.name, prepared, current, excluded
            ):
                return
        for reject in prepared.rejects:
            task_rejects.add(reject.source, reject.reason, reject.file, reject.line, reject.detail)
        seen_ids.add(record.id)
        record.split = plan.name
        current.inputs += 1
        if record.meta.get("inverted"):
            current.inverted[spec.name] += 1
        if prepared.answer_problem is not None:  # a published answer, kept verbatim (answers: published)
            reason, detail = prepared.answer_problem
            current.kept_answer_problems[reason] += 1
            if len(current.kept_answer_examples) < 5:
                current.kept_answer_examples.append(f"{file}:{line}: {reason} ({detail})"[:300])
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

    # ---- files --------------------------------------------------------------------------------- #

    def _write_shard(self, path: Path, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa

        # The arrow schema of the record features carries the HF metadata that `datasets` reads
        # back (the Image feature).
        schema = self.features.arrow_schema
        write_shard(
            path,
            pa.Table.from_pydict({name: [row[name] for row in rows] for name in schema.names}, schema=schema),
        )

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

    def _finish_split(self, split: str, state: dict[str, Any], result: SplitResult) -> None:
        """Move the shards to ``<out>/<split>/`` under their final names and mark the split done."""
        final_dir = self.out / split
        final_dir.mkdir(parents=True, exist_ok=True)
        total = len(state["shards"])
        files = []
        for index, entry in enumerate(state["shards"]):
            target = final_dir / shard_name(index, total)
            source = self.out / entry["file"]
            if source.exists():
                os.replace(source, target)
            elif not target.exists():
                raise RuntimeError(f"shard {entry['file']} of split {split} is missing; rerun with --fresh")
            entry["file"] = str(target.relative_to(self.out))
            files.append(entry["file"])
        state["fingerprint"] = split_fingerprint(state["shards"])
        state["complete"] = True
        self._save_manifest()
        result.shards = files
        rows = sum(e["rows"] for e in state["shards"])
        logger.info("split %s: %d rows in %d shard(s) -> %s", split, rows, total, final_dir)
