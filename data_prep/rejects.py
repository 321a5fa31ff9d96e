"""Counted, reported rejections: bad input never disappears silently and never stops the rest.

Every reader and builder takes a :class:`Rejects` and calls :meth:`Rejects.add` for each input it
cannot use, with the file, the line (when there is one) and a short reason from a fixed
vocabulary, so reports can group by reason.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import re
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)
#: Object addresses in error messages (``<_io.BytesIO object at 0x7f...>``) differ between runs.
_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")


def clean_detail(detail: str) -> str:
    """A reject's detail as reported: object addresses dropped (reports must be reproducible), at
    most 300 characters."""
    return _ADDRESS.sub("", detail)[:300]


class ReasonError(ValueError):
    """Input that cannot be used, naming why: ``reason`` is a short fixed slug (what a reject
    counts under), ``detail`` the particulars; the message is ``reason: detail``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class TooManyRejects(RuntimeError):
    """Raised when the rejected fraction exceeds the caller's limit."""


@dataclasses.dataclass(frozen=True)
class Reject:
    source: str
    reason: str
    file: str
    line: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        text = f"[{self.source}] {where}: {self.reason}"
        return f"{text} ({self.detail})" if self.detail else text


class Rejects:
    """Collects rejections; keeps every count and the first ``keep_examples`` per reason.

    ``keep_answers``: set by the build for a test set whose source says ``answers: published``;
    the readers' answer check (``data_prep.readers.common.checked_answer``) then keeps an answer
    with a quality problem (``answer_check.KEPT_WHEN_PUBLISHED``) instead of rejecting it, and
    the build counts the problem in its report.
    """

    keep_answers: bool = False

    def __init__(self, keep_examples: int = 5, log: bool = True) -> None:
        self.keep_examples = keep_examples
        self.log = log
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.examples: dict[tuple[str, str], list[Reject]] = collections.defaultdict(list)

    def add(
        self,
        source: str,
        reason: str,
        file: str | Path,
        line: int | None = None,
        detail: str = "",
    ) -> None:
        reject = Reject(source, reason, str(file), line, clean_detail(detail))
        key = (source, reason)
        self.counts[key] += 1
        if len(self.examples[key]) < self.keep_examples:
            self.examples[key].append(reject)
            if self.log:
                logger.warning("skipped %s", reject)

    def __len__(self) -> int:
        return sum(self.counts.values())

    def total(self, source: str | None = None) -> int:
        return sum(n for (src, _), n in self.counts.items() if source is None or src == source)

    def by_reason(self, source: str | None = None) -> dict[str, int]:
        out: collections.Counter[str] = collections.Counter()
        for (src, reason), n in self.counts.items():
            if source is None or src == source:
                out[reason] += n
        return dict(out.most_common())

    def check_fraction(self, accepted: int, max_fraction: float | None, what: str = "") -> None:
        """Fail clearly when too large a share of the input was rejected."""
        if max_fraction is None:
            return
        seen = accepted + len(self)
        if seen and len(self) / seen > max_fraction:
            reasons = ", ".join(f"{r}: {n}" for r, n in self.by_reason().items())
            raise TooManyRejects(
                f"{what or 'input'}: {len(self)} of {seen} records rejected "
                f"({len(self) / seen:.1%} > {max_fraction:.1%}); reasons: {reasons}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": len(self),
            "by_source_and_reason": [
                {
                    "source": src,
                    "reason": reason,
                    "count": n,
                    "examples": [str(r) for r in self.examples[(src, reason)]],
                }
                for (src, reason), n in self.counts.most_common()
            ],
        }

    def summary(self) -> str:
        if not self:
            return "no records rejected"
        lines = [f"{len(self)} records rejected:"]
        for (src, reason), n in self.counts.most_common():
            lines.append(f"  {src}: {reason}: {n}  e.g. {self.examples[(src, reason)][0]}")
        return "\n".join(lines)
