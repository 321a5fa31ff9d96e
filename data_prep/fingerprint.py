"""Content fingerprints of built splits: what a figure, a run or an export was made from.

A split's fingerprint is recorded in ``manifest.json`` when the build writes it, so reading it
costs one small JSON file, never a pass over the images. It holds one SHA-256 per kind of content
(the row ids, the answers, the prompts and tasks, the image bytes), each over the rows in their
order, plus the row count; ``content`` covers them all. Two builds of the same recipe over the same
sources have the same fingerprint; rebuilding a test set with other captions changes ``answers``
and ``content`` only, so :func:`fingerprint_changes` can say in one line what changed.

A manifest written before fingerprints existed still records every shard's SHA-256: its split
then gets a ``shards`` fingerprint (``content`` only), which changes whenever a shard does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
#: The kinds of content hashed separately, in the order a change is reported.
PARTS = ("ids", "answers", "prompts", "images")
#: ``kind`` of a fingerprint read from an older manifest (shard checksums only).
SHARDS_ONLY = "shards"
CONTENT = "content"


def _digest(values: Iterable[str]) -> str:
    """SHA-256 over ``values`` in order; each is length-prefixed, so no two sequences collide by
    concatenation (``["ab", "c"]`` vs ``["a", "bc"]``)."""
    digest = hashlib.sha256()
    for value in values:
        data = value.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _image_sha256(image: Any) -> str:
    if isinstance(image, Mapping):
        image = image.get("bytes")
    if not isinstance(image, (bytes, bytearray)):
        return ""
    return hashlib.sha256(image).hexdigest()


def rows_fingerprint(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The fingerprint of some built rows (``id``, ``task``, ``prompt``, ``answer``, ``image``
    with its PNG ``bytes``): ``{"rows", "ids", "answers", "prompts", "images"}``.

    Rows sharing one image dict (a record and its task rows) hash its bytes once.
    """
    rows = list(rows)
    seen: dict[int, str] = {}

    def image_hash(row: Mapping[str, Any]) -> str:
        image = row.get("image")
        key = id(image)
        if key not in seen:
            seen[key] = _image_sha256(image)
        return seen[key]

    return {
        "rows": len(rows),
        "ids": _digest(str(row.get("id", "")) for row in rows),
        "answers": _digest(str(row.get("answer", "")) for row in rows),
        "prompts": _digest(f"{row.get('task', '')}\n{row.get('prompt', '')}" for row in rows),
        "images": _digest(image_hash(row) for row in rows),
    }


def combine(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One fingerprint from the fingerprints of consecutive pieces (a split's shards), with
    ``content`` over every part."""
    parts = list(parts)
    combined: dict[str, Any] = {"rows": sum(int(p["rows"]) for p in parts)}
    for name in PARTS:
        combined[name] = _digest(str(p[name]) for p in parts)
    combined[CONTENT] = _digest(f"{name}:{combined[name]}" for name in ("rows", *PARTS))
    return combined


def split_fingerprint(shards: list[Mapping[str, Any]]) -> dict[str, Any] | None:
    """A split's fingerprint from its manifest shard entries: from their row fingerprints
    (``fingerprint`` key) when every shard has one, else from their SHA-256s, else None."""
    if shards and all(isinstance(s.get("fingerprint"), Mapping) for s in shards):
        return combine(s["fingerprint"] for s in shards)
    if shards and all(s.get("sha256") for s in shards):
        return {
            "kind": SHARDS_ONLY,
            "rows": sum(int(s.get("rows", 0)) for s in shards),
            CONTENT: _digest(str(s["sha256"]) for s in shards),
        }
    return None


def read_split_fingerprint(data_dir: str | Path, split: str) -> dict[str, Any] | None:
    """The fingerprint of ``split`` of the built dataset in ``data_dir``, from its manifest (None
    when there is no manifest or it does not record the split's shards)."""
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    state = (manifest.get("splits") or {}).get(split) if isinstance(manifest, dict) else None
    if not isinstance(state, dict):
        return None
    recorded = state.get("fingerprint")
    if isinstance(recorded, dict) and recorded.get(CONTENT):
        return recorded
    return split_fingerprint(state.get("shards") or [])


def fingerprint_changes(recorded: Mapping[str, Any] | None, current: Mapping[str, Any] | None) -> str | None:
    """None when the two fingerprints say the same content, else what changed, in one line:
    ``answers changed (11 -> 11 rows)``. A missing fingerprint on either side is a change."""
    if recorded is None and current is None:
        return None
    if recorded is None or current is None:
        return "no fingerprint " + ("was recorded" if recorded is None else "is available now")
    if recorded.get(CONTENT) == current.get(CONTENT):
        return None
    rows = f"{recorded.get('rows', '?')} -> {current.get('rows', '?')} rows"
    changed = [
        name for name in PARTS if name in recorded and name in current and recorded[name] != current[name]
    ]
    if not changed:  # a shards-only fingerprint on one side: only "something" is known
        return f"the content changed ({rows})"
    return f"{', '.join(changed)} changed ({rows})"


__all__ = [
    "combine",
    "fingerprint_changes",
    "read_split_fingerprint",
    "rows_fingerprint",
    "split_fingerprint",
]
