"""What an export was made from, and the rules for the folder it is written into.

Every export carries ``export_provenance.json``: the format, the adapter and base it was made from
with the SHA-256 of their weights, and the training data's content fingerprints as the run folder's
``recipe.yaml`` recorded them (``train.run_folder.read_recorded_inputs``). The model card repeats
them. The file is also the export's marker: ``--overwrite`` replaces only a folder holding one, so it
never deletes an adapter, a dataset or anything else that happens to be at the output path.

:func:`export_directory` is the one way a format writes its folder: it refuses an output folder
that is, lies inside or contains the adapter or the base model (``data_prep.path_guard``), takes
the output folder's lock (``data_prep.output_lock``: one export at a time), stages the export
beside it (``atomic_directory``) and writes the provenance first.
"""

from __future__ import annotations

import contextlib
import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from train.export.common import ExportError
from train.modeling import ModelSource

#: The marker and record every export carries.
EXPORT_PROVENANCE = "export_provenance.json"


def is_export(folder: str | Path) -> bool:
    """Whether ``folder`` holds an export made here (its provenance marker)."""
    return (Path(folder) / EXPORT_PROVENANCE).is_file()


def read_export_provenance(folder: str | Path) -> dict[str, Any] | None:
    try:
        record = json.loads((Path(folder) / EXPORT_PROVENANCE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _local(path: str | None) -> str | None:
    """``path`` when it is a local folder (a hub id is not an input folder here)."""
    return path if path and Path(path).exists() else None


def _weights_sha256(folder: str | None) -> str | None:
    from train.modeling import weights_sha256

    if not folder:
        return None
    return weights_sha256(ModelSource(base=folder))


def _training_data(source: ModelSource) -> dict[str, Any] | None:
    """The dataset fingerprints the run recorded (``recipe.yaml`` ``inputs``), or those a source
    export recorded in turn (a merged export quantised further)."""
    from train.run_folder import read_recorded_inputs

    for folder in (source.adapter, source.base):
        if not folder or not Path(folder).is_dir():
            continue
        recorded = read_recorded_inputs(folder)
        if recorded:
            return recorded
        earlier = read_export_provenance(folder)
        if earlier and earlier.get("training_data"):
            return earlier["training_data"]
    return None


def export_provenance(source: ModelSource, export_format: str) -> dict[str, Any]:
    """The record of ``export_provenance.json`` for an export of ``source``."""
    return {
        "export_format": export_format,
        "adapter": str(Path(source.adapter).resolve()) if source.adapter else None,
        "adapter_sha256": _weights_sha256(_local(source.adapter)),
        "base_model": str(Path(source.base).resolve()) if _local(source.base) else source.base,
        "base_sha256": _weights_sha256(_local(source.base)),
        "training_data": _training_data(source),
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def write_export_provenance(staging: Path, source: ModelSource, export_format: str) -> dict[str, Any]:
    record = export_provenance(source, export_format)
    (staging / EXPORT_PROVENANCE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def provenance_markdown(record: dict[str, Any] | None) -> str:
    """The model card's section on what the export was made from."""
    if not record:
        return ""
    lines = ["## Provenance", "", f"Recorded in `{EXPORT_PROVENANCE}`:", ""]
    if record.get("adapter"):
        lines.append(f"- adapter `{record['adapter']}`, weights SHA-256 `{record.get('adapter_sha256')}`")
    lines.append(f"- base model `{record.get('base_model')}`, weights SHA-256 `{record.get('base_sha256')}`")
    data = record.get("training_data") or {}
    for kind, splits in data.items():
        for split, fingerprint in (splits or {}).items():
            if isinstance(fingerprint, dict):
                lines.append(
                    f"- training {kind} split `{split}`: {fingerprint.get('rows')} rows, content "
                    f"fingerprint `{fingerprint.get('content')}`"
                )
    if not data:
        lines.append("- training data fingerprint: none in the run folder's recipe.yaml (no `inputs`)")
    return "\n".join(lines) + "\n"


def check_output_dir(output_dir: str | Path, source: ModelSource, overwrite: bool) -> None:
    """Refuse, before any work, an output folder that overlaps the export's inputs, or (with
    ``--overwrite``) a non-empty folder that is not an earlier export; a non-empty folder without
    ``--overwrite`` is a :class:`FileExistsError` (the command says to pass ``--overwrite``)."""
    from data_prep.path_guard import OutputOverlapsInput, refuse_overlap

    try:
        refuse_overlap(
            output_dir,
            {"adapter": _local(source.adapter), "base model": _local(source.base)},
            name="--output-dir",
        )
    except OutputOverlapsInput as err:
        raise ExportError(str(err)) from None
    output_dir = Path(output_dir)
    if output_dir.is_file():
        raise ExportError(f"--output-dir {output_dir} is a file, not a folder")
    if not output_dir.is_dir() or not any(output_dir.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(f"{output_dir} exists and is not empty")
    if not is_export(output_dir):
        shown = ", ".join(sorted(p.name for p in output_dir.iterdir())[:6])
        raise ExportError(
            f"--overwrite refused: {output_dir} is not an export made by train.export (no "
            f"{EXPORT_PROVENANCE}; it holds {shown}); it is left as it is: delete it yourself or "
            "choose another --output-dir"
        )


@contextlib.contextmanager
def export_directory(
    output_dir: str | Path, source: ModelSource, export_format: str, overwrite: bool
) -> Iterator[Path]:
    """Check ``output_dir`` (:func:`check_output_dir`), hold its lock, and yield a staging folder
    holding ``export_provenance.json`` that replaces ``output_dir`` when the block succeeds."""
    from data_prep.io_utils import atomic_directory
    from data_prep.output_lock import OutputLocked, output_lock

    check_output_dir(output_dir, source, overwrite)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(output_lock(output_dir, what="export"))
        except OutputLocked as err:
            raise ExportError(str(err)) from None
        staging = stack.enter_context(atomic_directory(output_dir, overwrite))
        write_export_provenance(staging, source, export_format)
        yield staging


__all__ = [
    "EXPORT_PROVENANCE",
    "check_output_dir",
    "export_directory",
    "export_provenance",
    "is_export",
    "provenance_markdown",
    "read_export_provenance",
    "write_export_provenance",
]
