"""A pytest plugin that points TaskFlow's storage and persistence modules at ours.

Loaded with ``-p tests.taskflow_compat.swap`` in a separate pytest process
(the swap is process-wide), before TaskFlow is imported.  TaskFlow's engine
and its own unit tests then run unchanged on :mod:`persistence`:

- ``taskflow.storage``            -> :mod:`persistence.storage`
- ``taskflow.persistence.models`` -> :mod:`persistence.models`
- ``taskflow.persistence.base`` / ``path_based`` -> ours
- ``taskflow.persistence.backends`` -> ``fetch``/``backend`` from :mod:`persistence`
- ``taskflow.persistence.backends.impl_*`` -> our backends; ``impl_memory.MemoryBackend``
  and ``fetch("memory://")`` make the store named by ``PERSISTENCE_TF_STORE`` (a URI
  or JSON conf, default memory), so every TaskFlow test runs on the store under test
- ``taskflow.types.failure``      -> :mod:`persistence.failure`
- ``taskflow.states``             -> :mod:`persistence.states` (the engine's transition checks)
- the storage-related exceptions of ``taskflow.exceptions`` -> ours
"""

from __future__ import annotations

import json
import os
import sys
import types

import persistence
from persistence import base, exceptions, failure, models, path_based, states, storage
from persistence.backends import memory


def store_conf():
    """The store every ``impl_memory.MemoryBackend()`` of TaskFlow's tests becomes."""
    raw = os.environ.get("PERSISTENCE_TF_STORE", "memory://")
    return json.loads(raw) if raw.startswith("{") else raw


_upgraded: list[bool] = []
_made: dict[str, int] = {}   # backend class name -> stores handed to TaskFlow's tests
_open: list = []             # stores made during the running test


def _track(be):
    _open.append(be)
    name = "MemoryBackend" if isinstance(be, memory.MemoryBackend) else type(be).__name__
    _made[name] = _made.get(name, 0) + 1
    return be


class MemoryBackend(memory.MemoryBackend):
    """TaskFlow's ``impl_memory.MemoryBackend``: the store under test.

    On memory runs it is our memory backend itself (so TaskFlow's
    ``isinstance`` checks hold); otherwise it makes the store under test.
    """

    def __new__(cls, conf=None):
        if store_conf() == "memory://":
            return super().__new__(cls)
        return _make_store(conf)

    def __init__(self, conf=None):
        super().__init__(conf)
        _track(self)


def _make_store(conf=None):
    if store_conf() == "memory://":
        return MemoryBackend(conf)
    be = _track(persistence.fetch(store_conf()))
    if not _upgraded:   # once per process: SQL needs it, the others must not
        with be.get_connection() as conn:
            conn.upgrade()
        _upgraded.append(True)
    return be


def _fetch(conf, namespace=None):
    """TaskFlow's ``backends.fetch``: a memory store becomes the store under test."""
    connection = conf.get("connection", "") if isinstance(conf, dict) else conf
    if str(connection).partition(":")[0].partition("+")[0] == "memory":
        return _make_store()
    return persistence.fetch(conf)


def _module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def install() -> None:
    """Put our modules in place of TaskFlow's (call before importing TaskFlow)."""
    import taskflow
    import taskflow.persistence
    import taskflow.types  # noqa: F401  (the parents must be in sys.modules)

    impl_memory = _module("taskflow.persistence.backends.impl_memory",
                          MemoryBackend=MemoryBackend, FakeFilesystem=memory.FakeFilesystem,
                          MemoryConnection=memory.MemoryConnection)
    backends = _module("taskflow.persistence.backends", fetch=_fetch,
                       backend=persistence.backend, impl_memory=impl_memory)
    swapped = {
        "taskflow.storage": storage,
        "taskflow.persistence.models": models,
        "taskflow.persistence.base": base,
        "taskflow.persistence.path_based": path_based,
        "taskflow.persistence.backends": backends,
        "taskflow.persistence.backends.impl_memory": impl_memory,
        "taskflow.types.failure": failure,
        "taskflow.states": states,
    }
    for name, module in swapped.items():
        sys.modules[name] = module
        parent, _, attr = name.rpartition(".")
        setattr(sys.modules[parent], attr, module)

    import taskflow.exceptions as tf_exc
    for name in ("NotFound", "Duplicate", "StorageFailure", "DisallowedAccess",
                 "InvalidFormat"):
        setattr(tf_exc, name, getattr(exceptions, name))
    tf_exc.WrappedFailure = failure.WrappedFailure


def pytest_runtest_teardown(item, nextitem):
    """Close the stores a test made (TaskFlow's tests do not always): a server's
    connections are then bounded by one test's, not by the whole run's."""
    while _open:
        _open.pop().close()


def pytest_sessionfinish(session, exitstatus):
    """Write what really ran to ``PERSISTENCE_TF_REPORT``: the engine's storage module
    and the stores made, so the caller can tell the swap was in effect."""
    report = os.environ.get("PERSISTENCE_TF_REPORT")
    if not report:
        return
    from taskflow.engines.action_engine import engine
    with open(report, "w") as out:
        json.dump({"engine_storage": engine.storage.__name__,
                   "storage_class": f"{engine.storage.Storage.__module__}."
                                    f"{engine.storage.Storage.__qualname__}",
                   "stores": _made}, out)


install()
