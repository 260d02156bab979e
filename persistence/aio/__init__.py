"""persistence under asyncio: async backends and :class:`AsyncStorage`.

``async with persistence.aio.backend(uri) as be``, ``await
persistence.aio.fetch(uri)``; connections whose methods are coroutines named
as the synchronous ``Connection``'s; :class:`AsyncStorage` mirroring
``Storage``.  How each backend does its I/O, and how the logic is shared
with the synchronous code, is in ``doc/asyncio.rst``.
"""

from .bridge import run_sync, wait
from .connection import AsyncBackend, AsyncConnection
from .registry import backend, fetch, register_async_backend
from .storage import AsyncStorage

__all__ = ["fetch", "backend", "register_async_backend", "AsyncBackend", "AsyncConnection",
           "AsyncStorage", "run_sync", "wait"]
