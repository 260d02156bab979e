"""The records an engine persists and the value types stored beside them.

``persistence.models`` itself is the public face TaskFlow users know
(``taskflow.persistence.models``): it re-exports the record classes of
:mod:`.records`.  The package also holds the states (:mod:`.states`), the
serializable failure (:mod:`.failure`), the one stored format
(:mod:`.encoding`) and the value types stored beside records
(:mod:`.history`, :mod:`.claim`).  It imports nothing else of ``persistence``
but :mod:`persistence.exceptions`.
"""

from . import records
from .records import *  # noqa: F403  (the names records.__all__ lists)

__all__ = records.__all__
