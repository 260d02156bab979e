"""Data-only atoms: what :class:`~persistence.storage.Storage` needs to know about one.

An engine's atoms carry behaviour; ``Storage`` only reads their *data*: a
``name``, a ``version``, which result names they provide (``save_as``) and
which values they need (``rebind``/``requires``/``optional``).  These classes
hold exactly that, so engines (and tests) can describe a flow without pulling
in an execution framework.  ``Storage`` accepts any object with the same
attributes (TaskFlow's atoms included); a retry (see :func:`is_retry`: this
module's :class:`Retry`, TaskFlow's retries, anything with ``on_failure``)
gets a ``RetryDetail``, anything else a ``TaskDetail``.

>>> t = Task("split", provides=["low", "high"], requires=["total"])
>>> t.save_as
{'low': 0, 'high': 1}
>>> t.rebind
{'total': 'total'}
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..models.failure import Failure

__all__ = ["Atom", "Task", "Retry", "History", "is_retry", "version_string"]


def _names(value: str | Iterable[str] | None, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        raise TypeError(f"{what} must be a name or a list of names, not a mapping")
    names = list(value)
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{what} must hold non-empty strings, not {name!r}")
    return names


def _save_as(provides: Any) -> dict[str, Any]:
    """``provides`` → {result name: index into the result (None: the whole result)}.

    A name means the whole result; a list/tuple names the items of a sequence
    result by position; a set names keys of a dict result; a mapping is
    taken as it is.
    """
    if provides is None:
        return {}
    if isinstance(provides, str):
        return {provides: None}
    if isinstance(provides, Mapping):
        return dict(provides)
    if isinstance(provides, (set, frozenset)):
        return {name: name for name in sorted(provides)}
    if isinstance(provides, (list, tuple)):
        return {name: index for index, name in enumerate(_names(provides, "provides"))}
    raise TypeError(f"provides must be a name, a list, a set or a mapping, "
                    f"not {type(provides).__name__}")


def _arg_mapping(requires: list[str], optional: list[str], rebind: Any) -> dict[str, str]:
    """{argument name: name of the value to fetch for it}."""
    mapping = {name: name for name in requires + optional}
    if rebind is None:
        return mapping
    if isinstance(rebind, Mapping):
        extra = dict(rebind)
    elif isinstance(rebind, (list, tuple)):
        # Positional: the i-th argument takes the i-th name; extra names are
        # arguments of their own.
        args = requires + optional
        extra = dict(zip(args, rebind))
        extra.update((name, name) for name in rebind[len(args):])
    else:
        raise TypeError(f"rebind must be a mapping or a list, not {type(rebind).__name__}")
    for arg, value in extra.items():
        if not isinstance(arg, str) or not isinstance(value, str):
            raise TypeError(f"rebind must map argument names to value names, "
                            f"not {arg!r} -> {value!r}")
    mapping.update(extra)
    return mapping


def version_string(atom: Any) -> str | None:
    """An atom's version as stored: ``(3, 11)`` → ``"3.11"``; a string unchanged."""
    version = getattr(atom, "version", None)
    if version is None or isinstance(version, str):
        return version
    if isinstance(version, (tuple, list)):
        return ".".join(map(str, version))
    return str(version)


def is_retry(atom: Any) -> bool:
    """Whether ``atom`` is a retry (gets a ``RetryDetail``) rather than a task.

    True for this module's :class:`Retry`, for any class named ``Retry`` in the
    atom's class hierarchy (TaskFlow's ``taskflow.retry.Retry`` and its
    subclasses) and for any atom with an ``on_failure`` method (what makes a
    retry a retry: it decides what happens when its subflow fails).
    """
    if isinstance(atom, Retry):
        return True
    if any(cls.__name__ == "Retry" for cls in type(atom).__mro__):
        return True
    return callable(getattr(atom, "on_failure", None))


class Atom:
    """The data of one unit of work in a flow.

    ``provides`` names the results (see :attr:`save_as`); ``requires`` names
    the arguments it needs, ``optional`` those it can do without, and
    ``rebind`` (a mapping, or a list matched by position) says which value
    name each argument is fetched from.  ``inject`` holds values given to
    this atom only.
    """

    default_provides: Any = None
    version: tuple[int, ...] | str = (1, 0)

    def __init__(self, name: str | None = None, provides: Any = None,
                 requires: str | Iterable[str] | None = None,
                 rebind: Mapping[str, str] | list[str] | tuple[str, ...] | None = None,
                 optional: str | Iterable[str] | None = None,
                 inject: Mapping[str, Any] | None = None,
                 version: tuple[int, ...] | str | None = None) -> None:
        if name is None:
            name = type(self).__name__
        if not isinstance(name, str) or not name:
            raise TypeError(f"an atom name must be a non-empty string, not {name!r}")
        self.name = name
        if version is not None:
            self.version = version
        self.save_as: dict[str, Any] = _save_as(
            provides if provides is not None else self.default_provides)
        required = _names(requires, "requires")
        optional_args = _names(optional, "optional")
        self.rebind: dict[str, str] = _arg_mapping(required, optional_args, rebind)
        self.optional: frozenset[str] = frozenset(optional_args)
        self.inject: dict[str, Any] = dict(inject or {})

    @property
    def provides(self) -> frozenset[str]:
        """Names of the values this atom's result provides."""
        return frozenset(self.save_as)

    @property
    def requires(self) -> frozenset[str]:
        """Names of the values this atom cannot run without."""
        return frozenset(value for arg, value in self.rebind.items()
                         if arg not in self.optional)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class Task(Atom):
    """An atom that does work once (given a ``TaskDetail``)."""


class Retry(Atom):
    """An atom that decides how a failed part of a flow is retried (given a ``RetryDetail``)."""


class History:
    """A retry's attempts: ``(value provided, {atom name: Failure})`` per attempt.

    ``failure`` is the retry atom's own failure, if it failed itself.
    """

    def __init__(self, contents: list, failure: Failure | None = None) -> None:
        self._contents = contents
        self.failure = failure

    def __len__(self) -> int:
        return len(self._contents)

    def __iter__(self) -> Iterator[tuple[Any, dict[str, Failure]]]:
        return iter(self._contents)

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Failure]]:
        return self._contents[index]

    def provided_iter(self) -> Iterator[Any]:
        """The value each attempt provided, oldest first."""
        return (provided for provided, _failures in self._contents)

    def outcomes_iter(self, index: int | None = None) -> Iterator[tuple[Any, dict]]:
        """(provided, failures) of every attempt, or of attempt ``index`` only."""
        items = self._contents if index is None else [self._contents[index]]
        return iter(items)

    def caused_by(self, exception_cls: type | str, index: int | None = None,
                  include_retry: bool = False) -> bool:
        """Whether a recorded failure (of attempt ``index``, or any) matches ``exception_cls``."""
        if include_retry and self.failure is not None and self.failure.check(exception_cls):
            return True
        for _provided, failures in self.outcomes_iter(index):
            if any(f.check(exception_cls) for f in failures.values()):
                return True
        return False

    def __repr__(self) -> str:
        return f"<History attempts={len(self)} failure={self.failure!r}>"
