"""A stored blob reference never chooses where readers fetch from or what destroy deletes.

Blobs are read from (and deleted in) the backend's offload URL and the earlier
ones listed in ``offload_read_from`` only.  A record whose reference names any
other URL — written by whoever can write the database, or left by earlier
settings nobody listed — is refused with a PayloadError that says how to allow
it, and destroying it leaves the other URL alone.
"""

from __future__ import annotations

import os
import sqlite3

import pytest

import persistence
from persistence import FlowDetail, LogBook, states
from persistence.exceptions import PayloadError
from persistence.models import TaskDetail

BIG = {"rows": [os.urandom(16).hex() for _ in range(64)]}


def _book() -> LogBook:
    book, flow, task = LogBook("trust"), FlowDetail("flow"), TaskDetail("task")
    task.state, task.results = states.SUCCESS, BIG
    flow.add(task)
    book.add(flow)
    return book


def _conf(db: str, blobs: str, **extra) -> dict:
    return {"connection": f"sqlite:///{db}",
            "offload": {"url": f"file://{blobs}", "threshold": 64}, **extra}


def _point_refs_at(db: str, old: str, new: str) -> int:
    """Rewrite the stored references' URL, as someone with write access to the database."""
    with sqlite3.connect(db) as raw:
        rows = raw.execute("SELECT uuid, results FROM atomdetails").fetchall()
        for uuid, results in rows:
            raw.execute("UPDATE atomdetails SET results = ? WHERE uuid = ?",
                        (results.replace(old, new), uuid))
    return len(rows)


def _files(directory: str) -> list[str]:
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(directory) for f in fs)


def test_a_reference_to_another_url_is_refused_and_never_deleted(tmp_path):
    db, ours, theirs = str(tmp_path / "s.db"), str(tmp_path / "ours"), str(tmp_path / "theirs")
    os.makedirs(theirs)
    conf = _conf(db, ours)
    book = _book()
    with persistence.backend(conf) as be, be.get_connection() as conn:
        conn.upgrade()
        conn.save_logbook(book)
    # Their directory holds a copy of every blob, under the same keys.
    for path in _files(ours):
        target = os.path.join(theirs, os.path.relpath(path, ours))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(path, "rb") as src, open(target, "wb") as dst:
            dst.write(src.read())
    assert _point_refs_at(db, f"file://{ours}", f"file://{theirs}") == 1
    with persistence.backend(conf) as be, be.get_connection() as conn:
        with pytest.raises(PayloadError, match="offload_read_from") as err:
            conn.get_logbook(book.uuid)
        assert theirs in str(err.value)
        conn.destroy_logbook(book.uuid)
    assert _files(theirs), "destroy deleted blobs at a URL this backend does not offload to"


def test_blobs_under_an_earlier_offload_url_are_read_once_listed(tmp_path):
    db, old, new = str(tmp_path / "s.db"), str(tmp_path / "old"), str(tmp_path / "new")
    book = _book()
    with persistence.backend(_conf(db, old)) as be, be.get_connection() as conn:
        conn.upgrade()
        conn.save_logbook(book)
    with persistence.backend(_conf(db, new)) as be, be.get_connection() as conn:
        with pytest.raises(PayloadError, match="offload_read_from"):
            conn.get_logbook(book.uuid)
    listed = _conf(db, new, offload_read_from=[f"file://{old}"])
    with persistence.backend(listed) as be, be.get_connection() as conn:
        got = conn.get_logbook(book.uuid)
        assert [ad.results for fd in got for ad in fd] == [BIG]
