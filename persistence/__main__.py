"""``python -m persistence``: the ``persistence`` command."""

import sys

from .tools.cli import main

sys.exit(main())
