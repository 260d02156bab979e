"""Telling interested code what changed, once the change is durable.

:meth:`Storage.add_listener <persistence.storage.Storage.add_listener>`
registers a callable that receives one :class:`Change` per changed field —
an atom's ``state``, ``results``, ``failure``, ``revert_results`` or
``revert_failure``, a flow's ``state`` — with the old and the new value, after
the write that made it durable returned (under the ``batch`` policy: after the
flush; under ``never``: never, since nothing becomes durable).  A listener
that raises is logged and ignored: the write stands and the other listeners
still run.  Listeners run in the writing thread while the storage lock is
held, so keep them short (hand work to a queue); they may read the storage.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from ..models import records as models

__all__ = ["Change", "Listeners", "ATOM_FIELDS", "FLOW_FIELDS"]

LOG = logging.getLogger(__name__)

ATOM_FIELDS = ("state", "results", "failure", "revert_results", "revert_failure")
FLOW_FIELDS = ("state",)


@dataclasses.dataclass(frozen=True)
class Change:
    """One durable change: ``field`` of the atom or flow ``name`` went from ``old`` to ``new``."""

    kind: str          # "atom" or "flow"
    name: str
    uuid: str
    field: str
    old: Any
    new: Any


def _same(old: Any, new: Any) -> bool:
    try:
        return old is new or bool(type(old) is type(new) and old == new)
    except Exception:  # odd __eq__: count as different
        return False


class Listeners:
    """The registered callables and the values records had before unwritten changes."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[Change], Any]] = []
        self._before: dict[str, tuple[models._Record, str, tuple]] = {}

    def capture(self, record: models._Record, kind: str) -> None:
        """Remember ``record``'s values before a change (the first since the last write)."""
        if record.uuid not in self._before:
            fields = ATOM_FIELDS if kind == "atom" else FLOW_FIELDS
            self._before[record.uuid] = (record, kind, tuple(getattr(record, f) for f in fields))

    def written(self) -> None:
        """The captured records are durable now: tell every listener what changed."""
        pending, self._before = self._before, {}
        changes = []
        for record, kind, old_values in pending.values():
            fields = ATOM_FIELDS if kind == "atom" else FLOW_FIELDS
            for field, old in zip(fields, old_values):
                new = getattr(record, field)
                if not _same(old, new):
                    changes.append(Change(kind, record.name, record.uuid, field, old, new))
        for change in changes:
            for callback in list(self.callbacks):
                try:
                    callback(change)
                except Exception:  # a listener never breaks a write
                    LOG.exception("storage listener %r failed on %s %r %s change", callback,
                                  change.kind, change.name, change.field)
