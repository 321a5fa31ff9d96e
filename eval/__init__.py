"""Evaluation, in the order the data flows.

- ``backends/``: one inference interface over Hugging Face ``generate`` and vLLM, built from the
  one declaration of the inference options (``BackendOptions``).
- ``scoring/``: test sets and their items, the predictions file, metrics (ExpRate, edit distance),
  voting, paired comparison, published numbers, and reading predictions files of any format.
- ``report/``: the Markdown summary, the self-contained HTML reports, plots and the pinned KaTeX.
- ``serve/``: reading formulas from images (``predict``), the web app and the OpenAI-style client.
- ``mining/``: error-driven mining: folds, fold models, their wrong answers.
- Commands and their glue, at the top: ``evaluate`` (test sets -> predictions -> scores -> reports,
  with ``predict_sets`` and ``provenance``), ``score`` (score or compare any predictions file) and
  ``cli`` (options as dataclasses, ``--config YAML``).

``predict``, ``client``, ``app``, ``mine_errors`` and ``katex_assets`` at the top only keep the
documented ``python -m eval.<name>`` commands working; their code is in the folders.
"""
