"""`python -m eval.katex_assets`: the documented command; the code lives in :mod:`eval.report.katex_assets`."""

import sys

from eval.report.katex_assets import main

if __name__ == "__main__":
    sys.exit(main())
