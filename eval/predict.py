"""`python -m eval.predict`: the documented command; the code lives in :mod:`eval.serve.predict`."""

import sys

from eval.serve.predict import main

if __name__ == "__main__":
    sys.exit(main())
