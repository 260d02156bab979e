"""Public face ``persistence.states``: the workflow, flow and atom states. The code lives
in :mod:`persistence.models.states`; this name (which mirrors TaskFlow's layout) stays
importable and *is* that module, so attributes set on one are seen through the other.
"""

import sys

from .models import states as _module

sys.modules[__name__] = _module
