"""``python -m train.export``: see :mod:`train.export`."""

import sys

from train.export import main

if __name__ == "__main__":
    sys.exit(main())
