"""The whole backend contract suite, through persistence.aio, on every backend.

``backend`` is a synchronous facade (tests/aio_facade.py) over
``persistence.aio.fetch`` of the store each contract fixture provides: every
case of the sync suite — round trips, conflicts, claims, history, snapshots,
large values, listings, purge, Storage over the backend — runs against the
async connections (native drivers for SQL and ZooKeeper, the thread adapter
for dir, inline memory).
"""

import pytest

from persistence.aio.threaded import InlineBackend, ThreadedBackend
from persistence.testing.contract import BackendContract
from tests.aio_facade import facade_over

#: How each contract fixture's store is reached under persistence.aio.
EXPECTED_IO = {"memory": InlineBackend, "dir": ThreadedBackend}


@pytest.fixture
def backend(request, backend_name):
    sync = request.getfixturevalue(f"backend_{backend_name}")
    yield from facade_over(sync)


class TestAsyncContract(BackendContract):
    def test_backend_runs_on_its_expected_io(self, backend, backend_name):
        """SQL and ZooKeeper run native (greenlet-awaited drivers), not in threads."""
        expected = EXPECTED_IO.get(backend_name)
        if expected is None:
            assert backend.abackend.io == "native", backend.abackend
        else:
            assert type(backend.abackend) is expected
