"""The backend side of the path-based template: one root path, history on or off."""

from __future__ import annotations

from typing import Any, ClassVar

from ..base import Backend

__all__ = ["PathBasedBackend"]


class PathBasedBackend(Backend):
    """A backend whose records live at paths under one root ``path``."""

    DEFAULT_PATH: ClassVar[str | None] = None
    OPTIONS: ClassVar[dict] = {"path": str, "history": bool}
    supports_claims = supports_history = supports_snapshots = True

    #: Whether a connection of this instance has found or made the layout (it then
    #: stops looking before each first write; see ``PathPrimitives._ensure_layout``).
    _layout_ready: bool = False

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__(conf)
        path = self._options.get("path") or self.DEFAULT_PATH
        if not path:
            raise ValueError(f"{type(self).__name__} needs a 'path' option")
        self._path = path
        #: Whether writes append history entries (option ``history``, default on).
        self.history = self._options.get("history", True)
        # Identifies records this backend instance wrote or read, so that
        # unchanged ones can be skipped and stale ones detected.
        self.token = object()

    def store_exists(self) -> bool:
        """Whether the layout's root (its ``books`` node) exists; reads only."""
        conn = self.get_connection()
        try:
            return bool(conn._exists(conn.book_path))
        finally:
            conn.close()

    @property
    def path(self) -> str:
        """The root path of the layout."""
        return self._path
