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

# A facade: each method takes the lock (.locking) and hands the work to the part
# that owns it — .details, .atom_state, .flow_state, .results, .retries,
# .injection, .arguments (over .lookup), .staleness and .write_policy (policy,
# batching, claim, listeners).  The parts never take the lock themselves.

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .._rwlock import ReaderWriterLock
from ..backends.base import Backend
from ..models import claim as claims
from ..models import records as models
from ..models import states
from ..models.claim import Claim
from ..models.failure import Failure
from .arguments import Arguments
from .atom import History
from .atom_state import META_PROGRESS, META_PROGRESS_DETAILS, AtomStates
from .details import INJECTOR_NAME, Details
from .flow_state import FlowState
from .injection import Injections
from .listeners import Change
from .locking import reading, writing
from .lookup import META_INJECTED, AmbiguousName, DisallowedAccess, Lookup
from .results import STATES_WITH_RESULTS, Results, last_result
from .retries import Retries
from .staleness import Staleness
from .write_policy import POLICIES, WritePolicy

__all__ = ["Storage", "POLICIES", "DisallowedAccess", "AmbiguousName", "META_INJECTED",
           "META_PROGRESS", "META_PROGRESS_DETAILS", "STATES_WITH_RESULTS"]


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

    Durability (see :doc:`/storage`): by default an atom's RUNNING (and
    REVERTING) mark is written without waiting for it to be durable, and made
    durable by the next write — one synchronous commit per atom; a crash may
    lose the mark, and the atom runs again, as a RUNNING one would
    (at-least-once).  ``at_most_once=True`` makes the mark durable before
    :meth:`set_atom_state` returns, for engines that must never re-run an atom
    whose side effects may have happened.

    Values that reach a backend — the default in-memory one included — must
    be JSON-serializable; keep others in transient injections or use
    ``policy="never"``.  Every method takes :attr:`lock`; a thread holding its
    ``read_lock()`` must not call a method that writes.
    """

    #: Name of the atom detail holding persistent flow-scoped injections (as TaskFlow).
    injector_name = INJECTOR_NAME

    def __init__(self, flow_detail: models.FlowDetail, backend: Backend | None = None,
                 scope_fetcher: Callable[[str], Any] | None = None, policy: str = "always",
                 *, scope_lookup: Callable[[str], Any] | None = None,
                 owner: str | None = None, claim: bool = False,
                 ttl: float = claims.DEFAULT_TTL, at_most_once: bool = False) -> None:
        if scope_lookup is not None and scope_fetcher is not None:
            raise TypeError("pass scope_lookup or scope_fetcher, not both")
        self._writes = WritePolicy.open(flow_detail, backend, policy, owner, claim,
                                        at_most_once)
        self._flow = flow_detail
        self._lock = ReaderWriterLock()
        self._details = details = Details(flow_detail, self._writes)
        self._states = AtomStates(details, self._writes)
        self._flow_state = FlowState(flow_detail, self._writes)
        self._injections = Injections(details, self._writes)
        lookup = Lookup(functools.partial(last_result, details), details.state_of)
        self._args = Arguments(lookup, self._injections,
                               scope_lookup if scope_lookup is not None else scope_fetcher)
        self._staleness = Staleness(details, self._writes, self._args)
        self._results = Results(details, self._writes, lookup, self._staleness)
        self._retries = Retries(details, self._writes)
        if claim:
            with self._writes.claiming(flow_detail.uuid, ttl):
                self.refresh()  # everything the previous owner wrote, at current revisions

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
        return self._writes.owner

    @property
    def claim(self) -> Claim | None:
        """The claim this object holds on the flow detail (None without ``claim=True``)."""
        keeper = self._writes.keeper
        return keeper.claim if keeper is not None else None

    @property
    @reading
    def has_pending(self) -> bool:
        """Whether changes are waiting for :meth:`flush` (never under policy ``"never"``)."""
        return self._writes.pending

    # -- writing, as the policy says (see .write_policy) ------------------------
    @writing
    def flush(self) -> None:
        """Write every pending change in one backend transaction (no-op if none)."""
        self._writes.flush(self._flow)

    @contextlib.contextmanager
    def batch(self) -> Iterator[Storage]:
        """Defer writes until the block ends, then write them in one transaction."""
        with self._lock.write_lock():
            self._writes.begin_batch()
        try:
            yield self
        finally:
            with self._lock.write_lock():
                self._writes.end_batch(self._flow)

    @writing
    def close(self) -> None:
        """Release the claim (if held), close the connection (and the in-memory backend
        this object created)."""
        self._writes.close()

    @writing
    def refresh(self) -> models.FlowDetail:
        """Reload the flow detail and its atom details from the backend, in place.

        Use it after a ``Conflict`` (another writer changed a record: reload, then
        decide again) or to see another engine's progress.  Changes not written yet
        (policy ``"batch"``) are dropped; transient injections stay.
        """
        return self._flow if self._writes.stores_nothing else self._details.reload()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.flush()
        finally:
            self.close()

    # -- atom details ------------------------------------------------------
    @writing
    def ensure_atoms(self, atoms: Iterable[Any]) -> list[str]:
        """Make sure every atom has an atom detail; return their uuids.

        An existing detail of the same name is reused (this is what lets a run
        resume); the new ones are written together in one write.
        """
        atoms = list(atoms)
        self._details.ensure(atoms)
        self._args.register(atoms)
        return [self._details.get(atom.name).uuid for atom in atoms]

    def ensure_atom(self, atom: Any) -> str:
        """Make sure ``atom`` has an atom detail; return its uuid."""
        return self.ensure_atoms([atom])[0]

    @reading
    def get_atom_uuid(self, atom_name: str) -> str:
        """The uuid of ``atom_name``'s atom detail; NotFound for an unknown name.

        Stable across resumptions: it is the key under which the backend keeps
        the atom's record, and what ``persistence history --uuid`` takes.
        """
        return self._details.get(atom_name).uuid

    @writing
    def set_atom_state(self, atom_name: str, state: str) -> None:
        """Put an atom in ``state`` (one of :data:`persistence.states.ATOM_STATES`).

        An engine calls it as an atom starts (RUNNING, REVERTING) or is
        scheduled again (PENDING); results go through :meth:`save`, which sets
        the state in the same write.  Setting the state it has writes nothing.
        """
        self._states.set_state(atom_name, state)

    @reading
    def get_atom_state(self, atom_name: str) -> str | None:
        """The atom's state as stored (None only for a detail that never had one)."""
        return self._states.state(atom_name)

    @writing
    def set_atom_intention(self, atom_name: str, intention: str) -> None:
        """Record what the engine means to do with an atom next.

        One of :data:`persistence.states.INTENTIONS`: EXECUTE, REVERT, IGNORE or
        RETRY.  Kept so that a resumed run carries on the same plan (e.g. goes on
        reverting after a crash mid-revert) instead of guessing from the states.
        """
        self._states.set_intention(atom_name, intention)

    @reading
    def get_atom_intention(self, atom_name: str) -> str:
        """What the engine meant to do with the atom next (EXECUTE unless set)."""
        return self._states.intention(atom_name)

    @reading
    def get_atoms_states(self, atom_names: Iterable[str]) -> dict[str, tuple[str | None, str]]:
        """{atom name: (state, intention)}."""
        return self._states.states(atom_names)

    @writing
    def update_atom_metadata(self, atom_name: str,
                             update_with: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        """Merge ``update_with`` into the atom detail's metadata."""
        self._states.update_meta(atom_name, update_with)

    @writing
    def update_flow_metadata(self, update_with: Mapping[str, Any]
                             | Iterable[tuple[str, Any]]) -> None:
        """Merge ``update_with`` into the flow detail's metadata."""
        self._flow_state.update_meta(update_with)

    # -- progress ----------------------------------------------------------
    @writing
    def set_task_progress(self, task_name: str, progress: float,
                          details: Mapping[str, Any] | None = None) -> None:
        """Record a task's progress (0.0–1.0) and, optionally, details about it."""
        self._states.set_progress(task_name, progress, details)

    @reading
    def get_task_progress(self, task_name: str) -> float:
        """A task's last recorded progress, 0.0–1.0 (0.0 if none was recorded)."""
        return self._states.progress(task_name)

    @reading
    def get_task_progress_details(self, task_name: str) -> dict[str, Any] | None:
        """``{"at_progress": p, "details": {...}}`` as last recorded, or None."""
        return self._states.progress_details(task_name)

    # -- results and failures ----------------------------------------------
    @writing
    def save(self, atom_name: str, result: Any, state: str = states.SUCCESS) -> None:
        """Store an atom's result (or :class:`Failure`) and its new state in one write.

        A ``Failure`` saved with state SUCCESS (REVERTED) is recorded as
        FAILURE (REVERT_FAILURE).
        """
        self._results.save(atom_name, result, state)

    @reading
    def get_execute_result(self, atom_name: str) -> Any:
        """The atom's result, or its Failure; DisallowedAccess (a NotFound) if it has
        neither yet.  A retry's result is its whole history of attempts."""
        return self._results.execute_result(atom_name)

    get = get_execute_result

    @reading
    def get_revert_result(self, atom_name: str) -> Any:
        """The atom's revert result, or its revert Failure; DisallowedAccess (a NotFound)
        if it has neither."""
        return self._results.revert_result(atom_name)

    @reading
    def get_execute_failures(self) -> dict[str, Failure]:
        """{atom name: Failure} of every atom whose execution failed."""
        return self._results.failures("failure")

    get_failures = get_execute_failures

    @reading
    def get_revert_failures(self) -> dict[str, Failure]:
        """{atom name: Failure} of every atom whose revert failed."""
        return self._results.failures("revert_failure")

    def has_failures(self) -> bool:
        """Whether any atom's execution or revert failed (its Failure is stored)."""
        return bool(self.get_execute_failures() or self.get_revert_failures())

    @writing
    def reset(self, atom_name: str, state: str = states.PENDING) -> None:
        """Forget an atom's results and failures and put it in ``state``."""
        self._results.reset(atom_name, state)

    # -- retries -----------------------------------------------------------
    @writing
    def save_retry_failure(self, retry_name: str, failed_atom_name: str,
                           failure: Failure) -> None:
        """Record ``failure`` of ``failed_atom_name`` against the retry's latest attempt."""
        self._retries.save_failure(retry_name, failed_atom_name, failure)

    @writing
    def cleanup_retry_history(self, retry_name: str, state: str) -> None:
        """Forget a retry's attempts and put it in ``state``."""
        self._retries.cleanup(retry_name, state)

    @reading
    def get_retry_history(self, retry_name: str) -> History:
        """The attempts of a retry: each one's result and the failures seen during it.

        A :class:`~persistence.atom.History` — what a retry controller's
        ``on_failure`` is given to decide between RETRY, REVERT and REVERT_ALL.
        """
        return self._retries.history(retry_name)

    @reading
    def get_retry_histories(self) -> list[tuple[str, History]]:
        """``(retry name, History)`` of every retry of the flow, in flow order."""
        return self._retries.histories()

    # -- injection ---------------------------------------------------------
    @writing
    def inject_atom_args(self, atom_name: str, pairs: Mapping[str, Any] | Iterable,
                         transient: bool = True) -> None:
        """Give values to one atom only; they win over every other source.

        Transient values stay in memory (they may be unserializable resources);
        persistent ones go to the atom detail's metadata.
        """
        self._injections.inject_atom(atom_name, dict(pairs), transient)

    @writing
    def inject(self, pairs: Mapping[str, Any] | Iterable, transient: bool = False) -> None:
        """Give values to every atom of the flow (flow parameters).

        Persistent values live in the injector atom detail
        (:attr:`injector_name`); transient ones never leave this object.
        """
        self._injections.inject(dict(pairs), transient)

    # -- lookup (see .arguments and .lookup) ---------------------------------
    @reading
    def fetch(self, name: str, many_handler: Callable[[list], Any] | None = None) -> Any:
        """The value named ``name`` (flow injections first, then the atom providing it).

        Several providing atoms raise :class:`AmbiguousName` unless a
        ``many_handler`` is given, which receives the list of every value.
        """
        return self._args.fetch(name, many_handler)

    @reading
    def fetch_all(self, many_handler: Callable[[list], Any] | None = None) -> dict[str, Any]:
        """Every value available by name (several values of one name come as a list)."""
        return self._args.fetch_all(many_handler)

    @reading
    def fetch_mapped_args(self, args_mapping: Mapping[str, str], atom_name: str | None = None,
                          scope_walker: Any = None,
                          optional_args: Iterable[str] | None = None) -> dict[str, Any]:
        """{argument: value} for an atom's ``args_mapping`` ({argument: value name}).

        A missing required value raises NotFound naming the value and the atom.
        """
        return self._args.mapped(args_mapping, atom_name, scope_walker, optional_args)

    @reading
    def fetch_unsatisfied_args(self, atom_name: str, args_mapping: Mapping[str, str],
                               scope_walker: Any = None,
                               optional_args: Iterable[str] | None = None) -> set[str]:
        """Arguments of ``atom_name`` nothing injected and no atom in scope will provide."""
        return self._args.unsatisfied(atom_name, args_mapping, scope_walker, optional_args)

    # -- flow state --------------------------------------------------------
    @writing
    def set_flow_state(self, state: str) -> None:
        """Set the flow's state; also writes every pending change (one transaction)."""
        self._flow_state.set(state)

    @reading
    def get_flow_state(self) -> str:
        """The flow's state (PENDING for a flow that never had one).

        A resuming engine reads it first: RUNNING or a failed state left by a
        dead process means "carry on from the stored atom states".
        """
        return self._flow_state.get()

    @writing
    def change_flow_state(self, state: str) -> tuple[bool, str]:
        """Move the flow to ``state``: (True, old) if done, (False, old) if ignored.

        Raises InvalidState when the transition is not allowed.
        """
        old = self.get_flow_state()
        if not states.check_flow_transition(old, state):
            return False, old
        self.set_flow_state(state)
        return True, old

    # -- listeners -----------------------------------------------------------
    @writing
    def add_listener(self, listener: Callable[[Change], Any]) -> None:
        """Call ``listener(change)`` after each durable change (see :mod:`.listeners`)."""
        self._writes.add_listener(listener)

    @writing
    def remove_listener(self, listener: Callable[[Change], Any]) -> None:
        """Stop calling ``listener``; ValueError if it was not added."""
        self._writes.remove_listener(listener)

    # -- staleness (see .staleness) ----------------------------------------
    @reading
    def stale_atoms(self, atoms: Iterable[Any]) -> list[str]:
        """Names of the given atoms whose stored result is stale, in dependency order.

        An atom in state SUCCESS is stale when its version differs from the one
        its result was produced by, when the arguments it would get now differ
        from those it got (changed injections, changed results upstream), or when
        an atom it depends on (by requires/provides) is stale.  Atoms not in
        SUCCESS, and results stored without a fingerprint, are not reported.
        Raises FingerprintError naming an argument that cannot be digested.
        """
        return self._staleness.stale(list(atoms))

    @writing
    def invalidate_stale(self, atoms: Iterable[Any]) -> list[str]:
        """Reset the stale atoms and every atom downstream of them to PENDING (one
        write under the ``always`` and ``batch`` policies); return their names, in
        dependency order.  A resumed run then redoes exactly what changed."""
        return self._staleness.invalidate(list(atoms))

    def __repr__(self) -> str:
        return (f"<Storage flow={self._flow.name!r} uuid={self._flow.uuid} "
                f"policy={self._writes.policy} backend={type(self._writes.backend).__name__}>")
