"""Helpers every reader shares: label files split on ``\\n`` only, image indexes, option paths, and
:class:`RecordMaker`, the label-line-to-record steps (with their counted rejects) of every reader
that pairs a label file with an image folder."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from data_prep.answer_check import KEPT_WHEN_PUBLISHED, answer_problem, length_problem
from data_prep.contract import Record, main_record
from data_prep.images import DatasetRoot, ImageError, blank_detail, load_image, on_white
from data_prep.ink import check_invert_mode, dark_ink_on_light
from data_prep.rejects import Rejects

#: The UTF-8 byte-order mark some Windows editors write at the start of a text file.
UTF8_BOM = b"\xef\xbb\xbf"
#: Image suffixes readers look for when a label names an image without one.
IMAGE_SUFFIXES = (".bmp", ".png", ".jpg", ".jpeg")


@dataclasses.dataclass
class ReadCursor:
    """Where a reader stands in its own listing, so an interrupted build resumes without decoding
    again what it already wrote.

    An *item* is one entry the reader would turn into a record: a labelled line that reaches
    :meth:`RecordMaker.make`, or one InkML file. ``passed`` counts the items done so far (made,
    rejected or skipped); it is known before any image is opened, so it is the resume position.
    The first ``skip`` items give no record and their image is never opened (nor their InkML
    parsed); the cheap steps still run (label lines, tokenising, duplicate ids), so the reader
    carries on exactly as a full read would. Rejections met before the reader is past the skipped
    items are not reported (the run that read them counted them): see :func:`start_reading`.
    """

    skip: int = 0
    passed: int = 0

    @property
    def skipping(self) -> bool:
        """True while the next item (or the lines before it) lies within the skipped ones."""
        return self.passed < self.skip


class _RejectsAfterSkip(Rejects):
    """Forwards rejections to ``target`` once ``cursor`` is past its skipped items."""

    def __init__(self, target: Rejects, cursor: ReadCursor) -> None:
        super().__init__(log=False)
        self.target = target
        self.cursor = cursor
        self.keep_answers = target.keep_answers

    def add(self, source, reason, file, line=None, detail="") -> None:  # noqa: D401 - same API
        if not self.cursor.skipping:
            self.target.add(source, reason, file, line, detail)

    def __len__(self) -> int:
        return len(self.target)


def start_reading(cursor: ReadCursor | None, rejects: Rejects) -> tuple[ReadCursor, Rejects]:
    """The cursor a reader advances (a fresh one when ``None``) and the rejects it reports to.

    With items to skip, the rejects drop what is met before the reader is past them: a rejection
    of item ``k`` is made while ``passed == k - 1``, one between items ``k`` and ``k + 1`` (a bad
    label line) while ``passed == k``, so exactly those a full read reports after item ``skip``
    get through.
    """
    cursor = cursor if cursor is not None else ReadCursor()
    return cursor, (_RejectsAfterSkip(rejects, cursor) if cursor.skip else rejects)


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line_number, raw_bytes)`` for each line, split on ``\\n`` only (1-based numbers).

    Splitting on universal newlines would also break on ``\\x0b``, ``\\x1c``, ``\\u2028``... that
    occur inside some labels and shift every following line (im2latex: 104,563 lines instead of
    103,558). A trailing ``\\r`` (Windows line ends) is dropped; blank lines are skipped.
    """
    data = path.read_bytes().removeprefix(UTF8_BOM)  # a BOM would glue itself to line 1's name
    for number, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.removesuffix(b"\r")
        if raw.strip():
            yield number, raw


def decode_line(raw: bytes, source: str, file: Path, line: int, rejects: Rejects) -> str | None:
    """UTF-8 text of one line, or ``None`` after a ``bad_encoding`` reject."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        rejects.add(source, "bad_encoding", file, line, f"not UTF-8: {err.reason} at byte {err.start}")
        return None


def iter_text_lines(path: Path, source: str, rejects: Rejects) -> Iterator[tuple[int, str]]:
    """Decoded lines of a label file; undecodable lines are rejected and skipped."""
    for number, raw in iter_lines(path):
        text = decode_line(raw, source, path, number, rejects)
        if text is not None:
            yield number, text


def index_images(directory: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> dict[str, Path]:
    """Map both ``file name`` and ``stem`` to the path of every image in ``directory``.

    One directory listing instead of a ``stat`` per label keeps large datasets fast.
    """
    index: dict[str, Path] = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            name = entry.name
            if os.path.splitext(name)[1].lower() in suffixes:
                path = Path(entry.path)
                index[name] = path
                index.setdefault(os.path.splitext(name)[0], path)
    return index


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a clear ``FileNotFoundError`` naming what was expected."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def option_path(root: Path, value: str | Path) -> Path:
    """An option path, relative to ``root`` unless absolute."""
    value = Path(value)
    return value if value.is_absolute() else root / value


def first_existing(candidates: list[Path], what: str) -> Path:
    """The first of ``candidates`` that exists, else an error listing every place looked at."""
    for candidate in candidates:
        if candidate.exists():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"{what} not found; looked for: {looked}")


def find_path(
    root: Path, given: str | Path | None, candidates: list[Path], what: str, *, folder: bool = False
) -> Path:
    """The path a reader option names (relative to ``root`` unless absolute; it must exist), or when
    the option is unset the first existing of ``candidates``; a clear ``FileNotFoundError`` otherwise."""
    if given is not None:
        return (require_dir if folder else require_file)(option_path(root, given), what)
    return first_existing(candidates, what)


def iter_tab_labels(path: Path, source: str, rejects: Rejects) -> Iterator[tuple[int, str, str]]:
    """``(line, name, label)`` of each ``NAME<TAB>label`` line of a caption/labels file.

    Rejected: ``bad_encoding``, ``no_tab`` (no tab on the line), ``empty_label`` (no name or no
    label after the tab).
    """
    for line, text in iter_text_lines(path, source, rejects):
        name, tab, label = text.partition("\t")
        name = name.strip()
        if not tab:
            rejects.add(source, "no_tab", path, line, f"expected NAME<TAB>tokens: {text[:80]!r}")
        elif not label.strip() or not name:
            rejects.add(source, "empty_label", path, line, f"name {name!r}")
        else:
            yield line, name, label


def load_or_reject(
    path: Path, root: Path | DatasetRoot, source: str, rejects: Rejects, file: Path, line: int | None
) -> Image.Image | None:
    """The decoded image (mode ``L`` or ``RGB``), or ``None`` after rejecting it with its
    :class:`ImageError` reason."""
    try:
        return on_white(load_image(path, root))
    except ImageError as err:
        rejects.add(source, err.reason, file, line, f"{path}: {err.detail}" if err.detail else str(path))
        return None


def label_latex(
    label: str, tokenize_label: bool, source: str, rejects: Rejects, file: Path, line: int | None, what: str
) -> str | None:
    """``label`` (tokenised with :func:`tokenize` when asked), or ``None`` after a ``latex_error``
    (the tokeniser cannot read it), ``empty_label`` (no tokens), ``unbalanced_braces`` or
    ``dangling_script`` reject (:func:`data_prep.answer_check.answer_problem`); ``what`` names the
    item."""
    latex = label
    too_long = length_problem(label)  # before tokenising: a 100 MB caption is never parsed
    if too_long is not None:
        rejects.add(source, too_long[0], file, line, f"{what}: {too_long[1]}")
        return None
    if tokenize_label:
        try:
            latex = tokenize(label)
        except ValueError as err:
            rejects.add(source, "latex_error", file, line, f"{what}: {err}; label: {label[:80]!r}")
            return None
    return checked_answer(latex, source, rejects, file, line, what)


def checked_answer(
    latex: str, source: str, rejects: Rejects, file: Path | str, line: int | None, what: str
) -> str | None:
    """``latex`` when it can be an answer, else ``None`` after rejecting it with the reason.

    With ``rejects.keep_answers`` (a test set keeping its published answers) an answer whose only
    problem is one of ``KEPT_WHEN_PUBLISHED`` is returned unchanged; the build counts it."""
    problem = answer_problem(latex)
    if problem is not None and not (rejects.keep_answers and problem[0] in KEPT_WHEN_PUBLISHED):
        reason, detail = problem
        rejects.add(source, reason, file, line, f"{what}: {detail}; label: {latex[:80]!r}")
        return None
    return latex


def check_invert(value: str | bool, source: str) -> str | bool:
    """The ``invert`` reader option, validated at the start of a read (``auto``, true or false)."""
    try:
        return check_invert_mode(value)
    except ValueError as err:
        raise ValueError(f"{source}: option {err}") from None


@dataclasses.dataclass
class RecordMaker:
    """Turns the labelled lines of one label file into main-task records: the steps every reader of
    ``label file + image folder`` shares, with their counted rejects.

    One per reader call: ``images`` (the image folder, resolved once) confines every image read,
    and ``seen`` holds the ids already claimed, so a repeated id is a ``duplicate_id`` reject.
    Each call to :meth:`make` is one item of ``cursor``: the first ``cursor.skip`` are checked
    but their image is not opened.
    """

    source: str
    split: str
    rejects: Rejects
    label_file: Path
    images: DatasetRoot
    #: Tokenise labels with :func:`tokenize` (``latex_error`` when it cannot).
    tokenize_labels: bool = False
    #: Applied to each decoded image (a crop) after the ink polarity is settled (unless
    #: ``polarity_first`` is false); ``None`` from it is a ``blank_image`` reject.
    prepare: Callable[[Image.Image], Image.Image | None] | None = None
    #: Ink polarity (:func:`data_prep.ink.dark_ink_on_light`): ``"auto"`` per image, or forced.
    invert: str | bool = "auto"
    #: Settle the polarity before ``prepare`` (default) or after it (im2latex: its pages are
    #: renders, cropped first so the decision looks at the formula, not the whole page).
    polarity_first: bool = True
    seen: set[str] = dataclasses.field(default_factory=set)
    cursor: ReadCursor = dataclasses.field(default_factory=ReadCursor)

    def reject(self, reason: str, line: int, detail: str = "") -> None:
        self.rejects.add(self.source, reason, self.label_file, line, detail)

    def make(
        self, line: int, image_id: str, label: str, image_path: Path | None, **meta: Any
    ) -> Record | None:
        """The record of label-file line ``line`` (its id, raw label and image file), or ``None``
        after a reject: ``duplicate_id``, ``latex_error``, ``empty_label``, ``missing_image``
        (``image_path`` is ``None`` or absent), ``unreadable_image``, ``path_escapes_root``,
        ``pickle_refused``, ``blank_image``.

        The id is claimed once the label is usable and an image is named, before the image is
        opened. Within the cursor's skipped items this returns ``None`` without opening it.

        ``meta`` gets ``image_file`` (the image's file name, unless ``meta`` names it),
        ``label_file`` (the label file's name) and ``line``, so a later stage can cite
        ``label_file:line``.
        """
        skipped = self.cursor.skipping
        try:
            return self._make(skipped, line, image_id, label, image_path, meta)
        finally:
            self.cursor.passed += 1  # after this item's rejections, before its record is yielded

    def _make(
        self, skipped: bool, line: int, image_id: str, label: str, image_path: Path | None, meta: dict
    ) -> Record | None:
        if image_id in self.seen:
            self.reject("duplicate_id", line, image_id)
            return None
        latex = label_latex(
            label, self.tokenize_labels, self.source, self.rejects, self.label_file, line, image_id
        )
        if latex is None:
            return None
        if image_path is None:
            self.reject("missing_image", line, f"no image for {image_id} in {self.images.path}")
            return None
        # Claimed before the image is opened, so a skipped item (whose image is never opened)
        # claims it too and a resumed read stays the same as a full one. A repeated id names
        # the same image file, which would fail the same way.
        self.seen.add(image_id)
        if skipped:
            return None
        image = load_or_reject(image_path, self.images, self.source, self.rejects, self.label_file, line)
        if image is None:
            return None
        inverted = False
        if self.polarity_first:
            image, inverted = dark_ink_on_light(image, self.invert)
        if self.prepare is not None:
            # A page is checked before its crop (im2latex): an all-black page is all "ink" to the
            # crop, which frames it in white; a crop gives None on a page without ink. Every image
            # gets the same shared check again in the build's per-record step.
            blank = blank_detail(image)
            image = self.prepare(image) if blank is None else None
            blank = blank or ("no ink" if image is None else None)
            if blank is not None:
                self.reject("blank_image", line, f"{image_path.name}: {blank}")
                return None
        if not self.polarity_first:
            image, inverted = dark_ink_on_light(image, self.invert)
        where = {
            "image_file": image_path.name,
            "label_file": self.label_file.name,
            "line": line,
            "inverted": inverted,
        }
        return main_record(image_id, self.source, self.split, image, latex, **{**where, **meta})


def folder_record_maker(
    source: str, split: str, rejects: Rejects, label_file: Path, images: Path, **options: Any
) -> tuple[RecordMaker, dict[str, Path]]:
    """The :class:`RecordMaker` of ``label_file`` whose images lie in the folder ``images`` (every
    image read confined to it), and that folder's :func:`index_images`; ``options`` are the
    maker's other fields (``invert``, ``cursor``, ``tokenize_labels``...)."""
    index = index_images(images)
    return RecordMaker(source, split, rejects, label_file, DatasetRoot(images), **options), index


def tokenize(raw: str) -> str:
    """Space-separated LaTeX tokens of a raw formula (``data_prep.latex.tokenize_latex``).

    Raises ``ValueError`` (``LatexError``) on LaTeX the tokeniser cannot read.
    """
    from data_prep.latex import tokenize_latex  # local: the tokeniser is optional for plain readers

    return tokenize_latex(raw)
