"""Storage: the engine's interface to a flow detail and the backend that keeps it.

An engine reads and writes run-time state only through :class:`Storage`:
atom states and intentions, results and failures, retry histories, progress,
metadata and injected values.  Names and semantics follow TaskFlow's
``taskflow.storage.Storage``; how values are found by name lives in
:mod:`persistence.runtime.lookup`.

Persistence policy — *when* changes reach the backend (``policy=``:
``"always"``, ``"batch"`` or ``"never"``) — and the undo of a failed write
live in :mod:`persistence.runtime.write_policy`.

Errors from the backend (``Conflict`` when another writer changed a record,
``StorageFailure``...) surface unchanged, and a failed write leaves the
in-memory state as it was before the call; :meth:`Storage.refresh` reloads
the flow detail.  ``Storage(..., owner=..., claim=True)`` makes the engine
the flow's only writer while it runs (``NotOwner`` otherwise).  All methods
are thread-safe.
"""

from __future__ import annotations

import contextlib
import logging
import uuid as _uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .._rwlock import ReaderWriterLock
from ..backends.base import Backend, Connection
from ..backends.registry import fetch
from ..exceptions import ConfigurationError, Duplicate, InvalidState, NotFound, StorageFailure
from ..models import claim as claims
from ..models import records as models
from ..models import states
from ..models.bookkeeping import take_bookkeeping
from ..models.claim import Claim
from ..models.failure import Failure
from .atom import History, is_retry, version_string
from .claim_keeper import ClaimKeeper
from .listeners import Change, Listeners
from .lookup import META_INJECTED, AmbiguousName, DisallowedAccess, Lookup, normalize_scope
from .staleness import META_FINGERPRINT, dependencies, downstream, fingerprint, in_order
from .write_policy import NEVER, POLICIES, WritePolicy

__all__ = ["Storage", "POLICIES", "DisallowedAccess", "AmbiguousName", "META_INJECTED",
           "META_PROGRESS", "META_PROGRESS_DETAILS", "STATES_WITH_RESULTS"]

LOG = logging.getLogger(__name__)


# While an atom is REVERTING its execute result is still there (the revert is
# handed it), and so is a revert result being replaced.
_EXECUTE_RESULT_STATES = frozenset((states.SUCCESS, states.FAILURE, states.REVERTING))
_REVERT_RESULT_STATES = frozenset((states.REVERTED, states.REVERT_FAILURE, states.REVERTING))
#: Atom states in which an atom may have a result (execute or revert).
STATES_WITH_RESULTS = tuple(sorted(_EXECUTE_RESULT_STATES | _REVERT_RESULT_STATES))
#: Atom metadata keys of a task's progress (as TaskFlow).
META_PROGRESS, META_PROGRESS_DETAILS = "progress", "progress_details"
_FAILED = {states.SUCCESS: states.FAILURE, states.REVERTED: states.REVERT_FAILURE}


def _check(value: str, allowed: frozenset, what: str) -> None:
    if value not in allowed:
        raise InvalidState(f"{value!r} is not a valid {what}; valid: {', '.join(sorted(allowed))}")


def _same(old: Any, new: Any) -> bool:
    try:
        return old is new or bool(type(old) is type(new) and old == new)
    except Exception:  # odd __eq__: count as different
        return False


def _assign(record: Any, field: str, value: Any) -> bool:
    """Set ``record.field`` unless it already holds ``value``; return whether it changed."""
    if _same(getattr(record, field), value):
        return False
    setattr(record, field, value)
    return True


class Storage:
    """Interface between an engine and a flow detail (and its backend, if any).

    With no ``backend`` an in-memory one is used for this object's lifetime,
    with ``flow_detail`` saved into it (inside a logbook).  Otherwise the flow
    detail must already be saved in ``backend`` (``save_logbook``).
    ``scope_fetcher(atom_name)`` (TaskFlow's name; ``scope_lookup=`` is
    accepted as an alias) returns the scope used to pick among several
    providers of a value (see :mod:`persistence.runtime.lookup`).

    ``owner`` names who writes (an engine id; recorded where the backend keeps
    history).  With ``claim=True`` the flow detail is claimed for ``owner``
    on construction (:class:`~persistence.exceptions.NotOwner` if another
    engine's claim is live; an expired one is taken over, see :attr:`claim`),
    reloaded from the backend, and the claim is renewed in the background
    every ``ttl / 3`` seconds until :meth:`close`; every write first checks
    that the claim is still held and raises ``NotOwner`` if not (see
    :mod:`persistence.runtime.claim_keeper`).

    Values that reach a backend — the default in-memory one included — must
    be JSON-serializable; keep others in transient injections or use
    ``policy="never"``.  Every method takes :attr:`lock`; a thread holding its
    ``read_lock()`` must not call a method that writes.
    """

    #: Name of the atom detail holding persistent flow-scoped injections (as TaskFlow).
    injector_name = "_TaskFlow_INJECTOR"

    def __init__(self, flow_detail: models.FlowDetail, backend: Backend | None = None,
                 scope_fetcher: Callable[[str], Any] | None = None, policy: str = "always",
                 *, scope_lookup: Callable[[str], Any] | None = None,
                 owner: str | None = None, claim: bool = False,
                 ttl: float = claims.DEFAULT_TTL) -> None:
        if policy not in POLICIES:
            raise ConfigurationError(f"unknown persistence policy {policy!r}; "
                                     f"choose one of {', '.join(POLICIES)}")
        if scope_lookup is not None and scope_fetcher is not None:
            raise TypeError("pass scope_lookup or scope_fetcher, not both")
        if owner is not None:
            claims.check_owner(owner)
        if claim and (owner is None or policy == NEVER):
            raise ConfigurationError("claim=True needs an owner= and a policy that writes "
                                     "(not 'never')")
        self._owner = owner
        self._flow = flow_detail
        self._scope_lookup = scope_lookup if scope_lookup is not None else scope_fetcher
        self._lock = ReaderWriterLock()
        self._writes = WritePolicy(backend if backend is not None else fetch("memory://"),
                                   policy, owner, owns_backend=backend is None)
        if backend is None and policy != NEVER:
            conn = self._connection()
            conn.upgrade()
            book = models.LogBook(flow_detail.name)
            book.add(flow_detail)
            conn.save_logbook(book)
        self._by_name: dict[str, models.AtomDetail] = {ad.name: ad for ad in flow_detail}
        # The atoms given to ensure_atoms (for fingerprints), and the arguments
        # fetch_mapped_args last gave each atom: what its result is made from.
        self._atoms: dict[str, Any] = {}
        self._given: dict[str, tuple[dict[str, Any], set[str]]] = {}
        self._transients: dict[str, Any] = {}
        self._atom_transients: dict[str, dict[str, Any]] = {}
        self._lookup = Lookup(self._execute_result, self._state_of)
        if claim:
            keeper = self._writes.keeper = ClaimKeeper(self._writes.backend, flow_detail.uuid,
                                                       owner, ttl)
            try:
                self.refresh()  # everything the previous owner wrote, at current revisions
            except BaseException:
                keeper.release()
                raise

    # -- properties --------------------------------------------------------
    @property
    def lock(self) -> ReaderWriterLock:
        """The reader/writer lock every method holds (``read_lock()``/``write_lock()``)."""
        return self._lock

    @property
    def backend(self) -> Backend:
        """The backend the flow detail is written to."""
        return self._writes.backend

    @property
    def policy(self) -> str:
        """When changes are written: ``"always"``, ``"batch"`` or ``"never"``."""
        return self._writes.policy

    @property
    def flow_detail(self) -> models.FlowDetail:
        """The flow detail this object keeps (updated in place)."""
        return self._flow

    @property
    def _flowdetail(self) -> models.FlowDetail:
        # TaskFlow's name for it, which TaskFlow-based code and tests reach for.
        return self._flow

    @property
    def flow_name(self) -> str:
        """The flow detail's name."""
        return self._flow.name

    @property
    def flow_uuid(self) -> str:
        """The flow detail's uuid (what a resuming engine loads it by)."""
        return self._flow.uuid

    @property
    def flow_meta(self) -> dict[str, Any]:
        """The flow detail's metadata (read it; change it with :meth:`update_flow_metadata`)."""
        return self._flow.meta

    @property
    def owner(self) -> str | None:
        """Who writes through this object (``owner=``), or None."""
        return self._owner

    @property
    def claim(self) -> Claim | None:
        """The claim this object holds on the flow detail (None without ``claim=True``)."""
        keeper = self._writes.keeper
        return keeper.claim if keeper is not None else None

    @property
    def has_pending(self) -> bool:
        """Whether changes are waiting for :meth:`flush` (never under policy ``"never"``)."""
        with self._lock.read_lock():
            return self._writes.pending

    # -- writing, as the policy says (see .write_policy) ------------------------
    def _connection(self) -> Connection:
        return self._writes.connection()

    def flush(self) -> None:
        """Write every pending change in one backend transaction (no-op if none)."""
        with self._lock.write_lock():
            self._writes.change_flow(self._flow, lambda fd: False, flush=True)

    @contextlib.contextmanager
    def batch(self) -> Iterator[Storage]:
        """Defer writes until the block ends, then write them in one transaction."""
        with self._lock.write_lock():
            self._writes.batch_depth += 1
        try:
            yield self
        finally:
            with self._lock.write_lock():
                self._writes.batch_depth -= 1
                if self._writes.batch_depth == 0:
                    self._writes.change_flow(self._flow, lambda fd: False, flush=True)

    def close(self) -> None:
        """Release the claim (if held), close the connection (and the in-memory backend
        this object created)."""
        with self._lock.write_lock():
            self._writes.close()

    def refresh(self) -> models.FlowDetail:
        """Reload the flow detail and its atom details from the backend, in place.

        Use it after a ``Conflict`` (another writer changed a record: reload, then
        decide again) or to see another engine's progress.  Changes not written yet
        (policy ``"batch"``) are dropped; transient injections stay.
        """
        with self._lock.write_lock():
            if self._writes.policy == NEVER and self._writes.owns_backend:
                return self._flow  # nothing was ever stored
            fresh = self._connection().get_flow_details(self._flow.uuid)
            flow = self._flow.update(fresh)
            take_bookkeeping(flow, fresh)   # revision, "changed", token: as loaded
            self._by_name = {ad.name: ad for ad in flow}
            self._writes.pending = False
            return flow

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.flush()
        finally:
            self.close()

    # -- atom details ------------------------------------------------------
    def _detail(self, name: str, expected: type | None = None) -> models.AtomDetail:
        try:
            ad = self._by_name[name]
        except KeyError:
            raise NotFound(f"Unknown atom {name!r} in flow {self._flow.name!r}") from None
        if expected is not None and not isinstance(ad, expected):
            raise TypeError(f"atom {name!r} has a {type(ad).__name__}, "
                            f"not a {expected.__name__}")
        return ad

    def ensure_atoms(self, atoms: Iterable[Any]) -> list[str]:
        """Make sure every atom has an atom detail; return their uuids.

        An existing detail of the same name is reused (this is what lets a run
        resume); the new ones are written together in one write.
        """
        atoms = list(atoms)
        with self._lock.write_lock():
            new: dict[str, models.AtomDetail] = {}
            for atom in atoms:
                name = atom.name
                cls = models.RetryDetail if is_retry(atom) else models.TaskDetail
                if name == self.injector_name:
                    raise Duplicate(f"atom name {name!r} is reserved for flow injections")
                existing = self._by_name.get(name, new.get(name))
                if existing is None:
                    ad = cls(name, str(_uuid.uuid4()))
                    ad.state = states.PENDING
                    ad.version = version_string(atom)
                    new[name] = ad
                elif type(existing) is not cls:
                    raise Duplicate(f"Atom detail {name!r} already exists in flow "
                                    f"{self._flow.name!r} as a {type(existing).__name__}; "
                                    f"it cannot become a {cls.__name__}")
            if new:
                def add(fd: models.FlowDetail) -> bool:
                    for ad in new.values():
                        fd.add(ad)
                    return True
                self._writes.change_flow(self._flow, add)
                self._by_name.update(new)
            for atom in atoms:
                self._lookup.register(atom.name, getattr(atom, "save_as", None) or {})
                self._atoms[atom.name] = atom
            return [self._by_name[atom.name].uuid for atom in atoms]

    def ensure_atom(self, atom: Any) -> str:
        """Make sure ``atom`` has an atom detail; return its uuid."""
        return self.ensure_atoms([atom])[0]

    def get_atom_uuid(self, atom_name: str) -> str:
        """The uuid of ``atom_name``'s atom detail; NotFound for an unknown name.

        Stable across resumptions: it is the key under which the backend keeps
        the atom's record, and what ``persistence history --uuid`` takes.
        """
        with self._lock.read_lock():
            return self._detail(atom_name).uuid

    def set_atom_state(self, atom_name: str, state: str) -> None:
        """Put an atom in ``state`` (one of :data:`persistence.states.ATOM_STATES`).

        An engine calls it as an atom starts (RUNNING, REVERTING) or is
        scheduled again (PENDING); results go through :meth:`save`, which sets
        the state in the same write.  Setting the state it has writes nothing.
        """
        _check(state, states.ATOM_STATES, "atom state")
        with self._lock.write_lock():
            self._writes.change_atom(self._detail(atom_name), lambda d: _assign(d, "state", state))

    def get_atom_state(self, atom_name: str) -> str | None:
        """The atom's state as stored (None only for a detail that never had one)."""
        with self._lock.read_lock():
            return self._detail(atom_name).state

    def set_atom_intention(self, atom_name: str, intention: str) -> None:
        """Record what the engine means to do with an atom next.

        One of :data:`persistence.states.INTENTIONS`: EXECUTE, REVERT, IGNORE or
        RETRY.  Kept so that a resumed run carries on the same plan (e.g. goes on
        reverting after a crash mid-revert) instead of guessing from the states.
        """
        _check(intention, states.INTENTIONS, "intention")
        with self._lock.write_lock():
            self._writes.change_atom(self._detail(atom_name),
                              lambda d: _assign(d, "intention", intention))

    def get_atom_intention(self, atom_name: str) -> str:
        """What the engine meant to do with the atom next (EXECUTE unless set)."""
        with self._lock.read_lock():
            return self._detail(atom_name).intention

    def get_atoms_states(self, atom_names: Iterable[str]) -> dict[str, tuple[str | None, str]]:
        """{atom name: (state, intention)}."""
        with self._lock.read_lock():
            details = [self._detail(name) for name in atom_names]
            return {ad.name: (ad.state, ad.intention) for ad in details}

    @staticmethod
    def _meta_update(update_with: Any) -> Callable[[models._Record], bool]:
        """A mutation merging ``update_with`` into a record's meta (False if nothing new;
        ``None`` or empty: nothing to merge)."""
        update = dict(update_with or ())

        def mutate(r: models._Record) -> bool:
            if all(k in r.meta and _same(r.meta[k], v) for k, v in update.items()):
                return False
            r.meta.update(update)
            return True
        return mutate

    def update_atom_metadata(self, atom_name: str,
                             update_with: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Merge ``update_with`` into the atom detail's metadata."""
        with self._lock.write_lock():
            ad = self._detail(atom_name)
            self._writes.change_atom(ad, self._meta_update(update_with))

    def update_flow_metadata(self, update_with: Mapping[str, Any]
                             | Iterable[tuple[str, Any]]) -> None:
        """Merge ``update_with`` into the flow detail's metadata."""
        with self._lock.write_lock():
            self._writes.change_flow(self._flow, self._meta_update(update_with))

    # -- progress ----------------------------------------------------------
    def set_task_progress(self, task_name: str, progress: float,
                          details: Mapping[str, Any] | None = None) -> None:
        """Record a task's progress (0.0–1.0) and, optionally, details about it."""
        update: dict[str, Any] = {"progress": progress}
        if details is not None:
            update["progress_details"] = ({"at_progress": progress, "details": details}
                                          if details else None)
        with self._lock.write_lock():
            ad = self._detail(task_name, models.TaskDetail)
            self._writes.change_atom(ad, self._meta_update(update))

    def get_task_progress(self, task_name: str) -> float:
        """A task's last recorded progress, 0.0–1.0 (0.0 if none was recorded)."""
        with self._lock.read_lock():
            return self._detail(task_name, models.TaskDetail).meta.get("progress", 0.0)

    def get_task_progress_details(self, task_name: str) -> dict[str, Any] | None:
        """``{"at_progress": p, "details": {...}}`` as last recorded, or None."""
        with self._lock.read_lock():
            return self._detail(task_name, models.TaskDetail).meta.get("progress_details")

    # -- results and failures ----------------------------------------------
    def save(self, atom_name: str, result: Any, state: str = states.SUCCESS) -> None:
        """Store an atom's result (or :class:`Failure`) and its new state in one write.

        A ``Failure`` saved with state SUCCESS (REVERTED) is recorded as
        FAILURE (REVERT_FAILURE).
        """
        if isinstance(result, Failure):
            state = _FAILED.get(state, state)
        _check(state, states.ATOM_STATES, "atom state")
        with self._lock.write_lock():
            ad = self._detail(atom_name)
            mark = self._fingerprint(ad, state, result)  # FingerprintError: nothing written

            def mutate(d: models.AtomDetail) -> bool:
                changed = d.put(state, result)
                if mark is not None and d.meta.get(META_FINGERPRINT) != mark:
                    d.meta[META_FINGERPRINT] = mark
                    changed = True
                return changed
            self._writes.change_atom(ad, mutate)
            if state == states.SUCCESS and ad.intention == states.EXECUTE:
                missing = self._lookup.missing_outputs(atom_name, result)
                if missing:
                    LOG.warning("Atom %r saved a result without the item(s) it should "
                                "provide as %s", atom_name, ", ".join(map(repr, missing)))

    def _result(self, ad: models.AtomDetail, results: str, failure: str,
                allowed: frozenset) -> Any:
        found = getattr(ad, failure)
        if found is not None:
            return found
        if ad.state not in allowed:
            raise DisallowedAccess(
                f"atom {ad.name!r} has no result in state {ad.state} (results exist in "
                f"states {', '.join(sorted(allowed))})", state=ad.state)
        return getattr(ad, results)

    def _execute_result(self, atom_name: str) -> Any:
        return self._result(self._detail(atom_name), "last_results", "failure",
                            _EXECUTE_RESULT_STATES)

    def _state_of(self, atom_name: str) -> str | None:
        ad = self._by_name.get(atom_name)
        return ad.state if ad is not None else None

    def get_execute_result(self, atom_name: str) -> Any:
        """The atom's result, or its Failure; DisallowedAccess (a NotFound) if it has
        neither yet.  A retry's result is its whole history of attempts."""
        with self._lock.read_lock():
            return self._result(self._detail(atom_name), "results", "failure",
                                _EXECUTE_RESULT_STATES)

    get = get_execute_result

    def get_revert_result(self, atom_name: str) -> Any:
        """The atom's revert result, or its revert Failure; DisallowedAccess (a NotFound)
        if it has neither."""
        with self._lock.read_lock():
            return self._result(self._detail(atom_name), "revert_results", "revert_failure",
                                _REVERT_RESULT_STATES)

    def _failures_in(self, field: str) -> dict[str, Failure]:
        with self._lock.read_lock():
            return {ad.name: getattr(ad, field) for ad in self._flow
                    if getattr(ad, field) is not None}

    def get_execute_failures(self) -> dict[str, Failure]:
        """{atom name: Failure} of every atom whose execution failed."""
        return self._failures_in("failure")

    get_failures = get_execute_failures

    def get_revert_failures(self) -> dict[str, Failure]:
        """{atom name: Failure} of every atom whose revert failed."""
        return self._failures_in("revert_failure")

    def has_failures(self) -> bool:
        """Whether any atom's execution or revert failed (its Failure is stored)."""
        return bool(self.get_execute_failures() or self.get_revert_failures())

    def reset(self, atom_name: str, state: str = states.PENDING) -> None:
        """Forget an atom's results and failures and put it in ``state``."""
        if atom_name == self.injector_name:
            return
        _check(state, states.ATOM_STATES, "atom state")
        with self._lock.write_lock():
            ad = self._detail(atom_name)
            if ad.state != state:
                self._writes.change_atom(ad, lambda d: d.reset(state) or True)

    # -- retries -----------------------------------------------------------
    def save_retry_failure(self, retry_name: str, failed_atom_name: str,
                           failure: Failure) -> None:
        """Record ``failure`` of ``failed_atom_name`` against the retry's latest attempt."""
        def mutate(d: models.AtomDetail) -> bool:
            if not d.results:
                raise StorageFailure(f"retry {retry_name!r} has no attempt to record the "
                                     f"failure of {failed_atom_name!r} against")
            data, failures = d.results[-1]
            if failed_atom_name in failures:
                return False
            d.results = d.results[:-1] + [(data, {**failures, failed_atom_name: failure})]
            return True
        with self._lock.write_lock():
            self._writes.change_atom(self._detail(retry_name, models.RetryDetail), mutate)

    def cleanup_retry_history(self, retry_name: str, state: str) -> None:
        """Forget a retry's attempts and put it in ``state``."""
        _check(state, states.ATOM_STATES, "atom state")

        def mutate(d: models.AtomDetail) -> bool:
            changed = _assign(d, "state", state)
            return _assign(d, "results", []) or changed
        with self._lock.write_lock():
            self._writes.change_atom(self._detail(retry_name, models.RetryDetail), mutate)

    def get_retry_history(self, retry_name: str) -> History:
        """The attempts of a retry: each one's result and the failures seen during it.

        A :class:`~persistence.atom.History` — what a retry controller's
        ``on_failure`` is given to decide between RETRY, REVERT and REVERT_ALL.
        """
        with self._lock.read_lock():
            ad = self._detail(retry_name, models.RetryDetail)
            return History(list(ad.results), failure=ad.failure)

    def get_retry_histories(self) -> list[tuple[str, History]]:
        """``(retry name, History)`` of every retry of the flow, in flow order."""
        with self._lock.read_lock():
            return [(ad.name, History(list(ad.results), failure=ad.failure))
                    for ad in self._flow if isinstance(ad, models.RetryDetail)]

    # -- injection ---------------------------------------------------------
    def inject_atom_args(self, atom_name: str, pairs: Mapping[str, Any] | Iterable,
                         transient: bool = True) -> None:
        """Give values to one atom only; they win over every other source.

        Transient values stay in memory (they may be unserializable resources);
        persistent ones go to the atom detail's metadata.
        """
        pairs = dict(pairs)
        with self._lock.write_lock():
            ad = self._detail(atom_name)
            if transient:
                self._atom_transients.setdefault(atom_name, {}).update(pairs)
                return

            def mutate(d: models.AtomDetail) -> bool:
                injected = dict(d.meta.get(META_INJECTED) or {})
                injected.update(pairs)
                d.meta[META_INJECTED] = injected
                return True
            self._writes.change_atom(ad, mutate)

    def inject(self, pairs: Mapping[str, Any] | Iterable, transient: bool = False) -> None:
        """Give values to every atom of the flow (flow parameters).

        Persistent values live in the injector atom detail
        (:attr:`injector_name`); transient ones never leave this object.
        """
        pairs = dict(pairs)
        with self._lock.write_lock():
            if transient:
                self._transients.update(pairs)
                return
            injector = self._by_name.get(self.injector_name)
            if injector is not None:
                self._writes.change_atom(injector, lambda d: _assign(d, "results",
                                                              {**(d.results or {}), **pairs}))
                return
            injector = models.TaskDetail(self.injector_name, str(_uuid.uuid4()))
            injector.state = states.SUCCESS
            injector.results = pairs
            self._writes.change_flow(self._flow, lambda fd: fd.add(injector) or True)
            self._by_name[self.injector_name] = injector

    # -- lookup ------------------------------------------------------------
    def _flow_sources(self) -> list[Mapping[str, Any]]:
        injector = self._by_name.get(self.injector_name)
        return [self._transients, (injector.results or {}) if injector is not None else {}]

    def _atom_sources(self, atom_name: str) -> list[Mapping[str, Any]]:
        ad = self._detail(atom_name)
        return [self._atom_transients.get(atom_name, {}), ad.meta.get(META_INJECTED) or {}]

    def _scope(self, atom_name: str | None, scope_walker: Any) -> Any:
        if scope_walker is None and atom_name is not None and self._scope_lookup is not None:
            scope_walker = self._scope_lookup(atom_name)
        return normalize_scope(scope_walker)

    def fetch(self, name: str, many_handler: Callable[[list], Any] | None = None) -> Any:
        """The value named ``name`` (flow injections first, then the atom providing it).

        Several providing atoms raise :class:`AmbiguousName` unless a
        ``many_handler`` is given, which receives the list of every value.
        """
        with self._lock.read_lock():
            return self._lookup.fetch(name, self._flow_sources(), many_handler)

    def fetch_all(self, many_handler: Callable[[list], Any] | None = None) -> dict[str, Any]:
        """Every value available by name (several values of one name come as a list)."""
        with self._lock.read_lock():
            return self._lookup.fetch_all(self._flow_sources(), many_handler)

    def fetch_mapped_args(self, args_mapping: Mapping[str, str], atom_name: str | None = None,
                          scope_walker: Any = None,
                          optional_args: Iterable[str] | None = None) -> dict[str, Any]:
        """{argument: value} for an atom's ``args_mapping`` ({argument: value name}).

        A missing required value raises NotFound naming the value and the atom.
        """
        with self._lock.read_lock():
            atom_sources = self._atom_sources(atom_name) if atom_name is not None else []
            mapped = self._lookup.fetch_mapped_args(
                args_mapping, atom_name, atom_sources, self._flow_sources(),
                self._scope(atom_name, scope_walker), optional_args or ())
            if atom_name is not None:   # what the atom is given: its result's fingerprint
                # A copy: the caller may add to the dict it gets (TaskFlow's retries do).
                self._given[atom_name] = (dict(mapped), self._transient_args(args_mapping,
                                                                             atom_name))
            return mapped

    def fetch_unsatisfied_args(self, atom_name: str, args_mapping: Mapping[str, str],
                               scope_walker: Any = None,
                               optional_args: Iterable[str] | None = None) -> set[str]:
        """Arguments of ``atom_name`` nothing injected and no atom in scope will provide."""
        with self._lock.read_lock():
            return self._lookup.fetch_unsatisfied_args(
                args_mapping, self._atom_sources(atom_name), self._flow_sources(),
                self._scope(atom_name, scope_walker), optional_args or ())

    # -- flow state --------------------------------------------------------
    def set_flow_state(self, state: str) -> None:
        """Set the flow's state; also writes every pending change (one transaction)."""
        _check(state, states.FLOW_STATES, "flow state")
        with self._lock.write_lock():
            self._writes.change_flow(self._flow, lambda fd: _assign(fd, "state", state), flush=True)

    def get_flow_state(self) -> str:
        """The flow's state (PENDING for a flow that never had one).

        A resuming engine reads it first: RUNNING or a failed state left by a
        dead process means "carry on from the stored atom states".
        """
        with self._lock.read_lock():
            return self._flow.state or states.PENDING

    def change_flow_state(self, state: str) -> tuple[bool, str]:
        """Move the flow to ``state``: (True, old) if done, (False, old) if ignored.

        Raises InvalidState when the transition is not allowed.
        """
        with self._lock.write_lock():
            old = self.get_flow_state()
            if not states.check_flow_transition(old, state):
                return False, old
            self.set_flow_state(state)
            return True, old

    # -- listeners -----------------------------------------------------------
    def add_listener(self, listener: Callable[[Change], Any]) -> None:
        """Call ``listener(change)`` after each durable change (see :mod:`.listeners`)."""
        with self._lock.write_lock():
            if self._writes.listeners is None:
                self._writes.listeners = Listeners()
            self._writes.listeners.callbacks.append(listener)

    def remove_listener(self, listener: Callable[[Change], Any]) -> None:
        """Stop calling ``listener``; ValueError if it was not added."""
        with self._lock.write_lock():
            listeners = self._writes.listeners
            if listeners is None or listener not in listeners.callbacks:
                raise ValueError(f"{listener!r} is not a listener of this storage")
            listeners.callbacks.remove(listener)

    # -- staleness (see persistence.runtime.staleness) -----------------------------------
    def _transient_args(self, args_mapping: Mapping[str, str], atom_name: str) -> set[str]:
        """Arguments whose value comes from a transient injection."""
        if not self._transients and not self._atom_transients:
            return set()
        own = self._atom_transients.get(atom_name, {})
        ad = self._by_name.get(atom_name)
        stored = (ad.meta.get(META_INJECTED) or {}) if ad is not None else {}
        return {arg for arg, name in args_mapping.items()
                if name in own or (name not in stored and name in self._transients)}

    def _args_now(self, atom: Any) -> tuple[dict[str, Any], set[str]]:
        """The arguments ``atom`` would be given now (NotFound if one is missing)."""
        rebind = getattr(atom, "rebind", None) or {}
        mapped = self._lookup.fetch_mapped_args(
            rebind, atom.name, self._atom_sources(atom.name), self._flow_sources(),
            self._scope(atom.name, None), getattr(atom, "optional", None) or ())
        return mapped, self._transient_args(rebind, atom.name)

    def _fingerprint(self, ad: models.AtomDetail, state: str, result: Any) -> dict | None:
        """The fingerprint to store with a successful result (None: nothing to record)."""
        if (self._writes.policy == NEVER or state != states.SUCCESS or isinstance(result, Failure)
                or ad.intention != states.EXECUTE):
            return None
        atom = self._atoms.get(ad.name)
        given = self._given.pop(ad.name, None)
        if given is None:
            if atom is None:
                return None
            try:
                given = self._args_now(atom)
            except NotFound:
                return None
        version = version_string(atom) if atom is not None else ad.version
        return fingerprint(version, given[0], ad.name, given[1])

    def stale_atoms(self, atoms: Iterable[Any]) -> list[str]:
        """Names of the given atoms whose stored result is stale, in dependency order.

        An atom in state SUCCESS is stale when its version differs from the one
        its result was produced by, when the arguments it would get now differ
        from those it got (changed injections, changed results upstream), or when
        an atom it depends on (by requires/provides) is stale.  Atoms not in
        SUCCESS, and results stored without a fingerprint, are not reported.
        Raises FingerprintError naming an argument that cannot be digested.
        """
        atoms = list(atoms)
        preds = dependencies(atoms)
        stale: list[str] = []
        with self._lock.read_lock():
            for atom in in_order(atoms, preds):
                ad = self._by_name.get(atom.name)
                if ad is None or ad.state != states.SUCCESS:
                    continue
                mark = ad.meta.get(META_FINGERPRINT)
                if preds[atom.name] & set(stale):
                    stale.append(atom.name)
                    continue
                if not isinstance(mark, dict):
                    continue
                if mark.get("version") != version_string(atom):
                    stale.append(atom.name)
                    continue
                try:
                    args, transient = self._args_now(atom)
                except NotFound:
                    stale.append(atom.name)
                    continue
                if fingerprint(None, args, atom.name, transient)["args"] != mark.get("args"):
                    stale.append(atom.name)
        return stale

    def invalidate_stale(self, atoms: Iterable[Any]) -> list[str]:
        """Reset the stale atoms and every atom downstream of them to PENDING (one
        write under the ``always`` and ``batch`` policies); return their names, in
        dependency order.  A resumed run then redoes exactly what changed."""
        atoms = list(atoms)
        preds = dependencies(atoms)
        with self._lock.write_lock():
            doomed = downstream(self.stale_atoms(atoms), preds)
            names = [a.name for a in in_order(atoms, preds) if a.name in doomed]

            def forget(d: models.AtomDetail) -> bool:
                if (d.state == states.PENDING and not d.results and d.failure is None
                        and META_FINGERPRINT not in d.meta):
                    return False
                d.reset(states.PENDING)
                d.meta.pop(META_FINGERPRINT, None)
                return True
            with self.batch():
                for name in names:
                    ad = self._by_name.get(name)
                    if ad is not None:
                        self._writes.change_atom(ad, forget)
            return names

    def __repr__(self) -> str:
        return (f"<Storage flow={self._flow.name!r} uuid={self._flow.uuid} "
                f"policy={self._writes.policy} backend={type(self._writes.backend).__name__}>")
