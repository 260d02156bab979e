"""Public face ``persistence.path_based``: the path-based backend template. The code lives
in :mod:`persistence.backends.pathbased.connection`; this name (which mirrors TaskFlow's
layout) stays importable and *is* that module, so attributes set on one are seen through
the other.
"""

import sys

from .backends.pathbased import connection as _module

sys.modules[__name__] = _module
