"""Evaluation, in the order the data flows.

- ``backends/``: one inference interface over Hugging Face ``generate`` and vLLM.
- ``scoring/``: test sets and their items, the predictions file, metrics (ExpRate, edit distance),
  voting, paired comparison, published numbers, and ``score`` for any predictions file.
- ``report/``: the Markdown summary, the self-contained HTML reports, plots and the pinned KaTeX.
- ``serve/``: reading formulas from images (``predict``), the web app and the OpenAI-style client.
- ``mining/``: error-driven mining: folds, fold models, their wrong answers.
- ``evaluate.py`` (with ``provenance.py``): the evaluation run itself, backend -> rows -> scores -> reports.

The top-level ``score``, ``predict``, ``client``, ``app``, ``mine_errors`` and ``katex_assets``
modules only keep the documented ``python -m eval.<name>`` commands working.
"""
