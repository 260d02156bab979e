"""Typed errors of the persistence layer.

Every error the library raises on purpose derives from :class:`PersistenceError`,
so callers can catch one class.  Errors that wrap a driver failure keep the
driver's exception as ``__cause__`` (``raise ... from err``).
"""

from __future__ import annotations

__all__ = [
    "PersistenceError",
    "NotFound",
    "Duplicate",
    "StorageFailure",
    "SerializationError",
    "InvalidState",
    "Conflict",
    "NotOwner",
    "ConfigurationError",
    "MissingDependency",
    "DisallowedAccess",
    "AmbiguousName",
    "FingerprintError",
    "InvalidFormat",
    "CorruptRecord",
    "PayloadError",
    "UnserializableValue",
    "MissingKey",
    "TamperedPayload",
    "MissingBlob",
]


class PersistenceError(Exception):
    """Root of every error raised by ``persistence``.

    ``PersistenceError(message, cause)`` as TaskFlow's exceptions: ``cause``
    (also set as ``__cause__``) is the error this one reports.
    """

    def __init__(self, message: str = "", cause: BaseException | None = None) -> None:
        super().__init__(message)
        self._cause = cause
        if cause is not None and self.__cause__ is None:
            self.__cause__ = cause

    @property
    def cause(self) -> BaseException | None:
        """The error this one reports: the ``cause`` given, else ``__cause__``."""
        return self._cause if self._cause is not None else self.__cause__

    def pformat(self, indent: int = 2, indent_text: str = " ",
                show_root_class: bool = False) -> str:
        """The message and, one indented line each, the chain of causes."""
        if indent < 0:
            raise ValueError(f"indent must be >= 0, not {indent}")
        lines = [(f"{type(self).__name__}: " if show_root_class else "") + str(self.args[0]
                                                                             if self.args
                                                                             else "")]
        seen: list[BaseException] = [self]
        cause, depth = self.cause, indent
        while cause is not None and not any(cause is s for s in seen):
            seen.append(cause)
            lines.append(indent_text * depth + f"{type(cause).__name__}: {cause}")
            cause = getattr(cause, "cause", None) if isinstance(cause, PersistenceError) \
                else cause.__cause__
            depth += indent
        return "\n".join(lines)


class NotFound(PersistenceError, LookupError):
    """A record (logbook, flow detail, atom detail, value, backend) does not exist."""


class Duplicate(PersistenceError):
    """A record with the same identity already exists."""


class StorageFailure(PersistenceError):
    """The backend could not carry out an operation.

    The underlying driver error, when there is one, is the ``__cause__``.
    """


class SerializationError(StorageFailure, TypeError):
    """A value cannot be stored: it is not JSON-serializable, or a stored value is corrupt."""


class InvalidState(PersistenceError):
    """A state transition that the state tables do not allow."""


class Conflict(StorageFailure):
    """A write was based on a stale revision of a record; nothing was written."""

    def __init__(self, message: str, cause: BaseException | None = None, *,
                 record: str | None = None, expected: int | None = None,
                 found: int | None = None) -> None:
        super().__init__(message, cause)
        self.record = record
        self.expected = expected
        self.found = found


class NotOwner(PersistenceError):
    """The caller does not hold (or no longer holds) the claim on a flow."""


class ConfigurationError(PersistenceError, ValueError):
    """A backend configuration is invalid: unknown option, bad value, bad URI."""


class MissingDependency(PersistenceError, ImportError):
    """An optional dependency of a backend is missing; the message names the extra to install."""


class DisallowedAccess(NotFound):
    """An atom's result was asked for while the atom has none (wrong state).

    A :class:`NotFound`, so the ``except NotFound`` that TaskFlow's engine and
    its users write for a missing result catches it too.
    """

    def __init__(self, message: str, cause: BaseException | None = None,
                 state: str | None = None) -> None:
        super().__init__(message, cause)
        self.state = state


class AmbiguousName(PersistenceError, LookupError):
    """Several atoms provide a value name and no scope says which one is meant."""

    def __init__(self, message: str, name: str, providers: list[str]) -> None:
        super().__init__(message)
        self.name = name
        self.providers = providers


class FingerprintError(PersistenceError, TypeError):
    """An atom's arguments cannot be fingerprinted (to tell later whether its result
    went stale): ``argument`` names the one whose value is not JSON-serializable."""

    def __init__(self, message: str, *, argument: str | None = None,
                 atom: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument
        self.atom = atom


class InvalidFormat(PersistenceError, ValueError):
    """Data handed in (a failure's dict form, a record) does not have the expected shape."""


class CorruptRecord(SerializationError, InvalidFormat):
    """A stored record is not a valid record: ``location`` names where it is stored
    (a file, a znode, a table row); the message says which field is wrong."""

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(message)
        self.location = location


class PayloadError(StorageFailure):
    """A stored value cannot be written or read through the payload pipeline
    (:mod:`persistence.payload`): serializer, compression, encryption, offload."""


class UnserializableValue(SerializationError, PayloadError):
    """A value the configured serializer cannot encode; nothing was written.

    ``record`` names the atom detail (or flow detail, logbook) that holds it,
    ``field`` the field (``results``, ``meta['x']``...), ``type_name`` the
    type of the first part of the value that could not be encoded.
    """

    def __init__(self, message: str, *, record: str | None = None, field: str | None = None,
                 type_name: str | None = None) -> None:
        super().__init__(message)
        self.record = record
        self.field = field
        self.type_name = type_name


class MissingKey(PayloadError):
    """A value was encrypted under key ``key_id``, which is not configured (or
    the key provider did not return it); add the key to read it."""

    def __init__(self, message: str, *, key_id: str | None = None) -> None:
        super().__init__(message)
        self.key_id = key_id


class TamperedPayload(PayloadError):
    """A stored value failed its integrity check: a ciphertext that does not
    authenticate under key ``key_id`` (wrong key or modified bytes), or an
    offloaded blob whose size or sha256 differs from its reference."""

    def __init__(self, message: str, *, key_id: str | None = None,
                 location: str | None = None) -> None:
        super().__init__(message)
        self.key_id = key_id
        self.location = location


class MissingBlob(PayloadError, LookupError):
    """An offloaded value's blob is not where its reference says (``location``)."""

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(message)
        self.location = location
