"""Public face ``persistence.failure``: the serializable ``Failure``. The code lives in
:mod:`persistence.models.failure`; this name (which mirrors TaskFlow's layout) stays
importable and *is* that module, so attributes set on one are seen through the other.
"""

import sys

from .models import failure as _module

sys.modules[__name__] = _module
