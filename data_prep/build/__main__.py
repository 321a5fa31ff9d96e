"""``python -m data_prep.build --config RECIPE``: see :mod:`data_prep.build.pipeline`."""

import sys

from data_prep.build.pipeline import main

sys.exit(main())
