"""An atom's result sent behind its own mark, without waiting for the mark's answer.

An engine marks an atom RUNNING without waiting (``update_atom_details_nowait``)
and then saves its result.  Waiting for the mark's answer before sending the
result costs a round trip and a second log flush the server cannot batch with
the first.  Sending the result at once is safe only if it cannot apply when
the mark did not: the mark's version check may have failed because another
writer wrote once meanwhile, leaving exactly the version the result expects —
a lost update.  So the result's multi first checks that the history entry the
mark's multi created exists.  Requests of one session are applied in the
order sent, and that entry's name is unique to the mark, so:

* mark applied: its entry exists, the result applies if its own version check holds;
* mark refused: no entry, the result is refused as a whole (:class:`.writes.Unchained`).

If the entry was removed in between (a purge of old history), the result is
refused too; it is sent again as an ordinary write once the mark's answer says
the mark applied.  When a connection drops before the answers come, the
outcome is read back, as for any write (see :mod:`.writes`).  Without history
there is no entry to check: the result then waits for the mark, as before.
"""

from __future__ import annotations

import logging

from ...exceptions import StorageFailure
from .host import ZkWriter
from .writes import (
    Entry,
    Put,
    Sent,
    Unchained,
    finish_update,
    lost,
    outcome,
    send_update,
    update_one,
)

__all__ = ["chains", "follow"]

LOG = logging.getLogger(__name__)


def chains(conn: ZkWriter, sent: Sent | None, ops: list) -> bool:
    """Whether ``ops`` (one transaction's) can be sent behind ``sent`` unanswered: the
    next write of the same record, in one multi with its history entry."""
    if sent is None or sent.entry is None or sent.after is not None or len(ops) != 2:
        return False
    put, entry = ops
    return (isinstance(put, Put) and isinstance(entry, Entry) and put.path == sent.put.path
            and put.expected == sent.put.expected + 1 and not put.create
            and len(put.data) <= conn.backend.chunk_size)


def follow(conn: ZkWriter, sent: Sent, put: Put, entry: Entry) -> None:
    """Send ``put`` (with ``entry``) behind ``sent``, then wait for both answers: the
    earlier one's error is raised first, as if it had been waited for before."""
    assert sent.entry is not None
    after = send_update(conn, put, entry, after=sent.entry.path)
    try:
        finish_update(conn, sent)
    except StorageFailure as err:
        _drain(conn, after)
        if not lost(err):
            raise
        _recover(conn, sent, put, entry)
        return
    except BaseException:
        _drain(conn, after)  # refused (or interrupted): the follower cannot have applied
        raise
    try:
        finish_update(conn, after)
    except Unchained:
        LOG.info("%s: the history entry of its previous write was gone; writing again",
                 put.path)
        update_one(conn, put, entry)
    except StorageFailure as err:
        if not lost(err):
            raise
        update_one(conn, put, entry, after)  # reads the outcome back; sends again if not applied


def _drain(conn: ZkWriter, after: Sent) -> None:
    """Wait for the follower's answer and drop it: its predecessor's fate decides."""
    try:
        conn.backend.result(f"update {after.put.path}", after.request, after.deadline)
    except Exception:  # refused or lost: _recover or the caller's error says what happened
        pass


def _recover(conn: ZkWriter, sent: Sent, put: Put, entry: Entry) -> None:
    """Both answers lost: read back which of the two writes went through; send again
    what did not (the earlier one first)."""
    path, before = put.path, sent.put.expected
    both = outcome(conn, {path: before}, {path: (put.expected + 1, put.data)})
    if both:
        LOG.info("the answers to two updates of %s were lost; both were applied", path)
        return
    # False: the record is as before both (so the first did not apply either);
    # None: read again whether it holds the first one's value.
    first = both if both is False else outcome(
        conn, {path: before}, {path: (sent.put.expected + 1, sent.put.data)})
    if first is None:
        raise StorageFailure(f"the answers to two updates of {path} were lost and it now "
                             f"holds neither's value nor the one before: another writer "
                             f"changed it meanwhile")
    if not first:
        LOG.info("the answers to two updates of %s were lost; neither was applied: "
                 "sending both again", path)
        update_one(conn, sent.put, sent.entry)
    update_one(conn, put, entry)
