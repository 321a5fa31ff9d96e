"""Prediction files of every known format, read into the project's rows.

Formats are recognised from the content (see :data:`FORMATS`): the project's predictions JSONL,
Uni-MuMER's published JSON list, TAMER's published JSON object, and ``NAME<TAB>prediction`` files
joined with a ``NAME<TAB>truth`` caption file. Item ids drop a known image suffix, so the same item
has the same id in every format. Malformed items, repeated ids and predictions without a truth are
counted in :class:`data_prep.rejects.Rejects`, with file, line and reason.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from data_prep.predictions import TOO_LONG, too_long
from data_prep.readers.common import IMAGE_SUFFIXES, iter_text_lines
from data_prep.rejects import Rejects
from eval.scoring.predictions import (
    DATASET_FINGERPRINT,
    ERROR_MISSING_PREDICTION,
    REQUIRED_FIELDS,
    PredictionRow,
    completeness,
    read_meta,
    read_prediction_rows,
)
from eval.scoring.published import canonical_set_name

logger = logging.getLogger(__name__)

SOURCE = "score"

FORMATS = {
    "jsonl": "the project's predictions JSONL: one JSON object per line with id, gt, pred (eval.scoring.predictions)",
    "unimumer": 'a JSON list of {"gt": ..., "pred": ..., "img_id"?: ..., "image_path"?: ...} '
    "(Uni-MuMER's published prediction files)",
    "tamer": 'a JSON object {image_name: {"pred": ..., "gt": ..., "dist": ...}} (TAMER\'s published format)',
    "tsv": "NAME<TAB>prediction lines, joined with a NAME<TAB>truth caption file given by --gt",
}


class FormatError(ValueError):
    """The file is in none of the known formats, or is damaged."""


def known_formats() -> str:
    return "known formats:\n" + "\n".join(f"  - {name}: {text}" for name, text in FORMATS.items())


def item_id(name: str) -> str:
    """An item id from an image name: a known image suffix is removed (``18_em_5.bmp`` ->
    ``18_em_5``), anything else is kept."""
    name = name.strip()
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); {known_formats()}"
        ) from exc


def detect_format(path: str | Path) -> str:
    """The name of the format of ``path`` (a key of :data:`FORMATS`), or a :class:`FormatError`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file not found: {path}")
    text = _read_text(path)
    stripped = text.strip()
    if not stripped:
        raise FormatError(f"{path} is empty")
    first_line = next(line for line in stripped.split("\n") if line.strip())
    if stripped[0] in "[{":
        try:
            whole = json.loads(stripped)
        except json.JSONDecodeError:
            whole = None
        if isinstance(whole, list):
            if whole and all(isinstance(x, dict) and "gt" in x and "pred" in x for x in whole[:50]):
                return "unimumer"
            raise FormatError(
                f"{path}: a JSON list, but not of objects with 'gt' and 'pred'; {known_formats()}"
            )
        if isinstance(whole, dict):
            if all(k in whole for k in REQUIRED_FIELDS):
                return "jsonl"  # a one-line predictions file
            values = list(whole.values())[:50]
            if values and all(isinstance(v, dict) and "gt" in v and "pred" in v for v in values):
                return "tamer"
        try:
            first = json.loads(first_line)
        except json.JSONDecodeError:
            first = None
        if isinstance(first, dict) and all(k in first for k in REQUIRED_FIELDS):
            return "jsonl"
        raise FormatError(f"{path}: JSON, but in none of the known shapes; {known_formats()}")
    if "\t" in first_line:
        return "tsv"
    raise FormatError(f"{path}: format not recognised; {known_formats()}")


@dataclasses.dataclass
class Loaded:
    """A predictions file read into scored rows, with everything noticed on the way."""

    path: Path
    format: str
    rows: list[PredictionRow]
    rejects: Rejects
    #: Items whose distance recorded in the file differs from ours: ``{id, stored, ours}``.
    distance_disagreements: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: With ``--gt`` on a file that has its own truth: how many truths the caption file changed.
    gt_replaced: int = 0
    truth_file: Path | None = None
    #: Set when the file's ``.meta.json`` says its run did not finish (see eval.scoring.predictions.completeness).
    incomplete: str | None = None
    #: The test split's content fingerprint the file's ``.meta.json`` records (eval.evaluate's files).
    dataset_fingerprint: dict[str, Any] | None = None

    def notes(self) -> list[str]:
        notes = [f"WARNING: {self.incomplete}"] if self.incomplete else []
        notes.append(
            f"{self.path} read as {self.format} ({FORMATS[self.format].split(':')[0]}), {len(self.rows)} items"
        )
        if self.dataset_fingerprint:
            fp = self.dataset_fingerprint
            notes.append(
                f"predicted on the test split with content fingerprint {str(fp.get('content'))[:16]} "
                f"({fp.get('rows')} rows)"
            )
        if self.truth_file is not None:
            notes.append(f"truth from {self.truth_file}; it changed the truth of {self.gt_replaced} items")
        missing = sum(1 for r in self.rows if r.error == ERROR_MISSING_PREDICTION)
        if missing:
            notes.append(f"{missing} truths had no prediction: scored as wrong (empty prediction)")
        if self.rejects:
            # One note per reason, with its first example (file:line: reason (detail)).
            notes.extend(
                f"rejected as {reason}: {n}, e.g. {self.rejects.examples[(source, reason)][0]}"
                for (source, reason), n in self.rejects.counts.most_common()
            )
        if self.distance_disagreements:
            examples = ", ".join(
                f"{d['id']} (file {d['stored']}, ours {d['ours']})" for d in self.distance_disagreements[:5]
            )
            notes.append(
                f"the file's own distance disagrees with ours on {len(self.distance_disagreements)} items, "
                f"e.g. {examples}"
            )
        return notes

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "n_rows": len(self.rows),
            "truth_file": str(self.truth_file) if self.truth_file else None,
            "gt_replaced": self.gt_replaced,
            "incomplete": self.incomplete,
            "dataset_fingerprint": self.dataset_fingerprint,
            "rejects": self.rejects.to_dict(),
            "distance_disagreements": {
                "count": len(self.distance_disagreements),
                "examples": self.distance_disagreements[:20],
            },
        }


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _load_unimumer(
    path: Path, set_name: str, rejects: Rejects
) -> tuple[list[PredictionRow], list[dict[str, Any]]]:
    rows, disagreements = [], []
    for index, item in enumerate(json.loads(_read_text(path))):
        if not isinstance(item, dict) or _as_str(item.get("gt")) is None or _as_str(item.get("pred")) is None:
            rejects.add(SOURCE, "bad_item", path, index, f"item {index}: needs string 'gt' and 'pred'")
            continue
        oversized = too_long(gt=item["gt"], pred=item["pred"])
        if oversized:
            rejects.add(SOURCE, TOO_LONG, path, index, f"item {index}: {oversized}")
            continue
        image_path = _as_str(item.get("image_path"))
        name = _as_str(item.get("img_id")) or (Path(image_path).name if image_path else f"#{index}")
        row = PredictionRow(
            id=item_id(name), set=set_name, gt=item["gt"], pred=item["pred"], image_path=image_path
        )
        _note_stored_distance(row, item.get("distance"), disagreements)
        rows.append(row)
    return rows, disagreements


def _load_tamer(
    path: Path, set_name: str, rejects: Rejects
) -> tuple[list[PredictionRow], list[dict[str, Any]]]:
    rows, disagreements = [], []
    for index, (name, item) in enumerate(json.loads(_read_text(path)).items()):
        if not isinstance(item, dict) or _as_str(item.get("gt")) is None or _as_str(item.get("pred")) is None:
            rejects.add(SOURCE, "bad_item", path, index, f"{name}: needs string 'gt' and 'pred'")
            continue
        oversized = too_long(gt=item["gt"], pred=item["pred"])
        if oversized:
            rejects.add(SOURCE, TOO_LONG, path, index, f"{name}: {oversized}")
            continue
        row = PredictionRow(id=item_id(name), set=set_name, gt=item["gt"], pred=item["pred"])
        _note_stored_distance(row, item.get("dist"), disagreements)
        rows.append(row)
    return rows, disagreements


def _note_stored_distance(row: PredictionRow, stored: Any, disagreements: list[dict[str, Any]]) -> None:
    """Some published files also record the edit distance: note where it is not ours."""
    if isinstance(stored, int) and stored != row.distance:
        disagreements.append({"id": row.id, "stored": stored, "ours": row.distance})


def _read_tab_file(path: Path, rejects: Rejects, what: str) -> list[tuple[int, str, str]]:
    """``(line, id, text)`` of a ``NAME<TAB>text`` file (lines split on ``\\n`` only). A line with
    no tab and no space is a name with empty text; any other line without a tab is rejected."""
    entries = []
    for line_no, line in iter_text_lines(path, SOURCE, rejects):
        name, tab, text = line.partition("\t")
        if not tab and len(line.split()) > 1:
            rejects.add(SOURCE, "no_tab", path, line_no, f"{what} line has no TAB: {line[:80]!r}")
            continue
        oversized = too_long(**{what: text})
        if oversized:
            rejects.add(SOURCE, TOO_LONG, path, line_no, f"{item_id(name)}: {oversized}")
            continue
        entries.append((line_no, item_id(name), " ".join(text.split())))
    return entries


def read_caption_file(path: str | Path, rejects: Rejects, allow_duplicates: bool = False) -> dict[str, str]:
    """``{id: truth}`` from a ``NAME<TAB>tokens`` caption file (CROHME, HME100K label files)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"caption file not found: {path}")
    truth: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line_no, name, text in _read_tab_file(path, rejects, "caption"):
        if name in truth:
            detail = f"{name} already on line {first_line[name]}"
            if not allow_duplicates:
                raise ValueError(
                    f"{path}:{line_no}: duplicated name ({detail}); pass --allow-duplicates to keep the first"
                )
            rejects.add(SOURCE, "duplicate_truth", path, line_no, detail)
            continue
        if not text:
            rejects.add(SOURCE, "empty_truth", path, line_no, name)
            continue
        truth[name] = text
        first_line[name] = line_no
    return truth


def _load_tsv(path: Path, set_name: str, rejects: Rejects) -> tuple[list[PredictionRow], dict[str, int]]:
    """The rows (the truth is joined in afterwards; until then each carries an empty one) and the
    line of each id, so that a prediction without a truth can be cited by file and line."""
    entries = _read_tab_file(path, rejects, "prediction")
    rows = [PredictionRow(id=name, set=set_name, gt="", pred=text) for _, name, text in entries]
    return rows, {name: line_no for line_no, name, _ in reversed(entries)}


def _join_truth(
    rows: list[PredictionRow],
    truth: dict[str, str],
    set_name: str,
    path: Path,
    rejects: Rejects,
    lines: dict[str, int] | None = None,
) -> tuple[list[PredictionRow], int]:
    """Every truth gets a row: a prediction joined by id, or an empty ``missing_prediction`` one.
    Predictions without a truth are rejected (counted and reported), never scored."""
    joined, replaced, seen = [], 0, set()
    for row in rows:
        gt = truth.get(row.id)
        if gt is None:
            rejects.add(SOURCE, "prediction_without_truth", path, (lines or {}).get(row.id), row.id)
            continue
        seen.add(row.id)
        if row.gt and row.gt.split() != gt.split():
            replaced += 1
        joined.append(dataclasses.replace(row, gt=gt, distance=None, stored_distance=None))
    for name, gt in truth.items():
        if name not in seen:
            joined.append(
                PredictionRow(id=name, set=set_name, gt=gt, pred="", error=ERROR_MISSING_PREDICTION)
            )
    return joined, replaced


def _check_duplicates(
    rows: list[PredictionRow], path: Path, rejects: Rejects, allow: bool
) -> list[PredictionRow]:
    counts = collections.Counter(row.key for row in rows)
    duplicated = [key for key, n in counts.items() if n > 1]
    if not duplicated:
        return rows
    if not allow:
        shown = ", ".join(f"{s}/{i}" if s else i for s, i in duplicated[:5])
        raise ValueError(
            f"{path}: {len(duplicated)} ids occur more than once (e.g. {shown}); keeping either copy "
            "changes the score, so fix the file or pass --allow-duplicates to keep the first of each"
        )
    kept, seen = [], set()
    for row in rows:
        if row.key in seen:
            rejects.add(SOURCE, "duplicate_id", path, None, f"{row.set}/{row.id}")
            continue
        seen.add(row.key)
        kept.append(row)
    return kept


def load_predictions(
    path: str | Path,
    gt_path: str | Path | None = None,
    set_name: str | None = None,
    allow_duplicates: bool = False,
) -> Loaded:
    """Read a predictions file in any known format into scored rows.

    ``set_name`` names the set of formats that do not carry one (default: the file name, made
    canonical, e.g. ``crohme_2014_pred`` -> ``crohme2014``) and, for the project's JSONL, selects
    that set when the file holds several.
    """
    path = Path(path)
    fmt = detect_format(path)
    rejects = Rejects()
    disagreements: list[dict[str, Any]] = []
    default_set = canonical_set_name(set_name or path.stem)
    lines: dict[str, int] | None = None
    incomplete = None
    fingerprint = None
    if fmt == "jsonl":
        rows = read_prediction_rows(path, rejects)
        incomplete = completeness(path, len(rows))
        fingerprint = (read_meta(path) or {}).get(DATASET_FINGERPRINT)
        if incomplete:
            logger.warning("%s", incomplete)
        disagreements = [
            {"id": r.id, "stored": r.stored_distance, "ours": r.distance}
            for r in rows
            if r.stored_distance is not None
        ]
        rows = [r if r.set else dataclasses.replace(r, set=default_set) for r in rows]
        if set_name is not None:
            wanted = canonical_set_name(set_name)
            present = sorted({r.set for r in rows})
            rows = [r for r in rows if canonical_set_name(r.set) == wanted]
            if not rows:
                raise ValueError(
                    f"{path}: no rows of set {set_name!r}; sets in the file: {', '.join(present)}"
                )
    elif fmt == "unimumer":
        rows, disagreements = _load_unimumer(path, default_set, rejects)
    elif fmt == "tamer":
        rows, disagreements = _load_tamer(path, default_set, rejects)
    else:
        if gt_path is None:
            raise ValueError(f"{path} is a NAME<TAB>prediction file: give its truth with --gt CAPTION_FILE")
        rows, lines = _load_tsv(path, default_set, rejects)
    rows = _check_duplicates(rows, path, rejects, allow_duplicates)
    loaded = Loaded(
        path=path,
        format=fmt,
        rows=rows,
        rejects=rejects,
        distance_disagreements=disagreements,
        incomplete=incomplete,
        dataset_fingerprint=fingerprint if isinstance(fingerprint, dict) else None,
    )
    if gt_path is not None:
        sets = {r.set for r in rows}
        if len(sets) > 1:
            raise ValueError(
                f"{path} holds several sets ({', '.join(sorted(sets))}): pick one with --set to use --gt"
            )
        truth = read_caption_file(gt_path, rejects, allow_duplicates)
        set_of_rows = next(iter(sets)) if sets else default_set
        loaded.rows, loaded.gt_replaced = _join_truth(rows, truth, set_of_rows, path, rejects, lines)
        loaded.truth_file = Path(gt_path)
    if not loaded.rows:
        raise ValueError(f"{path}: no items to score")
    return loaded


# --------------------------------------------------------------------------- #
