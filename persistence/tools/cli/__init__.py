"""The ``persistence`` command (console script ``persistence.tools.cli:main``)."""

from .app import main

__all__ = ["main"]
