"""Run the shipped contract suite against every backend the fixtures provide.

``backend`` comes from ``tests/conftest.py`` and is parametrised over every
name in ``CONTRACT_BACKENDS`` of ``tests/fixtures/*``, so a backend added
there runs the whole suite with no change here.
"""

import contextlib
import re
import subprocess
import sys

import pytest

from persistence.backends.base import Connection
from persistence.backends.memory import MemoryBackend, MemoryConnection
from persistence.testing.contract import BackendContract
from tests.payload_support import full_pipeline, with_pipeline


class TestBackendContract(BackendContract):
    pass


class TestBackendContractWithPayloadPipeline(BackendContract):
    """The whole suite again on every backend, with every payload stage on:
    msgpack, zstd, AES-GCM and offload to a local directory at a tiny threshold."""

    @pytest.fixture
    def backend(self, request, backend_name, tmp_path):
        base = request.getfixturevalue(f"backend_{backend_name}")
        with with_pipeline(base, full_pipeline(tmp_path)) as be:
            assert be.payload.offload is not None and be.payload.cipher is not None
            yield be


THIRD_PARTY = '''
import pytest
import persistence
from persistence.testing.contract import BackendContract

@pytest.fixture
def backend():
    with persistence.backend("memory://") as be:
        yield be

class TestMyStore(BackendContract):
    pass
'''


def test_suite_runs_in_a_third_party_project_as_documented(tmp_path):
    """Outside this repository (no conftest): a module with a backend fixture is enough."""
    (tmp_path / "test_mystore.py").write_text(THIRD_PARTY)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-W", "error::pytest.PytestAssertRewriteWarning", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    passed = int(re.search(r"(\d+) passed", done.stdout).group(1))
    assert passed >= 50 and "failed" not in done.stdout and "skipped" not in done.stdout


# -- a backend that declares fewer capabilities ---------------------------------------
class _CoreOnlyConnection(MemoryConnection):
    """The memory connection without claims, history or snapshots (the base
    class's refusals), as a minimal third-party backend would be."""

    claim_flow, renew_claim = Connection.claim_flow, Connection.renew_claim
    release_flow, get_claim = Connection.release_flow, Connection.get_claim
    get_history, snapshot_flow = Connection.get_history, Connection.snapshot_flow
    list_snapshots, get_snapshot = Connection.list_snapshots, Connection.get_snapshot
    restore_flow = Connection.restore_flow


class _CoreOnlyBackend(MemoryBackend):
    supports_claims = supports_history = supports_snapshots = False

    def get_connection(self) -> _CoreOnlyConnection:
        return _CoreOnlyConnection(self)


class TestCoreOnlyBackendContract(BackendContract):
    """The suite skips what a backend declares it lacks, and checks that it refuses it."""

    @pytest.fixture
    def backend(self):
        be = _CoreOnlyBackend()
        try:
            with contextlib.closing(be.get_connection()) as conn:
                conn.upgrade()
            yield be
        finally:
            be.close()


def test_core_only_backend_refuses_what_it_does_not_declare():
    with _CoreOnlyBackend() as be, contextlib.closing(be.get_connection()) as conn:
        conn.upgrade()
        with pytest.raises(NotImplementedError, match="supports_claims is False"):
            conn.claim_flow("f", "me")
        with pytest.raises(NotImplementedError, match="supports_snapshots is False"):
            conn.snapshot_flow("f")
