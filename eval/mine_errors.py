"""`python -m eval.mine_errors`: the documented command; the code lives in :mod:`eval.mining.mine_errors`."""

import sys

from eval.mining.mine_errors import main

if __name__ == "__main__":
    sys.exit(main())
