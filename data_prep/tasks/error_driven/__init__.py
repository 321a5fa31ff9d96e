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

from data_prep.tasks.error_driven.cli import main
from data_prep.tasks.error_driven.marking import (
    ARROW,
    EDIT_KINDS,
    RESERVED_TOKENS,
    SOURCE,
    Edit,
    apply_detection,
    apply_edits,
    correction_answer,
    edits_for,
    mark_errors,
    parse_edits,
)
from data_prep.tasks.error_driven.samples import read_predictions, samples_from_predictions
from data_prep.tasks.error_driven.synthetic import (
    SECOND_ERROR_PROBABILITY,
    SYNTHETIC_KINDS,
    braces_balanced,
    synthetic_errors,
    synthetic_samples,
)

__all__ = [
    "ARROW",
    "EDIT_KINDS",
    "RESERVED_TOKENS",
    "SECOND_ERROR_PROBABILITY",
    "SOURCE",
    "SYNTHETIC_KINDS",
    "Edit",
    "apply_detection",
    "apply_edits",
    "braces_balanced",
    "correction_answer",
    "edits_for",
    "main",
    "mark_errors",
    "parse_edits",
    "read_predictions",
    "samples_from_predictions",
    "synthetic_errors",
    "synthetic_samples",
]
