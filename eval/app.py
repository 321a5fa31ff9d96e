"""`python -m eval.app`: the documented command; the code lives in :mod:`eval.serve.app`."""

import sys

from eval.serve.app import main

if __name__ == "__main__":
    sys.exit(main())
