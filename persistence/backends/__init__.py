"""Backends shipped with ``persistence``; also re-exports :func:`fetch` and :func:`backend`
so that ``from persistence import backends; backends.fetch(...)`` reads as in TaskFlow."""

from .registry import backend, fetch, register_backend, unregister_backend

__all__ = ["fetch", "backend", "register_backend", "unregister_backend"]
