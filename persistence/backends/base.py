"""The contract every backend implements: a :class:`Backend` and its :class:`Connection`.

A backend is configured once (from a dict or URI, see :func:`persistence.fetch`)
and hands out connections; a connection saves and loads logbooks, flow details
and atom details.  Third-party backends subclass both and publish the backend
class under the ``persistence.backends`` entry-point group.
"""

from __future__ import annotations

import abc
import contextlib
import datetime
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from .. import telemetry
from ..exceptions import PersistenceError, StorageFailure
from ..models import records as models
from ..models.claim import DEFAULT_TTL, Claim
from ..models.history import HistoryEntry, Snapshot
from ..payload import Pipeline, pipeline_from_conf
from . import blobs, options
from .defaults import ConnectionDefaults
from .options import URL_KEYS
from .url import BackendURL

__all__ = ["Backend", "Connection", "translate_errors", "store_token", "URL_KEYS"]


class Backend(abc.ABC):
    """Base class of persistence backends.

    Subclasses list the options they accept in ``OPTIONS`` (name → type, used
    to convert string values from URI query strings); any other key in the
    configuration is reported by name as a :class:`ConfigurationError`.  Every
    backend also takes the payload options (``serializer``, ``compress``,
    ``encrypt``, ``offload``...: see :mod:`persistence.payload`), which build
    :attr:`payload`.
    """

    OPTIONS: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}

    def __init__(self, conf: Mapping[str, Any] | None = None) -> None:
        if conf is not None and not isinstance(conf, Mapping):
            raise TypeError(f"backend configuration must be a mapping, not {type(conf).__name__}")
        self._conf = dict(conf or {})
        self._options = self._parse_options(self._conf)
        #: How this backend writes stored values, and reads them back
        #: (:class:`persistence.payload.Pipeline`; the default stores them as themselves).
        self.payload: Pipeline = pipeline_from_conf(self._conf)

    @classmethod
    def _parse_options(cls, conf: Mapping[str, Any]) -> dict[str, Any]:
        return options.parse(cls.__name__, cls.OPTIONS, conf)

    @classmethod
    def conf_from_url(cls, url: BackendURL) -> dict[str, Any]:
        """The configuration this backend takes from a parsed URI; by default
        ``connection`` (the URI itself), ``host``/``port``/``hosts``, ``path``,
        ``username``/``password``, ``driver`` and each query parameter."""
        return url.to_conf()

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

    # -- capability flags: what connections of this backend can do beyond the
    # core contract.  Callers (and the contract suite) check these instead of
    # calling and catching NotImplementedError.
    #: Flow claims: ``claim_flow``, ``renew_claim``, ``release_flow``, ``get_claim``.
    supports_claims: ClassVar[bool] = False
    #: A history of writes: ``get_history`` (whether entries are kept can still
    #: be an option of the backend instance).
    supports_history: ClassVar[bool] = False
    #: ``snapshot_flow``, ``list_snapshots``, ``get_snapshot``, ``restore_flow``.
    supports_snapshots: ClassVar[bool] = False
    #: Whether :meth:`upgrade_script` can print the schema upgrade instead of
    #: running it (SQL backends: Alembic's offline mode).
    supports_upgrade_script: ClassVar[bool] = False

    def store_exists(self) -> bool | None:
        """Whether a persistence store is where this backend points, found out
        without creating anything (read-only tools check before opening one);
        None when this backend cannot tell."""
        return None

    def schema_revision(self) -> str | None:
        """The versioned schema migration the store is at; None for an empty
        store or a backend whose layout is not versioned."""
        return None

    def upgrade_script(self, start: str | None) -> str:
        """The statements that bring the schema from migration ``start``
        (None or ``'base'``: an empty store) to the newest, without running them.
        Only where :attr:`supports_upgrade_script` is true."""
        raise PersistenceError(f"{type(self).__name__} has no schema script to print")

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Connection(ConnectionDefaults, abc.ABC):
    """Base class of backend connections: saves and loads the model objects."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every backend's operations get spans and metrics (see persistence.telemetry),
        and its destroy and purge remove the offloaded blobs of what they delete
        (see persistence.backends.blobs)."""
        super().__init_subclass__(**kwargs)
        blobs.remove_blobs_with(cls)
        telemetry.instrument(cls, telemetry.WRITES | telemetry.READS)

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

    # -- flow ownership (see persistence.models.claim) -------------------------------
    def claim_flow(self, flow_uuid: str, owner: str, ttl: float = DEFAULT_TTL) -> Claim:
        """Make ``owner`` the owner of a flow detail for ``ttl`` seconds and return the
        claim.  NotOwner if another owner's claim is live; an expired one is taken
        over (recorded in :attr:`Claim.taken_over_from`); NotFound if no such flow."""
        raise _unsupported(self, "support flow claims", "supports_claims")

    def renew_claim(self, flow_uuid: str, owner: str, ttl: float | None = None) -> Claim:
        """Extend ``owner``'s claim to ``ttl`` seconds from now (default: its ttl);
        NotOwner unless ``owner`` still holds it."""
        raise _unsupported(self, "support flow claims", "supports_claims")

    def release_flow(self, flow_uuid: str, owner: str) -> None:
        """Give up ``owner``'s claim (nothing if there is none); NotOwner if another
        owner holds it."""
        raise _unsupported(self, "support flow claims", "supports_claims")

    def get_claim(self, flow_uuid: str) -> Claim | None:
        """The live claim on a flow detail, or None if nobody holds one."""
        raise _unsupported(self, "support flow claims", "supports_claims")

    # -- history and snapshots -------------------------------------------------
    # Optional capabilities: these defaults say the backend cannot do it.  Forks,
    # summaries, counts, listings and purge work on any backend through the
    # methods above (ConnectionDefaults, in .defaults).

    #: Who writes through this connection (e.g. an engine or worker id); recorded
    #: in history entries.  ``Storage(owner=...)`` sets it.
    owner: str | None = None

    def get_history(self, uuid: str | None = None, flow_uuid: str | None = None,
                    since: datetime.datetime | None = None,
                    limit: int | None = None) -> list[HistoryEntry]:
        """History entries, oldest first: of one record (``uuid``: a flow or atom
        detail), of a flow and its atoms (``flow_uuid``), or of everything;
        only those at or after ``since``; at most ``limit``."""
        raise _unsupported(self, "keep history", "supports_history")

    def snapshot_flow(self, flow_uuid: str, label: str | None = None) -> Snapshot:
        """Store an immutable copy of a flow detail and its atom details; return it."""
        raise _unsupported(self, "keep snapshots", "supports_snapshots")

    def list_snapshots(self, flow_uuid: str | None = None) -> list[Snapshot]:
        """Snapshots (of one flow detail, or all), oldest first, without their contents."""
        raise _unsupported(self, "keep snapshots", "supports_snapshots")

    def get_snapshot(self, snapshot_id: str) -> Snapshot:
        """A snapshot with its flow detail (``.flow``); NotFound if there is none."""
        raise _unsupported(self, "keep snapshots", "supports_snapshots")

    def restore_flow(self, snapshot_id: str) -> models.FlowDetail:
        """Put a flow detail back as its snapshot holds it (atoms added since are
        removed), in one transaction recorded in history; return it as stored."""
        raise _unsupported(self, "keep snapshots", "supports_snapshots")

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


def _unsupported(conn: Connection, what: str, flag: str) -> NotImplementedError:
    return NotImplementedError(f"{type(conn).__name__} does not {what} "
                               f"({type(conn.backend).__name__}.{flag} is False)")


def store_token(identity: str | None) -> object:
    """The token a backend stamps on the records it loads and saves (``_token``).

    A record carrying a backend's token came from the same *store* (not only
    the same backend object): its writes are conditional on its revision and,
    when unchanged, can be skipped.  Backend instances of one process that
    name the same store with the same ``identity`` share the token; ``None``
    (a store nothing else can reach, like a private in-memory one) gets a
    token of its own.
    """
    return object() if identity is None else sys.intern("persistence-store:" + identity)

