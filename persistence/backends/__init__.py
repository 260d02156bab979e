"""Backends shipped with ``persistence``; also re-exports :func:`fetch` and :func:`backend`
so that ``from persistence import backends; backends.fetch(...)`` reads as in TaskFlow."""

from .registry import backend, fetch

__all__ = ["fetch", "backend"]
