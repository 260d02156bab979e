"""Writes: the core's logical operations, planned into as few ZooKeeper transactions as fit.

The core hands a transaction its operations bottom-up (atoms, the flow, its
links, the logbook, its links).  At commit:

* One conditional update of one record (the engine's hot path) is a single
  versioned ``setData``.
* Anything else first reads the current state of every znode it touches (a
  multiRead), checks every expected revision and every must-exist record
  *before anything is written* (Conflict / NotFound), then turns the
  operations into znode operations grouped into transactions of at most
  ``max_request_bytes``.  One group is atomic.  When a save needs several,
  they are ordered so that a crash between two leaves nothing a reader takes
  for a complete record: a new record's znode is created *empty* (readers
  treat an empty znode as absent), its parts and links are added, and its
  data is set last (a save of a record an interrupted save left empty first
  removes the links and entries that save made); a replaced record's new parts go in before its new
  header and its old parts are deleted after; a deleted record is emptied
  first, then its children and itself are removed.

Revisions are znode versions: a new record is created empty (version 0) and
set once (version 1), and a conditional write is a ``setData`` with the
expected version, so the server itself refuses a stale writer.

When the connection drops before a write's answer arrives (the server died;
the client moves to another one), the outcome is looked up instead of
guessed: after a ``sync``, every record written is read back; all at their
new version with the new data means the write went through, all as before
means it did not and it is sent again.  Only a save split over several
transactions still fails with StorageFailure then.
"""

from __future__ import annotations

import logging
from typing import Any

from kazoo.exceptions import (
    BadVersionError,
    ConnectionLoss,
    NoNodeError,
    SessionExpiredError,
)
from kazoo.protocol import serialization as proto
from kazoo.security import OPEN_ACL_UNSAFE

from ... import telemetry
from ...exceptions import Conflict, NotFound, StorageFailure
from . import chunks
from .host import ZkWriter
from .multiread import GET_DATA
from .plan import (
    ROLLED_BACK,
    Delete,
    Entry,
    Link,
    Plan,
    Put,
    Raced,
    Revision,
    entry_data,
    group_ops,
    run_groups,
)

__all__ = ["Revision", "Put", "Link", "Delete", "Entry", "Sent", "Unchained", "commit",
           "settle", "send_update", "finish_update", "lost", "outcome", "update_one"]

LOG = logging.getLogger(__name__)

_ATTEMPTS = 4


def commit(conn: ZkWriter, ops: list[Any], wait: bool = True) -> Sent | None:
    """Write ``ops``.  ``wait=False``: when they are one conditional update (the hot
    path), send it and return it unanswered, for :func:`settle` before the next write."""
    if not ops:
        return None
    first = ops[0]
    if (isinstance(first, Put) and first.expected is not None
            and len(first.data) <= conn.backend.chunk_size
            and (len(ops) == 1 or (len(ops) == 2 and isinstance(ops[1], Entry)))):
        entry = ops[1] if len(ops) == 2 else None
        if not wait:
            return send_update(conn, first, entry)
        update_one(conn, first, entry)
        return None
    for attempt in range(_ATTEMPTS):
        last = attempt == _ATTEMPTS - 1
        try:
            plan = Plan(conn, ops)
        except StorageFailure as err:
            if last or not lost(err):
                raise
            continue  # nothing was sent yet
        groups = plan.groups()
        try:
            run_groups(conn, groups)
        except Raced:
            continue
        except StorageFailure as err:
            # One transaction whose answer was lost: find out whether it went through.
            if last or not lost(err) or len(groups) != 1:
                raise
            applied = outcome(conn, plan.before, plan.after)
            if applied is None:
                raise
            LOG.info("the answer to a transaction writing %s was lost; it was %s",
                     ", ".join(plan.after), "applied" if applied else "not applied: again")
            if not applied:
                continue
        for revision, value in plan.revisions:
            revision.value = value
        plan.note_partless()
        return None
    raise StorageFailure(f"gave up writing to ZooKeeper at {conn.backend.hosts}: the znodes "
                         f"kept changing concurrently ({_ATTEMPTS} attempts); nothing was written")


def settle(conn: ZkWriter, sent: Sent) -> None:
    """Wait for the answer to an update :func:`commit` sent without waiting (asked
    again if the connection dropped before it came); its error is raised here."""
    update_one(conn, sent.put, sent.entry, sent)


# -- lost answers -----------------------------------------------------------
def lost(err: StorageFailure) -> bool:
    """Whether a request failed because the connection or session dropped (the client
    reconnects on its own): its outcome is unknown, and asking again is worth it."""
    return isinstance(err.__cause__, (ConnectionLoss, SessionExpiredError))


def outcome(conn: ZkWriter, before: dict[str, int | None],
             after: dict[str, tuple[int, bytes]]) -> bool | None:
    """After a lost answer: True if the write is stored (every record at its new version
    with its new data), False if none of it is (every record as before), None if unknown.

    ``sync`` first, so the server answering has every committed change.
    """
    if not after:
        return None
    be = conn.backend
    client = be.client
    paths = list(after)
    try:
        be.call(f"sync {paths[0]}", lambda: client.sync_async(paths[0]))
        got = dict(zip(paths, conn.read_many([(GET_DATA, p) for p in paths])))
    except StorageFailure:
        return None

    def now_at(path: str) -> tuple[int | None, bytes | None]:
        result = got[path]
        return (None, None) if isinstance(result, NoNodeError) else (result[1].version,
                                                                     result[0])
    if all(now_at(p) == after[p] for p in paths):
        return True
    if all(now_at(p)[0] == before[p] for p in paths):
        return False
    return None


def update_one(conn: ZkWriter, put: Put, entry: Entry | None = None,
                         sent: Sent | None = None) -> None:
    """:func:`_update_one` (or the answer to ``sent``, an update already on its way),
    asked again when the connection dropped before its answer."""
    for attempt in range(_ATTEMPTS):
        try:
            if sent is not None:
                finish_update(conn, sent)
            else:
                _update_one(conn, put, entry)
            return
        except StorageFailure as err:
            if attempt == _ATTEMPTS - 1 or not lost(err):
                raise
            applied = outcome(conn, {put.path: put.expected},
                               {put.path: (put.expected + 1, put.data)})
            if applied is None:
                raise
            if applied:
                LOG.info("the answer to an update of %s was lost; it was applied", put.path)
                return
            LOG.info("the answer to an update of %s was lost; it was not applied: "
                     "sending it again", put.path)
            telemetry.retried("zookeeper")
            sent = None


# -- the hot path -----------------------------------------------------------
class Sent:
    """A conditional update sent and not yet answered (see :func:`send_update`)."""

    __slots__ = ("put", "entry", "request", "listing", "deadline", "after", "partless")

    def __init__(self, put: Put, entry: Entry | None, request: Any, listing: Any,
                 deadline: float, after: str | None = None, partless: bool = False) -> None:
        self.put, self.entry, self.request = put, entry, request
        self.listing, self.deadline, self.after = listing, deadline, after
        #: Known to have no parts before (so none after): no listing to check.
        self.partless = partless


class Unchained(Exception):
    """An update sent behind another (``after``) was refused because that one's
    history entry was not there: nothing of it was applied."""


def send_update(conn: ZkWriter, put: Put, entry: Entry | None = None,
                after: str | None = None) -> Sent:
    """Send one conditional setData (with its history entry: one multi); answered by
    :func:`finish_update`.  Requests of one session are answered in the order sent.
    ``after``: the path of an earlier write's history entry, which must exist for this
    one to apply (checked in the same multi; see :mod:`.pipeline`)."""
    be = conn.backend
    client = be.client
    deadline = be.deadline()
    be.wait_live(deadline)
    if entry is None:
        request = client.set_async(put.path, put.data, put.expected)
    else:
        ops = [("check", after, None, 0)] if after is not None else []
        ops += [("set", put.path, put.data, put.expected),
                ("create", entry.path, entry_data(entry, put.expected + 1), None)]
        request = _send(client, ops)
    # A record known to have no parts at the version this update replaces has none
    # after it either (an update applies only at that version; this data is inline).
    partless = conn.partless.get(put.path) == put.expected
    if partless:
        conn.partless[put.path] = put.expected + 1   # for a write sent behind this one
    # This listing is answered after the update: it sees the new value.
    # (An atom has children only if it has history entries or parts.)
    listing = (None if partless or (conn.is_atom(put.path) and entry is None)
               else client.get_children_async(f"{put.path}/{chunks.CHUNKS}"))
    return Sent(put, entry, request, listing, deadline, after, partless)


def finish_update(conn: ZkWriter, sent: Sent) -> None:
    """Wait for the answer to :func:`send_update`: Conflict/NotFound as the server
    says, then remove the parts the record no longer uses."""
    be = conn.backend
    put, deadline = sent.put, sent.deadline
    parts_path = f"{put.path}/{chunks.CHUNKS}"
    try:
        stat = be.result(f"update {put.path}", sent.request, deadline)
        if sent.entry is not None:
            stat = _multi_result(stat, put.path, sent.after is not None)
    except BaseException as err:
        conn.partless.pop(put.path, None)
        if isinstance(err, NoNodeError):
            if put.create:  # a record this backend saved was deleted meanwhile
                raise _conflict(conn, put.path, put.expected) from None
            raise NotFound(f"nothing stored at {put.path}") from None
        if isinstance(err, BadVersionError):
            raise _conflict(conn, put.path, put.expected) from None
        raise
    if sent.partless or (sent.listing is None and stat.numChildren == 0):
        conn.partless[put.path] = stat.version
        return
    try:
        stale = be.result(f"list {parts_path}",
                          sent.listing or be.client.get_children_async(parts_path), deadline)
    except NoNodeError:
        conn.partless[put.path] = stat.version
        return
    # Only while the record still holds this value: a newer writer's parts may be
    # in that listing by now, and they are not stale.
    ops = [("check", put.path, None, stat.version)]
    ops.extend(("delete", f"{parts_path}/{name}", None, -1) for name in stale)
    ops.append(("delete", parts_path, None, -1))
    try:
        run_groups(conn, group_ops(conn, ops))
        conn.partless[put.path] = stat.version
    except Raced:
        pass  # changed again meanwhile: its writer removes what is stale
    except StorageFailure as err:
        # The record itself is written; left-over parts are removed by its next write.
        LOG.warning("could not remove the old parts of %s: %s", put.path, err)


def _update_one(conn: ZkWriter, put: Put, entry: Entry | None = None) -> None:
    """One conditional setData (with its history entry: one multi), then old parts go."""
    finish_update(conn, send_update(conn, put, entry))


def _conflict(conn: ZkWriter, path: str, expected: int | None) -> Conflict:
    found: int | None = None
    try:
        stat = conn.backend.call(f"read {path}", lambda: conn.backend.client.exists_async(path))
        found = stat.version if stat is not None and stat.dataLength else 0
    except StorageFailure:
        pass
    return Conflict(f"{path} was changed by another writer: expected revision {expected}, "
                    f"found {found if found is not None else 'unknown'}",
                    record=path, expected=expected, found=found)


def _send(client: Any, ops: list[tuple]) -> Any:
    """Send ``ops`` as one multi request (kazoo protocol records, as :func:`run_groups`)."""
    acl = client.default_acl or OPEN_ACL_UNSAFE
    root = client.chroot or ""
    request = proto.Transaction([
        proto.Create(root + path, data, acl, 0) if kind == "create" else
        proto.CheckVersion(root + path, version) if kind == "check" else
        proto.SetData(root + path, data, version)
        for kind, path, data, version in ops])
    result = client.handler.async_result()
    client._call(request, result)
    return result


def _multi_result(results: list[Any], path: str, after: bool = False) -> Any:
    """The setData stat of a [check earlier entry (``after``),] set, create entry multi;
    its failure raised as such (:class:`Unchained` when the check failed)."""
    failed = [r for r in results if isinstance(r, Exception) and not isinstance(r, ROLLED_BACK)]
    if after and results and failed and results[0] is failed[0]:
        raise Unchained(f"the update of {path} was sent behind one that did not apply")
    if failed:
        raise failed[0]
    if len(results) != 2 + after:
        raise StorageFailure(f"ZooKeeper answered an update of {path} with {len(results)} "
                             f"results instead of {2 + after}")
    return results[after]


