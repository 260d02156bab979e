"""Run the shipped contract suite against every backend the fixtures provide.

``backend`` comes from ``tests/conftest.py`` and is parametrised over every
name in ``CONTRACT_BACKENDS`` of ``tests/fixtures/*``, so a backend added
there runs the whole suite with no change here.
"""

import re
import subprocess
import sys

from persistence.testing.contract import BackendContract


class TestBackendContract(BackendContract):
    pass


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
