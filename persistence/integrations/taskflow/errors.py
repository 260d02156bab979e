"""Our errors, as TaskFlow's exception classes, at the connection boundary.

TaskFlow code catches TaskFlow's classes (``except exc.NotFound``; its
``Storage`` retries on ``exc.StorageFailure``), so every error of ours that
leaves the plugin is re-raised as the matching TaskFlow class, with ours as
both ``cause`` (TaskFlow's own chaining, shown by its ``pformat()``) and
``__cause__``.  A :class:`~persistence.exceptions.Conflict` becomes a
``StorageFailure``, as it is one of ours.

Configuration errors and missing dependencies stay ours: they are a
``ValueError`` and an ``ImportError``, what TaskFlow's own backends raise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from taskflow import exceptions as tf_exc

from ...exceptions import (
    ConfigurationError,
    DisallowedAccess,
    Duplicate,
    InvalidState,
    MissingDependency,
    NotFound,
    PersistenceError,
)

__all__ = ["translated", "to_taskflow"]

# Most specific first: DisallowedAccess is also a NotFound or a StorageFailure.
_CLASSES: tuple[tuple[type[PersistenceError], type[tf_exc.TaskFlowException]], ...] = (
    (DisallowedAccess, tf_exc.DisallowedAccess),
    (NotFound, tf_exc.NotFound),
    (Duplicate, tf_exc.Duplicate),
    (InvalidState, tf_exc.InvalidState),
    (PersistenceError, tf_exc.StorageFailure),
)

_KEPT = (ConfigurationError, MissingDependency)


def to_taskflow(err: PersistenceError) -> BaseException:
    """The TaskFlow exception reporting ``err`` (``err`` itself if it stays ours)."""
    if isinstance(err, _KEPT):
        return err
    for ours, theirs in _CLASSES:
        if isinstance(err, ours):
            translated = theirs(str(err), cause=err)
            translated.__cause__ = err
            return translated
    return err  # pragma: no cover - PersistenceError is the last entry


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Re-raise an error of ours raised in the block as TaskFlow's class."""
    try:
        yield
    except _KEPT:
        raise
    except PersistenceError as err:
        raise to_taskflow(err) from err
