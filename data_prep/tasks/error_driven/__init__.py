"""Error-driven learning samples: error detection and error correction (Uni-MuMER's EDL task).

A wrong prediction of a formula becomes two samples on the same image:

* detection -- the prompt shows the prediction; the answer is the prediction with its wrong spans
  wrapped ``<error_start> ... <error_end>`` and one ``<deleted>`` per missing token;
* correction -- the prompt shows that marked prediction; the answer lists one edit per marker, in
  order, then the correct LaTeX on the last line::

      REPLACE:a b -> c       (the k-th marked span a b must become c)
      DELETE:a b             (the k-th marked span a b must go)
      INSERT:c d             (the k-th gap, here <deleted> <deleted>, receives c d)
      x ^ { 2 } + c d

``REPLACE:d -> a`` is the spelling of the paper's Fig. 2 (keyword, colon, no space); ``DELETE:``
and ``INSERT:`` follow it (the figure shows only a replacement; see docs/error_driven.md). The
prompts are the figure's (``data_prep.contract``): detection ends ``Expression: PRED``,
correction ``Marked Expression: MARKED``.

Markers come from the token alignment (:func:`data_prep.tasks.error_driven.alignment.error_regions`): adjacent
wrong blocks are merged into one marker (a span, or a gap of consecutive ``<deleted>``), so markers
are always separated by at least one correct token, and the k-th marker takes the k-th edit. :func:`apply_edits` applying a correction answer's
edits to its marked prediction gives the truth exactly; every generated pair is checked so.

Wrong predictions come from a model (``read_predictions`` of eval predictions files) or, before a
model exists, from :func:`synthetic_errors` (confusable symbols, dropped or duplicated tokens,
misplaced scripts).

Modules: :mod:`~.alignment` (token alignment), :mod:`~.confusions` (confusion
tables), :mod:`~.marking` (edits and marked predictions), :mod:`~.samples` (records from wrong
predictions), :mod:`~.synthetic` (synthetic wrong predictions), :mod:`~.cli` (the command).
"""

import importlib

#: Public name -> the submodule defining it. Loaded on first use (PEP 562), so that running a
#: submodule (``python -m data_prep.tasks.error_driven.confusions``) does not import it twice.
_EXPORTS = {
    "ARROW": "marking",
    "EDIT_KINDS": "marking",
    "Edit": "marking",
    "RESERVED_TOKENS": "marking",
    "SECOND_ERROR_PROBABILITY": "synthetic",
    "SOURCE": "marking",
    "SYNTHETIC_KINDS": "synthetic",
    "apply_detection": "marking",
    "apply_edits": "marking",
    "braces_balanced": "synthetic",
    "correction_answer": "marking",
    "edits_for": "marking",
    "main": "cli",
    "mark_errors": "marking",
    "parse_edits": "marking",
    "read_predictions": "samples",
    "samples_from_predictions": "samples",
    "synthetic_errors": "synthetic",
    "synthetic_samples": "synthetic",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = sorted(_EXPORTS)
