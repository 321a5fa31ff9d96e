"""Formula corpora a recipe can name for rendering: ``(formula_id, latex)`` in the answer format.

One of (a mapping with exactly one key):

* ``generator: {symbols: digits+operators, max_symbols: 6, ...}`` with ``count`` and ``seed``
  (:mod:`data_prep.render.generator`);
* ``caption_file: PATH``: ``NAME<TAB>tokens`` lines (CROHME / HME100K captions);
* ``im2latex_formulas: PATH``: an im2latex ``formulas.lst`` (raw LaTeX, split on ``\\n`` only,
  tokenised; the line index is the id);
* ``text_file: PATH``: one raw formula a line (tokenised);
* ``dataset: PATH`` (+ ``split``, default ``train``): the main-task answers of a built dataset.

Paths are relative to the source ``root``. A line that cannot be read or tokenised is counted in
``rejects`` with its file and line, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from data_prep.rejects import Rejects

KINDS = ("generator", "caption_file", "im2latex_formulas", "text_file", "dataset")


class CorpusError(ValueError):
    """A corpus mapping that names nothing usable."""


def _tokenized(raw: str, source: str, rejects: Rejects, file: Path, line: int) -> str | None:
    from data_prep.latex import tokenize_latex

    try:
        latex = tokenize_latex(raw)
    except ValueError as err:
        rejects.add(source, "latex_error", file, line, f"{err}; formula {raw[:80]!r}")
        return None
    if not latex.strip():
        rejects.add(source, "empty_label", file, line, f"no tokens in {raw[:80]!r}")
        return None
    return latex


def iter_corpus(spec: dict[str, Any], root: Path, source: str, rejects: Rejects) -> Iterator[tuple[str, str]]:
    """``(formula_id, latex)`` of the corpus ``spec``; see the module docstring."""
    from data_prep.readers.common import iter_tab_labels, iter_text_lines, option_path, require_file

    kinds = [k for k in KINDS if k in spec]
    if len(kinds) != 1:
        raise CorpusError(f"a corpus names exactly one of {', '.join(KINDS)}; got {sorted(spec) or 'none'}")
    kind = kinds[0]
    extra = sorted(set(spec) - {kind, "count", "seed", "split"})
    if extra:
        raise CorpusError(f"unknown corpus key(s) {extra}")
    if kind == "generator":
        from data_prep.render.generator import FormulaGenerator, GeneratorSpec

        if "count" not in spec:
            raise CorpusError("a generator corpus needs 'count' (how many formulas)")
        generator = FormulaGenerator(
            GeneratorSpec.from_options(spec["generator"] or {}), int(spec.get("seed", 0))
        )
        for index in range(int(spec["count"])):
            yield f"gen{generator.seed}-{index:07d}", generator.formula(index)
        return
    if kind == "dataset":
        from data_prep.contract import TASK_MAIN, extract_latex
        from data_prep.dataset import load_split

        dataset = load_split(option_path(root, spec[kind]), spec.get("split", "train"))
        for row in dataset.select_columns(["id", "task", "answer"]):
            if row["task"] == TASK_MAIN:
                yield row["id"], extract_latex(row["answer"])
        return
    path = require_file(option_path(root, spec[kind]), f"{kind} of the synthetic corpus")
    if kind == "caption_file":
        from data_prep.contract import normalize_answer

        for _line, name, label in iter_tab_labels(path, source, rejects):
            yield name, normalize_answer(label)
    elif kind == "im2latex_formulas":
        from data_prep.readers.im2latex import _formulas

        # im2latex's ids are 0-based line indexes over every line (split on \n only).
        for index, text in enumerate(_formulas(path)):
            if text is None:
                rejects.add(source, "bad_encoding", path, index + 1, "formula line is not UTF-8")
            elif text.strip():
                latex = _tokenized(text, source, rejects, path, index + 1)
                if latex is not None:
                    yield f"im2latex-{index}", latex
    else:
        for number, text in iter_text_lines(path, source, rejects):
            latex = _tokenized(text, source, rejects, path, number)
            if latex is not None:
                yield f"line{number}", latex
