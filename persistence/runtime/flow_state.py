"""The flow's own state and metadata, as :class:`~.storage.Storage` reads and writes them.

A flow state change is where batched changes are written: it flushes them
with it, in one transaction.  Callers hold Storage's lock.
"""

from __future__ import annotations

from typing import Any

from ..models import records as models
from ..models import states
from .details import assign, check, meta_update
from .write_policy import WritePolicy

__all__ = ["FlowState"]


class FlowState:
    """Reads and writes the flow detail's state and metadata."""

    def __init__(self, flow: models.FlowDetail, writes: WritePolicy) -> None:
        self._flow = flow
        self._writes = writes

    def set(self, state: str) -> None:
        """Set the flow's state and write every pending change with it."""
        check(state, states.FLOW_STATES, "flow state")
        self._writes.change_flow(self._flow, lambda fd: assign(fd, "state", state), flush=True)

    def get(self) -> str:
        """The flow's state (PENDING for a flow that never had one)."""
        return self._flow.state or states.PENDING

    def update_meta(self, update_with: Any) -> None:
        """Merge ``update_with`` into the flow detail's metadata."""
        self._writes.change_flow(self._flow, meta_update(update_with))
