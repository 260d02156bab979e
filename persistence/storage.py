"""Public face ``persistence.storage``: ``Storage``, what an engine reads and writes while
a flow runs. The code lives in :mod:`persistence.runtime.storage`; this name (which
mirrors TaskFlow's layout) stays importable and *is* that module, so attributes set on
one are seen through the other.
"""

import sys

from .runtime import storage as _module

sys.modules[__name__] = _module
