"""`python -m eval.client`: the documented command; the code lives in :mod:`eval.serve.client`."""

import sys

from eval.serve.client import main

if __name__ == "__main__":
    sys.exit(main())
