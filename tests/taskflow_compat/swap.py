"""A pytest plugin that points TaskFlow's storage and persistence modules at ours.

Loaded with ``-p tests.taskflow_compat.swap`` in a separate pytest process
(the swap is process-wide), before TaskFlow is imported.  TaskFlow's engine
and its own unit tests then run unchanged on :mod:`persistence`:

- ``taskflow.storage``            -> :mod:`persistence.storage`
- ``taskflow.persistence.models`` -> :mod:`persistence.models`
- ``taskflow.persistence.base`` / ``path_based`` -> ours
- ``taskflow.persistence.backends`` -> ``fetch``/``backend`` from :mod:`persistence`
- ``taskflow.persistence.backends.impl_*`` -> our backends; ``impl_memory.MemoryBackend``
  makes the store named by ``PERSISTENCE_TF_STORE`` (a URI or JSON conf, default memory)
- ``taskflow.types.failure``      -> :mod:`persistence.failure`
- the storage-related exceptions of ``taskflow.exceptions`` -> ours
"""

from __future__ import annotations

import json
import os
import sys
import types

import persistence
from persistence import base, exceptions, failure, models, path_based, storage


def store_conf():
    """The store every ``impl_memory.MemoryBackend()`` of TaskFlow's tests becomes."""
    raw = os.environ.get("PERSISTENCE_TF_STORE", "memory://")
    return json.loads(raw) if raw.startswith("{") else raw


def _make_store(conf=None):
    be = persistence.fetch(store_conf())
    with be.get_connection() as conn:
        conn.upgrade()
    return be


def _module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def install() -> None:
    """Put our modules in place of TaskFlow's (call before importing TaskFlow)."""
    import taskflow
    import taskflow.persistence
    import taskflow.types

    impl_memory = _module("taskflow.persistence.backends.impl_memory",
                          MemoryBackend=_make_store)
    backends = _module("taskflow.persistence.backends", fetch=persistence.fetch,
                       backend=persistence.backend, impl_memory=impl_memory)
    swapped = {
        "taskflow.storage": storage,
        "taskflow.persistence.models": models,
        "taskflow.persistence.base": base,
        "taskflow.persistence.path_based": path_based,
        "taskflow.persistence.backends": backends,
        "taskflow.persistence.backends.impl_memory": impl_memory,
        "taskflow.types.failure": failure,
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


install()
