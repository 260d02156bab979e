"""``python -m persistence``: the ``persistence`` command."""

import sys

from .cli import main

sys.exit(main())
