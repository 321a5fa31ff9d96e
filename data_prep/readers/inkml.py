"""Safe InkML parsing shared by the CROHME online and MathWriting readers.

Parsed with defusedxml (no DTDs, no entity expansion, no external entities). Only the
``<annotation>`` elements that are direct children of ``<ink>`` describe the whole expression;
the ones inside ``<traceGroup>`` label single symbols: they are kept apart, as
:class:`TraceGroup` (the symbol segmentation of CROHME training files, which
:mod:`data_prep.render.ink_bank` collects into a bank of handwritten symbols).
"""

from __future__ import annotations

import dataclasses
import math
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import defusedxml
import defusedxml.ElementTree as SafeElementTree
from tqdm import tqdm

from data_prep.contract import Record, main_record
from data_prep.images import DatasetRoot, ImageError
from data_prep.ink import dark_ink_on_light
from data_prep.readers.common import ReadCursor, label_latex, option_path
from data_prep.rejects import ReasonError, Rejects
from data_prep.render.inkml import RenderOptions, render_traces


class InkmlError(ReasonError):
    """An InkML file that cannot be used; ``reason`` is a short fixed reject reason."""


@dataclasses.dataclass(frozen=True)
class TraceGroup:
    """One innermost ``<traceGroup>``: a symbol's ``truth`` label (``None``: none given) and the
    ``traceDataRef`` ids of its strokes, as written (they may name no trace: the caller checks)."""

    id: str
    label: str | None
    refs: tuple[str, ...]


@dataclasses.dataclass
class InkmlDocument:
    """Strokes as lists of ``(x, y)`` points, and the expression-level annotations by type.

    ``trace_ids``: a trace's ``id`` -> its index in ``traces`` (traces without an id, or without
    points, are not there); ``groups``: the innermost trace groups (symbol segmentation), in file
    order; empty when the file has none.
    """

    traces: list[list[tuple[float, float]]]
    annotations: dict[str, str]
    trace_ids: dict[str, int] = dataclasses.field(default_factory=dict)
    groups: list[TraceGroup] = dataclasses.field(default_factory=list)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_trace(text: str) -> list[tuple[float, float]]:
    """Points of one ``<trace>``: comma-separated points of whitespace-separated channels.

    Integer or decimal coordinates; only X and Y (the first two channels) are kept, so a time
    column (2023, MathWriting) or any extra channel (some 2013 files) is ignored.
    """
    points = []
    for chunk in text.split(","):
        values = chunk.split()
        if not values:
            continue
        if len(values) < 2:
            raise InkmlError("malformed_trace", f"point {chunk.strip()!r} has fewer than two coordinates")
        try:
            x, y = float(values[0]), float(values[1])
        except ValueError:
            raise InkmlError("malformed_trace", f"point {chunk.strip()[:40]!r} is not numeric") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InkmlError("malformed_trace", f"point {chunk.strip()[:40]!r} is not finite")
        points.append((x, y))
    return points


def parse_inkml(path: str | Path) -> InkmlDocument:
    """Traces and top-level annotations of an InkML file; raises :class:`InkmlError`."""
    try:
        root = SafeElementTree.parse(str(path)).getroot()
    except defusedxml.DefusedXmlException as err:
        raise InkmlError("malformed_xml", f"refused unsafe XML: {type(err).__name__}") from None
    except ElementTree.ParseError as err:
        raise InkmlError("malformed_xml", str(err)) from None
    except UnicodeDecodeError as err:
        raise InkmlError("bad_encoding", str(err)) from None
    if _local(root.tag) != "ink":
        raise InkmlError("malformed_xml", f"root element is <{_local(root.tag)}>, not <ink>")
    annotations: dict[str, str] = {}
    for child in root:
        if _local(child.tag) == "annotation":
            kind = child.get("type", "")
            annotations.setdefault(kind, (child.text or "").strip())
    traces = []
    trace_ids: dict[str, int] = {}
    groups: list[TraceGroup] = []
    for element in root.iter():
        tag = _local(element.tag)
        if tag == "trace":
            points = parse_trace(element.text or "")
            if points:
                if element.get("id") is not None:
                    trace_ids.setdefault(element.get("id"), len(traces))
                traces.append(points)
        elif tag == "traceGroup" and not any(_local(c.tag) == "traceGroup" for c in element):
            groups.append(_trace_group(element, len(groups)))
    if not traces:
        raise InkmlError("no_traces", "the file has no strokes")
    return InkmlDocument(traces=traces, annotations=annotations, trace_ids=trace_ids, groups=groups)


def _trace_group(element: Any, position: int) -> TraceGroup:
    """An innermost ``<traceGroup>`` (its ``xml:id``, else ``#position`` among them)."""
    group_id = next((v for k, v in element.attrib.items() if _local(k) == "id"), None)
    label = None
    refs = []
    for child in element:
        tag = _local(child.tag)
        if tag == "annotation" and child.get("type") == "truth" and label is None:
            label = (child.text or "").strip()
        elif tag == "traceView":
            refs.append(child.get("traceDataRef", ""))
    return TraceGroup(group_id or f"#{position}", label, tuple(refs))


# --------------------------------------------------------------------------- #
# Records from a folder of InkML files (CROHME online, MathWriting)
# --------------------------------------------------------------------------- #


def inkml_files(root: Path, split: str, inkml_dir: str | Path | None) -> tuple[Path, list[Path]]:
    """``(folder, sorted InkML files under it)``: ``inkml_dir`` if given, else ``root/split`` when
    it exists, else ``root``."""
    if inkml_dir is not None:
        folder = option_path(root, inkml_dir)
    else:
        folder = root / split if (root / split).is_dir() else root
    if not folder.is_dir():
        raise FileNotFoundError(f"InkML folder not found: {folder}")
    return folder, sorted(folder.rglob("*.inkml"))


def render_options(render: RenderOptions | dict[str, Any] | None) -> RenderOptions:
    """The ``render`` reader option as :class:`~data_prep.render.inkml.RenderOptions` (a dict
    gives its fields; ``None`` the defaults)."""
    return render if isinstance(render, RenderOptions) else RenderOptions(**(render or {}))


def strip_math_delimiters(raw: str) -> str:
    """Raw truth without surrounding whitespace and ``$``/``$$`` delimiters."""
    text = raw.strip()
    while len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        text = text[1:-1].strip()
    return text


def iter_inkml_records(
    files: list[Path],
    folder: Path,
    source: str,
    split: str,
    rejects: Rejects,
    pick_label: Callable[[Path, InkmlDocument], tuple[str | None, dict]],
    tokenize_label: bool,
    render_options: RenderOptions,
    cursor: ReadCursor | None = None,
) -> Iterator[Record]:
    """Parse, label, tokenise and render each file; every failure is a counted reject.

    ``pick_label(path, document)`` returns the raw label (``None``: no label) and extra meta.
    Each file is one item of ``cursor``: the first ``cursor.skip`` files are not even parsed
    (pass ``rejects`` through :func:`~data_prep.readers.common.start_reading` with the cursor).
    """
    cursor = cursor if cursor is not None else ReadCursor()
    root = DatasetRoot(folder)

    def record_of(path: Path) -> Record | None:
        """The record of one InkML file, or ``None`` after a counted reject."""
        try:
            root.resolve(path)
            document = parse_inkml(path)
        except (ImageError, InkmlError) as err:
            rejects.add(source, err.reason, path, None, err.detail)
            return None
        raw, meta = pick_label(path, document)
        if raw is None:
            rejects.add(source, "no_truth", path, None, "no ground-truth annotation")
            return None
        raw = strip_math_delimiters(raw)
        if not raw:
            rejects.add(source, "empty_label", path, None, "the ground-truth annotation is empty")
            return None
        latex = label_latex(raw, tokenize_label, source, rejects, path, None, path.stem)
        if latex is None:
            return None
        try:
            image = render_traces(document.traces, render_options)
        except ValueError as err:
            rejects.add(source, "render_error", path, None, str(err))
            return None
        # Rendered black on white by construction: the shared rule leaves it as it is.
        image, inverted = dark_ink_on_light(image, "auto")
        return main_record(
            path.stem,
            source,
            split,
            image,
            latex,
            inkml_file=str(path.relative_to(folder)),
            inverted=inverted,
            **meta,
        )

    for path in tqdm(files, desc=f"{source} {split}", unit="file", disable=len(files) < 1000):
        record = None if cursor.skipping else record_of(path)
        cursor.passed += 1  # after this file's rejections, before its record is yielded
        if record is not None:
            yield record
