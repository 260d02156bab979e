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
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..exceptions import InvalidFormat

__all__ = ["Failure", "WrappedFailure"]

#: The exception types a stored failure's type names may end with (``validate``).
BASE_EXCEPTIONS = ("BaseException", "Exception")
_SCALARS = (str, int, float, bool, type(None))

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
    ``except`` block); rebuild a stored one with :meth:`from_dict`.  The
    keyword form ``Failure(exception_str=..., exc_type_names=..., ...)``
    rebuilds one from its parts, as TaskFlow's does.
    """

    __slots__ = ("_exc_type_names", "_exception_str", "_traceback_str", "_cause",
                 "_exception", "_exc_args", "_exc_info")

    #: Version of the dict form written by :meth:`to_dict`.
    DICT_VERSION = _VERSION
    #: The longest cause chain :meth:`from_dict` rebuilds.
    MAX_CAUSE_DEPTH = 100
    BASE_EXCEPTIONS = BASE_EXCEPTIONS

    def __init__(self, exc_info: tuple | None = None, *,
                 exc_type_names: Iterable[str] | None = None,
                 exception_str: str = "", traceback_str: str | None = "",
                 cause: Failure | None = None, exc_args: Iterable[Any] = (),
                 causes: Iterable[Failure] | None = None) -> None:
        if exc_type_names is not None:
            self._exc_type_names = tuple(exc_type_names)
            if not self._exc_type_names:
                raise ValueError("a Failure needs at least one exception type name")
            self._exception_str = exception_str
            self._traceback_str = traceback_str or ""
            if cause is None and causes:
                cause = next(iter(causes))   # causes is the chain, nearest first
            self._cause = cause
            self._exc_args = tuple(exc_args)
            self._exc_info = exc_info if exc_info and exc_info[1] is not None else None
            self._exception = self._exc_info[1] if self._exc_info else None
            return
        if exc_info is None:
            exc_info = sys.exc_info()
        elif len(exc_info) != 3:
            raise ValueError("exc_info must be a (type, value, traceback) triple")
        exc_type, exc, tb = exc_info
        if exc is None:
            raise ValueError("Failure() outside an except block needs an exception "
                             "(use Failure.from_exception(exc))")
        tb = tb if tb is not None else exc.__traceback__
        self._exception = exc
        self._exc_info = (exc_type or type(exc), exc, tb)
        self._exc_args = tuple(getattr(exc, "args", ()))
        self._exc_type_names = _type_names(exc_type or type(exc))
        self._exception_str = str(exc)
        self._traceback_str = "".join(traceback.format_tb(tb)) if tb is not None else ""
        chained = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        self._cause = Failure.from_exception(chained) if chained is not None else None

    @classmethod
    def from_exception(cls, exception: BaseException) -> Failure:
        """Capture ``exception`` (with its traceback and cause chain)."""
        return cls((type(exception), exception, exception.__traceback__))

    # -- introspection ---------------------------------------------------
    @property
    def exception(self) -> BaseException | None:
        """The live exception, if captured in this process; None once reloaded."""
        return self._exception

    @property
    def exc_info(self) -> tuple | None:
        """``(type, value, traceback)`` while the exception is live, else None."""
        return self._exc_info

    @property
    def exception_args(self) -> tuple:
        """The exception's ``args`` (as captured; only JSON scalars survive storage)."""
        return self._exc_args

    @property
    def exc_type_names(self) -> tuple[str, ...]:
        """Qualified type names of the exception's class and its bases, most derived first."""
        return self._exc_type_names

    @property
    def exception_str(self) -> str:
        """``str()`` of the exception."""
        return self._exception_str

    @property
    def traceback_str(self) -> str:
        """The traceback as text (empty when none was captured)."""
        return self._traceback_str

    @property
    def cause(self) -> Failure | None:
        """The failure this one was raised from (``__cause__``/``__context__``), or None."""
        return self._cause

    @property
    def causes(self) -> tuple[Failure, ...]:
        """The whole cause chain, nearest first (not including this failure)."""
        chain = []
        cause = self._cause
        while cause is not None:
            chain.append(cause)
            cause = cause._cause
        return tuple(chain)

    def __iter__(self) -> Iterator[str]:
        """The exception type names, most derived first."""
        return iter(self._exc_type_names)

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
        raise WrappedFailure([self])

    @staticmethod
    def reraise_if_any(failures: Iterable[Failure]) -> None:
        """Re-raise the one failure given, raise :class:`WrappedFailure` of several, or
        return None when there are none."""
        failures = list(failures)
        if len(failures) == 1:
            failures[0].reraise()
        elif failures:
            raise WrappedFailure(failures)

    # -- formatting ------------------------------------------------------
    def pformat(self, traceback: bool = False) -> str:
        """A readable description; with ``traceback=True`` the stored traceback and causes too."""
        lines = [f"Failure: {self._exc_type_names[0]}: {self._exception_str}"]
        if traceback:
            if self._traceback_str:
                lines.append("Traceback (most recent call last):")
                lines.append(self._traceback_str.rstrip("\n"))
            else:
                lines.append("Traceback not available.")
            if self._cause is not None:
                lines.append("Caused by:")
                lines.append(self._cause.pformat(traceback=True))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.pformat()

    def __repr__(self) -> str:
        return f"<Failure {self._exc_type_names[0]}: {self._exception_str!r}>"

    def copy(self) -> Failure:
        """A copy (sharing the live exception, if any)."""
        return Failure(self._exc_info, exc_type_names=self._exc_type_names,
                       exception_str=self._exception_str,
                       traceback_str=self._traceback_str, exc_args=self._exc_args,
                       cause=self._cause.copy() if self._cause else None)

    # -- storage ---------------------------------------------------------
    def to_dict(self, include_args: bool = True) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` rebuilds an equal failure.

        ``exc_args`` keeps the exception's arguments that are JSON scalars
        (others as their ``repr``); ``include_args=False`` leaves them out.
        """
        data = {
            "version": _VERSION,
            "exc_type_names": list(self._exc_type_names),
            "exception_str": self._exception_str,
            "traceback_str": self._traceback_str,
            "cause": self._cause.to_dict(include_args) if self._cause is not None else None,
        }
        if include_args and self._exc_args:
            data["exc_args"] = [a if isinstance(a, _SCALARS) else repr(a)
                                for a in self._exc_args]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Failure:
        """Rebuild a failure from :meth:`to_dict`'s form (TaskFlow's ``causes`` list
        form is read too).  Malformed input raises :class:`InvalidFormat` (a
        ValueError) naming the field; a cause chain deeper than
        :attr:`MAX_CAUSE_DEPTH` is refused rather than walked recursively."""
        chain: list[Mapping[str, Any]] = []
        item: Any = data
        while item is not None:
            where = "failure" + ".cause" * len(chain)
            if len(chain) >= cls.MAX_CAUSE_DEPTH:
                raise InvalidFormat(f"{where}: the cause chain is deeper than "
                                    f"{cls.MAX_CAUSE_DEPTH} failures")
            if not isinstance(item, Mapping):
                raise InvalidFormat(f"{where} must be a dict, not {type(item).__name__}")
            names = item.get("exc_type_names")
            if (not isinstance(names, (list, tuple)) or not names
                    or not all(isinstance(n, str) for n in names)):
                raise InvalidFormat(f"{where}: 'exc_type_names' must be a non-empty list of "
                                    f"strings, not {names!r:.80}")
            for key in ("exception_str", "traceback_str"):
                if not isinstance(item.get(key), (str, type(None))):
                    raise InvalidFormat(f"{where}: {key!r} must be a string, not "
                                        f"{type(item[key]).__name__}")
            if not isinstance(item.get("exc_args"), (list, tuple, type(None))):
                raise InvalidFormat(f"{where}: 'exc_args' must be a list, not "
                                    f"{type(item['exc_args']).__name__}")
            chain.append(item)
            cause, causes = item.get("cause"), item.get("causes")
            if cause is None and causes:
                if not isinstance(causes, (list, tuple)):
                    raise InvalidFormat(f"{where}: 'causes' must be a list, not "
                                        f"{type(causes).__name__}")
                cause = causes[0]   # the chain, nearest first
            item = cause
        failure = None
        for item in reversed(chain):
            failure = cls(exc_type_names=item["exc_type_names"],
                          exception_str=item.get("exception_str") or "",
                          traceback_str=item.get("traceback_str") or "",
                          exc_args=item.get("exc_args") or (), cause=failure)
        return failure

    @classmethod
    def validate(cls, data: Any) -> None:
        """Check that ``data`` is a failure in dict form; :class:`InvalidFormat` says
        what is wrong (a missing or mistyped field, or a type chain that does not
        end in an exception base type)."""
        pending = [(data, "failure")]
        while pending:
            item, where = pending.pop()
            if not isinstance(item, dict):
                raise InvalidFormat(f"{where} must be a dict, not {type(item).__name__}")
            for key, kind in (("exception_str", str), ("exc_type_names", list),
                              ("version", int)):
                if not isinstance(item.get(key), kind if kind is not list else (list, tuple)):
                    raise InvalidFormat(f"{where} needs {key!r} of type {kind.__name__}, "
                                        f"got {item.get(key)!r:.80}")
            if item.get("traceback_str") is not None and \
                    not isinstance(item["traceback_str"], str):
                raise InvalidFormat(f"{where}: 'traceback_str' must be a string or None")
            names = item["exc_type_names"]
            if not names or not all(isinstance(n, str) for n in names):
                raise InvalidFormat(f"{where}: 'exc_type_names' must be a non-empty list "
                                    f"of strings")
            if names[-1] not in BASE_EXCEPTIONS:
                raise InvalidFormat(f"{where}: 'exc_type_names' must end with one of "
                                    f"{', '.join(BASE_EXCEPTIONS)}, not {names[-1]!r}")
            if item.get("cause") is not None:
                pending.append((item["cause"], f"{where}.cause"))
            for i, sub in enumerate(item.get("causes") or ()):
                pending.append((sub, f"{where}.causes[{i}]"))

    def __getstate__(self) -> dict[str, Any]:
        return self.to_dict()

    def __setstate__(self, state: dict[str, Any]) -> None:
        clone = Failure.from_dict(state)
        for slot in Failure.__slots__:
            setattr(self, slot, getattr(clone, slot))


class WrappedFailure(Exception):
    """One or several failures raised as an exception: by :meth:`Failure.reraise`
    when the original exception is not available (reloaded from a store), and by
    :meth:`Failure.reraise_if_any` when several atoms failed at once.

    Iterate over it for the failures; :attr:`failure` is the first.
    """

    def __init__(self, causes: Failure | Iterable[Failure]) -> None:
        failures: list[Failure] = []
        for cause in [causes] if isinstance(causes, Failure) else causes:
            if isinstance(cause.exception, WrappedFailure):
                failures.extend(cause.exception)      # flatten nested wrappers
            else:
                failures.append(cause)
        super().__init__(failures[0].pformat() if len(failures) == 1 else
                         "WrappedFailure: [" + ", ".join(map(str, failures)) + "]")
        self._causes = failures

    @property
    def failure(self) -> Failure | None:
        """The first wrapped failure."""
        return self._causes[0] if self._causes else None

    def __iter__(self) -> Iterator[Failure]:
        return iter(self._causes)

    def __len__(self) -> int:
        return len(self._causes)

    def check(self, *exc_classes: type | str) -> type | str | None:
        """The first of ``exc_classes`` that any wrapped failure is an instance of, else None."""
        for cause in self._causes:
            found = cause.check(*exc_classes)
            if found is not None:
                return found
        return None
