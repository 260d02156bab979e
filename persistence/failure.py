"""A serializable record of an exception.

A :class:`Failure` keeps what is needed to understand and match an error after
it has crossed a process boundary or a backend: the exception's type names
along its MRO, its message, its traceback text and its cause chain.  When it
was captured in this process it also keeps the live exception, so
:meth:`Failure.reraise` re-raises the original.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterable
from typing import Any

__all__ = ["Failure"]

_VERSION = 1


def _type_names(exc_type: type) -> tuple[str, ...]:
    names = []
    for cls in exc_type.__mro__:
        if cls is object:
            break
        names.append(_qualname(cls))
    return tuple(names)


def _qualname(cls: type) -> str:
    module = cls.__module__
    if module in (None, "builtins", "exceptions"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


class Failure:
    """An exception captured as data.

    Build one with :meth:`from_exception` (or ``Failure()`` inside an
    ``except`` block); rebuild a stored one with :meth:`from_dict`.
    """

    __slots__ = ("_exc_type_names", "_exception_str", "_traceback_str", "_cause",
                 "_exception")

    def __init__(self, exc_info: tuple | None = None, *,
                 exc_type_names: Iterable[str] | None = None,
                 exception_str: str = "", traceback_str: str = "",
                 cause: Failure | None = None) -> None:
        if exc_type_names is not None:
            self._exc_type_names = tuple(exc_type_names)
            if not self._exc_type_names:
                raise ValueError("a Failure needs at least one exception type name")
            self._exception_str = exception_str
            self._traceback_str = traceback_str
            self._cause = cause
            self._exception = None
            return
        if exc_info is None:
            exc_info = sys.exc_info()
        exc_type, exc, tb = exc_info
        if exc is None:
            raise ValueError("Failure() outside an except block needs an exception "
                             "(use Failure.from_exception(exc))")
        self._exception = exc
        self._exc_type_names = _type_names(exc_type or type(exc))
        self._exception_str = str(exc)
        tb = tb if tb is not None else exc.__traceback__
        self._traceback_str = "".join(traceback.format_tb(tb)) if tb is not None else ""
        chained = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        self._cause = Failure.from_exception(chained) if chained is not None else None

    @classmethod
    def from_exception(cls, exc: BaseException) -> Failure:
        """Capture ``exc`` (with its traceback and cause chain)."""
        return cls((type(exc), exc, exc.__traceback__))

    # -- introspection ---------------------------------------------------
    @property
    def exception(self) -> BaseException | None:
        """The live exception, if captured in this process; None once reloaded."""
        return self._exception

    @property
    def exc_type_names(self) -> tuple[str, ...]:
        """Qualified type names of the exception's class and its bases, most derived first."""
        return self._exc_type_names

    @property
    def exception_str(self) -> str:
        return self._exception_str

    @property
    def traceback_str(self) -> str:
        return self._traceback_str

    @property
    def cause(self) -> Failure | None:
        return self._cause

    def check(self, *exc_classes: type | str) -> type | str | None:
        """Return the first of ``exc_classes`` this failure is an instance of, else None.

        Classes may be given as types or as qualified names (``"ValueError"``,
        ``"mypkg.errors.Boom"``), so matching works on reloaded failures too.
        """
        for cls in exc_classes:
            name = cls if isinstance(cls, str) else _qualname(cls)
            if name in self._exc_type_names:
                return cls
        return None

    def matches(self, other: Any) -> bool:
        """True if ``other`` describes the same error (types, message, traceback).

        Unlike ``==`` this ignores whether either side holds a live exception.
        """
        if not isinstance(other, Failure):
            return False
        return (self._exc_type_names == other._exc_type_names
                and self._exception_str == other._exception_str
                and self._traceback_str == other._traceback_str
                and (self._cause is None) == (other._cause is None)
                and (self._cause is None or self._cause.matches(other._cause)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Failure):
            return NotImplemented
        return self.matches(other)

    def __hash__(self) -> int:
        return hash((self._exc_type_names, self._exception_str))

    def reraise(self) -> None:
        """Raise the original exception if live, else a :class:`WrappedFailure`."""
        if self._exception is not None:
            raise self._exception
        raise WrappedFailure(self)

    # -- formatting ------------------------------------------------------
    def pformat(self, traceback: bool = False) -> str:
        """A readable description; with ``traceback=True`` the stored traceback and causes too."""
        lines = [f"Failure: {self._exc_type_names[0]}: {self._exception_str}"]
        if traceback:
            if self._traceback_str:
                lines.append("Traceback (most recent call last):")
                lines.append(self._traceback_str.rstrip("\n"))
            if self._cause is not None:
                lines.append("Caused by:")
                lines.append(self._cause.pformat(traceback=True))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.pformat()

    def __repr__(self) -> str:
        return f"<Failure {self._exc_type_names[0]}: {self._exception_str!r}>"

    def copy(self) -> Failure:
        clone = Failure(exc_type_names=self._exc_type_names,
                        exception_str=self._exception_str,
                        traceback_str=self._traceback_str,
                        cause=self._cause.copy() if self._cause else None)
        clone._exception = self._exception
        return clone

    # -- storage ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` rebuilds an equal failure."""
        return {
            "version": _VERSION,
            "exc_type_names": list(self._exc_type_names),
            "exception_str": self._exception_str,
            "traceback_str": self._traceback_str,
            "cause": self._cause.to_dict() if self._cause is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Failure:
        try:
            cause = data.get("cause")
            return cls(exc_type_names=data["exc_type_names"],
                       exception_str=data.get("exception_str", ""),
                       traceback_str=data.get("traceback_str", ""),
                       cause=cls.from_dict(cause) if cause else None)
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"not a stored Failure: {data!r:.200}") from err


class WrappedFailure(Exception):
    """Raised by :meth:`Failure.reraise` when the original exception is not available."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.pformat())
        self.failure = failure

    def check(self, *exc_classes: type | str) -> type | str | None:
        return self.failure.check(*exc_classes)
