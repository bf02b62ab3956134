"""``python -m utils.grading``: see :mod:`utils.grading.cli`."""

import sys

from .cli import main

sys.exit(main())
