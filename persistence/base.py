"""Public face ``persistence.base``: the ``Backend``/``Connection`` contract. The code
lives in :mod:`persistence.backends.base`; this name (which mirrors TaskFlow's layout)
stays importable and *is* that module, so attributes set on one are seen through the
other.
"""

import sys

from .backends import base as _module

sys.modules[__name__] = _module
