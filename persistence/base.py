"""The contract every backend implements: a :class:`Backend` and its :class:`Connection`.

A backend is configured once (from a dict or URI, see :func:`persistence.fetch`)
and hands out connections; a connection saves and loads logbooks, flow details
and atom details.  Third-party backends subclass both and publish the backend
class under the ``persistence.backends`` entry-point group.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from . import models
from .exceptions import ConfigurationError, PersistenceError, StorageFailure

__all__ = ["Backend", "Connection", "translate_errors", "URL_KEYS"]

# Keys that fetch() derives from a URI; a backend that does not use one of
# them does not treat it as an unknown option.
URL_KEYS = frozenset({"connection", "host", "port", "username", "password", "path",
                      "hosts", "driver"})

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(name: str, value: Any, kind: Callable[[Any], Any]) -> Any:
    if kind is bool and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ConfigurationError(f"option {name!r} must be a boolean "
                                 f"(true/false/1/0), not {value!r}")
    if value is None or kind is object or isinstance(value, kind if isinstance(kind, type) else ()):
        return value
    try:
        return kind(value)
    except (TypeError, ValueError) as err:
        raise ConfigurationError(f"option {name!r} has an invalid value {value!r}: {err}") from err


class Backend(abc.ABC):
    """Base class of persistence backends.

    Subclasses list the options they accept in ``OPTIONS`` (name → type, used
    to convert string values from URI query strings); any other key in the
    configuration is reported by name as a :class:`ConfigurationError`.
    """

    OPTIONS: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}

    def __init__(self, conf: Mapping[str, Any] | None = None) -> None:
        if conf is not None and not isinstance(conf, Mapping):
            raise TypeError(f"backend configuration must be a mapping, not {type(conf).__name__}")
        self._conf = dict(conf or {})
        self._options = self._parse_options(self._conf)

    @classmethod
    def _parse_options(cls, conf: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(k for k in conf if k not in cls.OPTIONS and k not in URL_KEYS)
        if unknown:
            known = ", ".join(sorted(cls.OPTIONS)) or "none"
            raise ConfigurationError(
                f"unknown option(s) {', '.join(map(repr, unknown))} for backend "
                f"{cls.__name__}; known options: {known}")
        return {name: _convert(name, conf[name], kind)
                for name, kind in cls.OPTIONS.items() if name in conf}

    @property
    def conf(self) -> dict[str, Any]:
        """The configuration this backend was built from (may hold secrets: never log it)."""
        return self._conf

    @abc.abstractmethod
    def get_connection(self) -> Connection:
        """A connection to this backend; close it when done."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release everything the backend holds (pools, clients, locks)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Connection(abc.ABC):
    """Base class of backend connections: saves and loads the model objects."""

    @property
    @abc.abstractmethod
    def backend(self) -> Backend:
        """The backend this connection belongs to."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close this connection (the backend stays usable)."""

    @abc.abstractmethod
    def upgrade(self) -> None:
        """Bring the backend's schema or layout up to date; a no-op when it is."""

    @abc.abstractmethod
    def validate(self) -> None:
        """Check the backend is usable; raise StorageFailure saying why if not."""

    @abc.abstractmethod
    def clear_all(self) -> None:
        """Delete every logbook, flow detail and atom detail."""

    @abc.abstractmethod
    def save_logbook(self, book: models.LogBook) -> models.LogBook:
        """Create or merge ``book`` with everything in it; return the stored version."""

    @abc.abstractmethod
    def update_flow_details(self, flow_detail: models.FlowDetail) -> models.FlowDetail:
        """Save a flow detail whose logbook was saved before (else NotFound), and its atoms."""

    @abc.abstractmethod
    def update_atom_details(self, atom_detail: models.AtomDetail) -> models.AtomDetail:
        """Save an atom detail whose flow detail was saved before (else NotFound)."""

    @abc.abstractmethod
    def destroy_logbook(self, book_uuid: str) -> None:
        """Delete a logbook and everything in it; NotFound if there is none."""

    @abc.abstractmethod
    def get_logbook(self, book_uuid: str, lazy: bool = False) -> models.LogBook:
        """Load a logbook; with ``lazy=True`` without its flow details."""

    @abc.abstractmethod
    def get_logbooks(self, lazy: bool = False) -> Iterator[models.LogBook]:
        """Every logbook (``lazy=True``: without their flow details)."""

    @abc.abstractmethod
    def get_flows_for_book(self, book_uuid: str, lazy: bool = False) -> Iterator[models.FlowDetail]:
        """The flow details of a logbook; NotFound if the logbook does not exist."""

    @abc.abstractmethod
    def get_flow_details(self, fd_uuid: str, lazy: bool = False) -> models.FlowDetail:
        """Load a flow detail; with ``lazy=True`` without its atom details."""

    @abc.abstractmethod
    def get_atom_details(self, ad_uuid: str) -> models.AtomDetail:
        """Load one atom detail."""

    @abc.abstractmethod
    def get_atoms_for_flow(self, fd_uuid: str) -> Iterator[models.AtomDetail]:
        """The atom details of a flow detail; NotFound if the flow does not exist."""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextlib.contextmanager
def translate_errors(what: str, driver_errors: type[BaseException] | tuple = Exception,
                     describe: Callable[[BaseException], str] = str) -> Iterator[None]:
    """Turn a driver error raised inside the block into a StorageFailure.

    Errors of this library pass through untouched; the driver's exception is
    kept as ``__cause__``.  ``describe`` renders the driver error and must not
    include secrets.
    """
    try:
        yield
    except PersistenceError:
        raise
    except driver_errors as err:
        raise StorageFailure(f"failed to {what}: {describe(err)}") from err

