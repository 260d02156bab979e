"""TaskFlow 6.5.0's own engine and unit tests, unchanged, running on ``persistence``.

Each backend gets one pytest process that loads :mod:`tests.taskflow_compat.swap`
(TaskFlow's storage, models, backends, failure type and storage exceptions
become ours) and runs TaskFlow's shipped engine tests: linear, unordered and
graph flows, injected and mapped arguments, retries (Times, ForEach,
ParameterizedForEach, nested), reverts, failures, suspension and resumption,
listeners and progress, plus TaskFlow's ``Storage`` unit tests.  The processes
for all backends start together (TaskFlow's tests mostly wait on timers, so
they overlap well on two cores); each test below waits for its own.

Deselected: :data:`KNOWN_DIFFERENCES`, each with its reason (also listed in
``doc/migrating-from-taskflow.rst``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import persistence.storage

pytest.importorskip("taskflow", reason="TaskFlow is a test dependency (pip install -e '.[test]')")

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ["memory", "dir", "sqlite", "postgresql", "mysql", "zookeeper"]

#: TaskFlow tests that cannot pass on any Storage but TaskFlow's own, and why.
KNOWN_DIFFERENCES = {
    "test_save_and_get_non_cached_failure":
        "writes into TaskFlow's private failure cache (Storage._failures), which "
        "persistence has no need for: its atom details keep the live Failure",
    "test_logbook_save_retrieve":
        "expects a saved logbook's updated_at to stay None; ours records when it was "
        "last saved (listings and purge order and select by it)",
}
#: Tests that check which backend class TaskFlow's "memory" entry point makes:
#: true on the memory runs only (the others hand TaskFlow the store under test).
MEMORY_CLASS_TESTS = ["test_memory_backend_entry_point", "test_memory_backend_fetch_by_name"]

_EVERYWHERE = ["test_engines.py::SerialEngineTest", "test_retries.py::SerialEngineTest",
               "test_suspend.py::SerialEngineTest", "test_arguments_passing.py::SerialEngineTest",
               "test_storage.py::StorageMemoryTest",
               # the connection API, as TaskFlow's own backend tests check it
               "persistence/test_memory_persistence.py",
               # threads sharing one backend (connection pool, client)
               "test_engines.py::ParallelEngineWithThreadsTest",
               "test_retries.py::ParallelEngineWithThreadsTest"]
#: Runs: (name, backend, TaskFlow test classes).  Memory runs everything else
#: TaskFlow ships for its engines, in a second process so the two overlap.
RUNS = [("memory", "memory", _EVERYWHERE),
        ("memory-more", "memory",
         ["test_engines.py::WorkerBasedEngineTest",
          "test_suspend.py::ParallelEngineWithThreadsTest",
          "test_arguments_passing.py::ParallelEngineWithThreadsTest",
          "test_progress.py", "test_listeners.py"]),
        *[(name, name, _EVERYWHERE) for name in BACKENDS[1:]]]
RUNS_BACKEND = {name: backend for name, backend, _selected in RUNS}


def _command(selected: list[str], junit: Path, backend: str) -> list[str]:
    import taskflow.tests.unit as unit
    base = Path(unit.__file__).parent
    skipped = list(KNOWN_DIFFERENCES) + (MEMORY_CLASS_TESTS if backend != "memory" else [])
    deselect = " and ".join(f"not {name}" for name in skipped)
    return [sys.executable, "-m", "pytest", "-q", "-p", "tests.taskflow_compat.swap",
            "-p", "no:cacheprovider", "--timeout", "120", "-k", deselect,
            f"--junitxml={junit}", *[str(base / item) for item in selected]]


@pytest.fixture(scope="module")
def taskflow_runs(tmp_path_factory, sql_database_factory, zookeeper_hosts):
    """Start every run at once; {run name: (process, junit, log)}."""
    work = tmp_path_factory.mktemp("taskflow")
    stores = {
        "memory": "memory://",
        "dir": json.dumps({"connection": "dir", "path": str(work / "dir-store")}),
        "sqlite": f"sqlite:///{work}/taskflow.db",
        "postgresql": sql_database_factory("postgresql"),
        "mysql": sql_database_factory("mysql"),
        "zookeeper": json.dumps({"connection": "zookeeper", "hosts": zookeeper_hosts,
                                 "path": f"/persistence-tests/taskflow-{uuid.uuid4().hex}",
                                 "timeout": 20}),
    }
    runs = {}
    for name, backend, selected in RUNS:
        junit, log = work / f"{name}.xml", work / f"{name}.log"
        env = {**os.environ, "PERSISTENCE_TF_STORE": stores[backend],
               "PERSISTENCE_TF_REPORT": str(work / f"{name}.json"),
               "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        with open(log, "wb") as out:
            proc = subprocess.Popen(_command(selected, junit, backend), cwd=work, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)
        runs[name] = (proc, junit, log)
    yield runs
    for proc, _junit, _log in runs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _outcomes(junit: Path) -> dict[str, str]:
    """{test id: passed|failed|error|skipped} from a JUnit XML report."""
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kind = next((child.tag for child in case
                     if child.tag in ("failure", "error", "skipped")), "passed")
        out[f"{case.get('classname')}::{case.get('name')}"] = kind
    return out


@pytest.mark.parametrize("run", [name for name, _backend, _selected in RUNS])
def test_taskflow_engine_runs_on_persistence(taskflow_runs, run):
    proc, junit, log = taskflow_runs[run]
    backend = RUNS_BACKEND[run]
    try:
        proc.wait(timeout=900)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"TaskFlow's tests on {backend} did not finish in 15 minutes; "
                    f"log: {log.read_text()[-3000:]}")
    assert junit.exists(), log.read_text()[-5000:]
    outcomes = _outcomes(junit)
    bad = sorted(t for t, kind in outcomes.items() if kind in ("failure", "error"))
    passed = sum(kind == "passed" for kind in outcomes.values())
    assert not bad, f"{len(bad)} TaskFlow tests fail on {backend}: {bad[:20]}\n" \
                    f"{log.read_text()[-6000:]}"
    assert proc.returncode == 0, log.read_text()[-5000:]
    # Every selected class really ran (a broken swap would collect nothing) ...
    assert passed >= (100 if run == "memory-more" else 250), (passed, log.read_text()[-2000:])
    # ... with TaskFlow's engine on our Storage and on the backend under test.
    report = json.loads(junit.with_suffix(".json").read_text())
    # (persistence.storage is the public face of the module that holds the code.)
    assert report["engine_storage"] == persistence.storage.__name__
    assert report["storage_class"] == f"{persistence.storage.__name__}.Storage"
    expected = {"memory": "MemoryBackend", "dir": "DirBackend", "sqlite": "SQLAlchemyBackend",
                "postgresql": "SQLAlchemyBackend", "mysql": "SQLAlchemyBackend",
                "zookeeper": "ZkBackend"}[RUNS_BACKEND[run]]
    assert set(report["stores"]) == {expected}, report
    assert report["stores"][expected] >= (10 if run == "memory-more" else 50), report
