"""``python -m pretraining.evaluate``: see `pretraining.evaluate.cli`."""

import sys

from .cli import main

sys.exit(main())
