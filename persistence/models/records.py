"""The record classes engines persist, in one import.

A :class:`LogBook` holds :class:`FlowDetail` objects, which hold
:class:`AtomDetail` objects (:class:`TaskDetail` or :class:`RetryDetail`).
None of these talk to a backend; a backend ``Connection`` saves and loads them.
The code lives by concern: what every record shares in :mod:`.base`, logbooks
and flow details in :mod:`.logbook`, atom details in :mod:`.atoms`.  Modules
that work on records import this one (``from ..models import records as
models``); ``_Record`` is here for their type hints.
"""

from .atoms import (
    ATOM_TYPES,
    AtomDetail,
    RetryDetail,
    TaskDetail,
    atom_detail_class,
    atom_detail_type,
)
from .base import _Record  # noqa: F401  (re-exported for type hints elsewhere)
from .logbook import FlowDetail, LogBook

__all__ = [
    "LogBook", "FlowDetail", "AtomDetail", "TaskDetail", "RetryDetail",
    "atom_detail_class", "atom_detail_type", "ATOM_TYPES",
]
