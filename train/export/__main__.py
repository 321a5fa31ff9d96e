"""``python -m train.export``: see :mod:`train.export`."""

import sys

from train.export.cli import main

if __name__ == "__main__":
    sys.exit(main())
