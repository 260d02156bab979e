"""What the ZooKeeper connection's parts need from their hosts, as Protocols.

The connection, its claims and the write path are handed a backend (or a
connection) at run time; declaring here which members they use keeps imports
one way (backend -> connection -> parts) without type-only back-imports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["ZkHost", "ZkWriter"]


class ZkHost(Protocol):
    """The members of :class:`~.backend.ZkBackend` its connection uses."""

    client: Any
    path: str
    hosts: str
    chunk_size: int

    def call(self, what: str, send: Callable[[], Any], deadline: float | None = None) -> Any:
        """Run one request, translating connection loss and driver errors."""


class ZkWriter(Protocol):
    """The members of :class:`~.connection.ZkConnection` the write path uses."""

    #: Record path -> a version at which it is known to hold no parts.
    partless: dict[str, int]

    @property
    def backend(self) -> ZkHost:
        """The backend whose client carries the requests."""

    def is_atom(self, path: str) -> bool:
        """Whether ``path`` names an atom detail's znode."""

    def read_many(self, ops: list[tuple[int, str]]) -> list[Any]:
        """Run several reads in as few requests as the server allows."""
