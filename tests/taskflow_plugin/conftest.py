"""The stores the TaskFlow plugin is tested on, one per backend.

``plugin_store`` runs a test once per backend (memory, dir, sqlite file,
PostgreSQL, MariaDB, ZooKeeper), on the same fresh store the contract suite
uses, with the TaskFlow configuration that reaches that store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import persistence
from persistence.integrations.taskflow import PREFIX, TaskFlowBackend
from tests.conftest import contract_backends

PLUGIN_BACKENDS = ["memory", "dir", "sqlite_file", "postgresql", "mysql", "zookeeper"]


@dataclass
class PluginStore:
    """One store, reachable through our API (``backend``) and through TaskFlow."""

    name: str
    backend: persistence.Backend
    #: What a TaskFlow application passes as ``backend=``; None for memory,
    #: whose store only the backend object holding it can reach.
    conf: dict[str, Any] | None

    def taskflow_backend(self) -> TaskFlowBackend:
        """A TaskFlow backend on this store, built by TaskFlow's own fetch()."""
        if self.conf is None:
            return TaskFlowBackend.wrap(self.backend)
        from taskflow.persistence import backends
        return backends.fetch(self.conf)

    def engine_backend(self) -> Any:
        """What to pass to ``taskflow.engines.load(backend=...)``: the configuration
        dict, or (memory) a TaskFlow backend object on the same store."""
        return self.conf if self.conf is not None else self.taskflow_backend()


def taskflow_conf(name: str, backend: persistence.Backend) -> dict[str, Any] | None:
    """The TaskFlow configuration reaching ``backend``'s store, in the forms users write."""
    conf = backend.conf
    if name == "memory":
        return None
    if name == "dir":            # TaskFlow's dict form: a backend name and options
        return {"connection": PREFIX + "dir", "path": backend.path}
    if name == "zookeeper":      # a URI whose host, port and query TaskFlow also copies
        return {"connection": f"{PREFIX}zookeeper://{conf['hosts']}{conf['path']}"
                              f"?timeout={conf['timeout']}"}
    return {"connection": PREFIX + conf["connection"]}     # sqlite, postgresql, mysql URIs


def make_plugin_store(request: pytest.FixtureRequest, name: str) -> PluginStore:
    """The fresh store of backend ``name`` (its contract fixture) for the current test."""
    if name not in contract_backends():
        pytest.skip(f"{name} not selected by PERSISTENCE_TEST_BACKENDS")
    backend = request.getfixturevalue(f"backend_{name}")
    return PluginStore(name, backend, taskflow_conf(name, backend))


@pytest.fixture(params=PLUGIN_BACKENDS)
def plugin_store(request) -> PluginStore:
    return make_plugin_store(request, request.param)


@pytest.fixture
def tf_conn(plugin_store) -> Iterator[Any]:
    """A TaskFlow connection (through the plugin) on ``plugin_store``."""
    with contextlib.closing(plugin_store.taskflow_backend()) as be:
        with contextlib.closing(be.get_connection()) as conn:
            yield conn
