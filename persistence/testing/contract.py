"""The backend contract suite: the tests every persistence backend must pass.

Use it from your own test module by subclassing :class:`BackendContract`
and providing a ``backend`` fixture that yields a fresh, empty, upgraded
backend (and cleans it up afterwards)::

    import pytest
    import persistence
    from persistence.testing.contract import BackendContract

    @pytest.fixture
    def backend(tmp_path):
        with persistence.backend({"connection": "mystore", "path": str(tmp_path)}) as be:
            yield be

    class TestMyStore(BackendContract):
        pass

Every test of the suite then runs against your backend: round trips of every
model field, the whole Connection API and its NotFound cases, merge
semantics, lazy loads, revisions and stale-write conflicts, refusal of
unserializable values and path-escaping uuids with nothing written,
concurrent writers, flow claims (one live owner, expiry, takeover) and stale
writers on several backend instances of one store, history (one entry per
write, in its transaction), snapshots, restore and fork, summaries, listings
and purge.  The suite builds its own connections from ``backend`` (a ``conn``
fixture is provided; override it only if you must).
"""

from __future__ import annotations

import pytest

from ._api import ConnectionContract
from ._claims import ClaimsContract
from ._history import HistoryContract
from ._integrity import IntegrityContract
from ._listings import ListingsContract
from ._roundtrip import RoundTripContract
from ._storage import StorageContract
from .samples import make_book

__all__ = ["BackendContract"]


#: What each capability flag promises: methods that work when it is set and
#: raise NotImplementedError when it is not (called with a flow that exists).
_CAPABILITY_CALLS = {
    "claims": lambda conn, flow: conn.get_claim(flow),
    "history": lambda conn, flow: conn.get_history(flow_uuid=flow),
    "snapshots": lambda conn, flow: conn.list_snapshots(flow),
}


class BackendContract(RoundTripContract, ConnectionContract, IntegrityContract, ClaimsContract,
                      HistoryContract, ListingsContract, StorageContract):
    """Subclass in a module that defines a ``backend`` fixture (see the module docstring)."""

    @pytest.fixture(autouse=True)
    def _capabilities(self, request, backend):
        """Skip a test needing a capability the backend declares it lacks."""
        needed = getattr(request.function, "persistence_needs", None)
        if needed and not getattr(backend, f"supports_{needed}", False):
            pytest.skip(f"{type(backend).__name__}.supports_{needed} is False")

    def test_declared_capabilities_are_honest(self, backend, conn):
        book = make_book(flows=1, atoms=1)
        conn.save_logbook(book)
        flow = next(iter(book)).uuid
        for capability, call in _CAPABILITY_CALLS.items():
            if getattr(backend, f"supports_{capability}"):
                call(conn, flow)
            else:
                with pytest.raises(NotImplementedError, match=f"supports_{capability}"):
                    call(conn, flow)

    @pytest.fixture
    def conn(self, backend):
        """An open connection to ``backend``."""
        connection = backend.get_connection()
        try:
            yield connection
        finally:
            connection.close()
