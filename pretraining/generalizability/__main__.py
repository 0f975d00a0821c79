"""``python -m pretraining.generalizability``."""

import sys

from .cli import main

sys.exit(main())
