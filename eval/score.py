"""`python -m eval.score`: the documented command; the code lives in :mod:`eval.scoring.score`."""

import sys

from eval.scoring.score import main

if __name__ == "__main__":
    sys.exit(main())
