"""Data preparation: distributed datasets in, one validated Parquet dataset out.

Foundations (imported by everything else here): ``contract`` (records, prompts, answers, image
bounds), ``images`` (safe decoding), ``ink`` (ink polarity), ``dataset`` (the built-dataset format,
written and read), ``exprate`` (the ExpRate criterion), ``predictions`` (predictions-file rows),
``io_utils``, ``rejects``, ``answer_check``. Then ``latex/`` (tokeniser), ``readers/`` (one module
per dataset format and the reader table), ``render/`` (drawn formulas and InkML), ``tasks/`` (the
task table, Tree-CoT, counting, error-driven learning), ``build/`` (recipe -> dataset + report +
card) and ``push`` (to the Hub).

Data flows data_prep -> train -> eval: nothing here imports train or eval.
"""
