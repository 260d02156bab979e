"""Public face ``persistence.atom``: the ``Task``/``Retry`` atoms ``Storage`` is given. The
code lives in :mod:`persistence.runtime.atom`; this name (which mirrors TaskFlow's
layout) stays importable and *is* that module, so attributes set on one are seen through
the other.
"""

import sys

from .runtime import atom as _module

sys.modules[__name__] = _module
