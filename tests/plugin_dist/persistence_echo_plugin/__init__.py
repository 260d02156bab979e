"""``echo``: a third-party backend for tests.

It is the memory backend, except that it accepts any option and records the
configuration and keyword arguments it was built with (``RECEIVED``, and
``backend.conf``/``backend.kwargs``), whether it was closed, and fails its
``upgrade()`` when asked to with ``fail_upgrade=1``.  The distribution also
publishes ``echo-missing``, whose module does not exist.
"""

from __future__ import annotations

from typing import Any

from persistence.backends.memory import MemoryBackend, MemoryConnection
from persistence.exceptions import StorageFailure

__all__ = ["EchoBackend", "RECEIVED"]

RECEIVED: list[dict[str, Any]] = []


class EchoBackend(MemoryBackend):
    @classmethod
    def _parse_options(cls, conf):
        return {}  # every option is welcome: they are what this backend echoes

    def __init__(self, conf: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(conf)
        self.kwargs = kwargs
        self.closed = False
        RECEIVED.append({"conf": dict(self.conf), "kwargs": dict(kwargs), "backend": self})

    def get_connection(self) -> EchoConnection:
        return EchoConnection(self)

    def close(self) -> None:
        self.closed = True
        super().close()


class EchoConnection(MemoryConnection):
    def upgrade(self) -> None:
        if self.backend.conf.get("fail_upgrade"):
            raise StorageFailure("echo: upgrade failed, as configured")
        super().upgrade()
