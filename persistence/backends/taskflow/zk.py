"""TaskFlow's ZooKeeper store, read with ``get`` and ``get_children`` only.

TaskFlow's zookeeper backend keeps the path-based layout (see
:mod:`.paths`) under its root znode (``/taskflow`` by default): a record's
JSON is the znode's data, links are empty child znodes.  It writes a logbook
with its flows and atoms in one multi-op transaction, so a reader never sees
part of one save.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import NoTaskFlowStore
from .paths import KINDS, OURS, PathTaskFlowConnection

__all__ = ["ZkTaskFlowConnection"]


class ZkTaskFlowConnection(PathTaskFlowConnection):
    """Reads the TaskFlow store under znode ``root``.

    ``call(what, fn)`` runs one kazoo request with the backend's time limit and
    turns kazoo's errors into StorageFailure, except ``NoNodeError``, which it
    lets through.
    """

    def __init__(self, backend: Any, root: str, location: str, client: Any,
                 call: Callable[[str, Callable[[], Any]], Any]) -> None:
        super().__init__(backend, location)
        self._root = root.rstrip("/")
        self._client = client
        self._call = call

    def _path(self, *parts: str) -> str:
        return "/".join((self._root, *parts)) or "/"

    def validate(self) -> None:
        top = self._children(self._path())
        if top is None:
            raise NoTaskFlowStore(f"no TaskFlow store at {self.location}: znode "
                                  f"{self._path()} does not exist")
        missing = [k for k in KINDS if k not in top]
        if missing:
            raise NoTaskFlowStore(
                f"no TaskFlow store at {self.location}: {', '.join(missing)} missing under "
                f"{self._path()} (TaskFlow's zookeeper backend keeps books, flow_details and "
                f"atom_details there)")
        if any(k in top for k in OURS):
            raise NoTaskFlowStore(
                f"no TaskFlow store at {self.location}: it is a persistence ZooKeeper store "
                f"(it has {', '.join(OURS)}); read it without the taskflow+ prefix")

    def _children(self, path: str) -> list[str] | None:
        from kazoo.exceptions import NoNodeError
        try:
            return sorted(self._call(f"list {path}", lambda: self._client.get_children(path)))
        except NoNodeError:
            return None

    def _fetch(self, kind: str, uuid: str) -> tuple[Any, str]:
        from kazoo.exceptions import NoNodeError
        path = self._path(kind, uuid)
        try:
            data, _ = self._call(f"read {path}", lambda: self._client.get(path))
        except NoNodeError:
            data = None
        return data, f"{self.location} znode {path}"

    def _list(self, kind: str, uuid: str | None = None) -> list[str] | None:
        return self._children(self._path(kind, uuid) if uuid else self._path(kind))

    def _link_location(self, kind: str, parent: str, uuid: str) -> str:
        return f"{self.location} znode {self._path(kind, parent, uuid)}"
