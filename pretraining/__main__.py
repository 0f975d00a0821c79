"""``python -m pretraining``: see `pretraining.cli`."""

from .cli import main

raise SystemExit(main())
