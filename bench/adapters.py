"""Adapter namespaces: the one surface the workloads use, for each implementation.

``load("persistence")`` and ``load("taskflow")`` return objects with the same
attributes (``models``, ``states``, ``open_backend``, ``make_storage``,
``make_tasks``, ``policies``, ``flush``, ``storage_unavailable``), so
:mod:`workloads` never knows which library it measures.  Imports are lazy:
the TaskFlow virtualenv has no ``persistence`` and the project's interpreter
has no ``taskflow``.
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["load", "versions"]


class _Api:
    impl = ""
    version = ""
    location = ""
    models: Any = None
    states: Any = None
    policies: tuple[str, ...] = ()

    def open_backend(self, conf: dict[str, Any]) -> Any:
        backend = self._fetch(conf)
        with contextlib.closing(backend.get_connection()) as conn:
            conn.upgrade()
        return backend

    def _fetch(self, conf: dict[str, Any]) -> Any:
        raise NotImplementedError

    def storage_unavailable(self) -> str | None:
        return None

    def make_storage(self, fd: Any, backend: Any, policy: str) -> Any:
        raise NotImplementedError

    def make_tasks(self, names: list[str]) -> list[Any]:
        raise NotImplementedError

    def flush(self, storage: Any) -> None:
        flush = getattr(storage, "flush", None)
        if flush is not None:
            flush()


class PersistenceApi(_Api):
    impl = "persistence"
    policies = ("always", "batch", "never")

    def __init__(self) -> None:
        import persistence
        from persistence import models, states
        self.version = persistence.__version__
        self.location = persistence.__file__
        self.models, self.states = models, states
        self._persistence = persistence

    def _fetch(self, conf: dict[str, Any]) -> Any:
        return self._persistence.fetch(conf)

    def storage_unavailable(self) -> str | None:
        try:
            import persistence.atom  # noqa: F401
            import persistence.storage  # noqa: F401
        except ImportError as err:
            return f"persistence.storage / persistence.atom not importable ({err})"
        return None

    def make_storage(self, fd: Any, backend: Any, policy: str) -> Any:
        from persistence.storage import Storage
        return Storage(fd, backend, policy=policy)

    def make_tasks(self, names: list[str]) -> list[Any]:
        from persistence import atom
        return [atom.Task(name=name, provides=f"{name}-result") for name in names]


class TaskFlowApi(_Api):
    impl = "taskflow"
    # TaskFlow's Storage has one behaviour: every change is written at once.
    policies = ("always",)

    def __init__(self) -> None:
        import importlib.metadata

        import taskflow
        from taskflow import states
        from taskflow.persistence import backends, models
        self.version = importlib.metadata.version("taskflow")
        self.location = taskflow.__file__
        self.models, self.states = models, states
        self._backends = backends

    def _fetch(self, conf: dict[str, Any]) -> Any:
        return self._backends.fetch(conf)

    def make_storage(self, fd: Any, backend: Any, policy: str) -> Any:
        from taskflow import storage
        return storage.Storage(fd, backend=backend)

    def make_tasks(self, names: list[str]) -> list[Any]:
        from taskflow import task

        class BenchTask(task.Task):
            def execute(self) -> None:  # never run: Storage only needs the atom
                return None

        return [BenchTask(name=name, provides=f"{name}-result") for name in names]


def load(impl: str) -> _Api:
    """The adapter for ``impl`` ("persistence" or "taskflow")."""
    if impl == "persistence":
        return PersistenceApi()
    if impl == "taskflow":
        return TaskFlowApi()
    raise ValueError(f"unknown implementation {impl!r}")


def versions(names: tuple[str, ...] = ("SQLAlchemy", "psycopg", "psycopg2-binary", "PyMySQL",
                                       "kazoo", "alembic")) -> dict[str, str]:
    """Installed versions of the drivers this interpreter would use."""
    import importlib.metadata
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out
