"""``python -m data_prep.latex [FORMULA ...] [--normalize]`` (see :func:`data_prep.latex.cli.main`)."""

from data_prep.latex.cli import main

raise SystemExit(main())
