"""A bank of handwritten symbols: every segmented symbol of a folder of CROHME InkML files.

CROHME training files segment their strokes into symbols: each innermost ``<traceGroup>`` has a
``truth`` label (``2``, ``x``, ``\\sqrt``, ``=``) and ``<traceView traceDataRef=..>`` links to the
strokes of that symbol. :meth:`SymbolBank.load` collects those instances by label, the label
spelled as an answer-format token (CROHME's ``\\lt`` is ``<``, ``COMMA`` is ``,``), for
:mod:`data_prep.render.ink_layout` to compose formulas from.

Nothing in a file stops the load: a file that cannot be parsed, and a group with no label, no
strokes, a link to no stroke or a label that is not one token, are counted skips with a reason
(:attr:`SymbolBank.skipped`, details in :attr:`SymbolBank.skip_details`).

    bank = SymbolBank.load("tests/fixtures/readers/inkml")
    bank.counts()   # {"-": 5, "x": 4, "2": 2, ...}
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from pathlib import Path

from data_prep.latex.vocabulary import ALIASES

Points = tuple[tuple[float, float], ...]

#: CROHME's spelled-out symbol labels (2019+ files), as answer-format tokens.
CROHME_LABELS = {"COMMA": ",", "\\comma": ","}


class BankError(ValueError):
    """A bank that cannot serve a formula (a folder with no symbols, symbols it lacks)."""


@dataclasses.dataclass(frozen=True)
class SymbolInstance:
    """One handwritten symbol: its strokes (file coordinates) and where they came from."""

    label: str
    file: str  # relative to the bank folder
    group: str  # the traceGroup's xml:id
    strokes: tuple[Points, ...]

    def provenance(self) -> dict[str, str]:
        return {"symbol": self.label, "file": self.file, "group": self.group}


def symbol_token(label: str) -> str | None:
    """A traceGroup label as one answer-format token (``None``: it is not one token)."""
    from data_prep.latex import tokenize_latex

    label = CROHME_LABELS.get(label.strip(), label.strip())
    try:
        tokens = tokenize_latex(label).split()
    except ValueError:
        return None
    if len(tokens) != 1 or tokens[0] in ("{", "}", "^", "_"):
        return None
    return ALIASES.get(tokens[0], tokens[0])


@dataclasses.dataclass
class SymbolBank:
    """Symbol instances by label; ``skipped``: reason -> count of what could not be used."""

    folder: Path
    instances: dict[str, list[SymbolInstance]] = dataclasses.field(default_factory=dict)
    skipped: Counter = dataclasses.field(default_factory=Counter)
    skip_details: list[str] = dataclasses.field(default_factory=list)
    files: int = 0

    @classmethod
    def load(cls, folder: str | Path) -> SymbolBank:
        """Every segmented symbol of the ``*.inkml`` files under ``folder`` (sorted, recursive)."""
        return _load(str(Path(folder).resolve()))

    def symbols(self) -> list[str]:
        return sorted(self.instances)

    def counts(self) -> dict[str, int]:
        return {label: len(self.instances[label]) for label in self.symbols()}

    def missing(self, needed) -> list[str]:
        """The symbols of ``needed`` the bank has no instance of, sorted."""
        return sorted(set(needed) - set(self.instances))

    def require(self, needed, what: str) -> None:
        """Raise a one-line :class:`BankError` naming the missing symbols and the bank's own."""
        missing = self.missing(needed)
        if missing:
            raise BankError(
                f"{what} needs symbol(s) {' '.join(missing)} that the ink bank {self.folder} lacks; "
                f"it has: {' '.join(self.symbols()) or 'none'}"
            )

    def _skip(self, reason: str, file: str, detail: str) -> None:
        self.skipped[reason] += 1
        self.skip_details.append(f"{file}: {reason}: {detail}")

    def _add_file(self, path: Path) -> None:
        from data_prep.readers.inkml import InkmlError, parse_inkml

        name = path.relative_to(self.folder).as_posix()
        try:
            document = parse_inkml(path)
        except InkmlError as err:
            self._skip(err.reason, name, err.detail)
            return
        self.files += 1
        if not document.groups:
            self._skip("no_segmentation", name, "no traceGroup")
        for group in document.groups:
            where = f"traceGroup {group.id}"
            if not group.label:
                self._skip("no_label", name, f"{where} has no truth annotation")
                continue
            token = symbol_token(group.label)
            if token is None:
                self._skip("bad_label", name, f"{where}: {group.label[:40]!r} is not one symbol")
                continue
            if not group.refs:
                self._skip("no_strokes", name, f"{where} ({group.label}) links no stroke")
                continue
            unknown = [ref for ref in group.refs if ref not in document.trace_ids]
            if unknown:
                self._skip("unknown_trace", name, f"{where} ({group.label}) links missing trace(s) {unknown}")
                continue
            strokes = tuple(tuple(document.traces[document.trace_ids[ref]]) for ref in group.refs)
            self.instances.setdefault(token, []).append(SymbolInstance(token, name, group.id, strokes))


@functools.lru_cache(maxsize=8)
def _load(folder: str) -> SymbolBank:
    path = Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(f"ink bank folder not found: {path}")
    bank = SymbolBank(path)
    for file in sorted(path.rglob("*.inkml")):
        bank._add_file(file)
    if not bank.instances:
        raise BankError(
            f"the ink bank {path} has no segmented symbols ({bank.files} InkML file(s) read, "
            f"skipped: {dict(bank.skipped) or 'none'})"
        )
    return bank
