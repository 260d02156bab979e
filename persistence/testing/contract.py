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
from ._history import LifecycleContract
from ._integrity import IntegrityContract
from ._roundtrip import RoundTripContract

__all__ = ["BackendContract"]


class BackendContract(RoundTripContract, ConnectionContract, IntegrityContract, ClaimsContract,
                      LifecycleContract):
    """Subclass in a module that defines a ``backend`` fixture (see the module docstring)."""

    @pytest.fixture
    def conn(self, backend):
        """An open connection to ``backend``."""
        connection = backend.get_connection()
        try:
            yield connection
        finally:
            connection.close()
