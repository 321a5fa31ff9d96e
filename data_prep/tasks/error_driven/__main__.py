"""``python -m data_prep.tasks.error_driven``: error-driven samples from predictions or truths."""

from data_prep.tasks.error_driven.cli import main

raise SystemExit(main())
