"""Backend-specific history behaviour of the path-based backends: the ``history``
option, how ``dir`` stores entries, and purge beside a live writer process."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time

import pytest

import persistence
from persistence import states
from persistence.exceptions import ConfigurationError
from persistence.models import FlowDetail, LogBook, TaskDetail
from persistence.testing.samples import make_book, new_uuid

UTC = datetime.timezone.utc


def _write_some(be) -> tuple[LogBook, TaskDetail]:
    with be.get_connection() as conn:
        conn.upgrade()
        book = make_book(flows=1, atoms=2)
        conn.save_logbook(book)
        ad = next(iter(next(iter(book))))
        for i in range(3):
            ad.put(states.SUCCESS, i)
            conn.update_atom_details(ad)
    return book, ad


@pytest.mark.parametrize("conf", [{"connection": "memory"}, {"connection": "dir"}],
                         ids=["memory", "dir"])
def test_history_option_turns_entries_off(conf, tmp_path):
    if conf["connection"] == "dir":
        conf = {**conf, "path": str(tmp_path / "store")}
    with persistence.backend({**conf, "history": False}) as be:
        assert be.history is False
        book, ad = _write_some(be)
        with be.get_connection() as conn:
            assert conn.get_history() == []
            assert conn.get_history(uuid=ad.uuid) == []
            assert conn.summary(next(iter(book)).uuid).last_change is None
            assert conn.get_atom_details(ad.uuid).results == 2
    with persistence.backend({**conf, "history": "true"}) as be:
        assert be.history is True


def test_history_option_in_a_uri_is_checked():
    with persistence.backend("memory://?history=off") as be:
        assert be.history is False
    with pytest.raises(ConfigurationError, match="history"):
        persistence.fetch("memory://?history=sometimes")


def test_dir_entries_are_the_record_files_each_write_left(tmp_path):
    store = tmp_path / "store"
    with persistence.backend({"connection": "dir", "path": str(store)}) as be:
        _, ad = _write_some(be)
    folder = store / "atom_details" / ad.uuid
    entries = sorted(p for p in folder.iterdir() if p.name.startswith(".h-"))
    assert len(entries) == 4   # created, then three updates
    for number, path in enumerate(entries, 1):
        header, record, entry = path.read_bytes().split(b"\n")
        assert int(header) == number == json.loads(entry)["revision"]
        assert json.loads(record)["uuid"] == ad.uuid
    # The current record file is the last entry, under its other name.
    assert os.path.samefile(folder / ".record", entries[-1])


def test_zookeeper_history_option(zookeeper_backend_factory):
    be = zookeeper_backend_factory(history=False)
    book, ad = _write_some(be)
    with be.get_connection() as conn:
        assert conn.get_history() == []
    be = zookeeper_backend_factory()
    book, ad = _write_some(be)
    with be.get_connection() as conn:
        assert [e.revision for e in conn.get_history(uuid=ad.uuid)] == [1, 2, 3, 4]


WRITER = r"""
import os, sys, time
import persistence
from persistence import states
from persistence.models import FlowDetail, LogBook, TaskDetail

conf, stop, progress = sys.argv[1], sys.argv[2], sys.argv[3]
with persistence.backend({"connection": "dir", "path": conf}) as be, \
        be.get_connection() as conn:
    book = LogBook("live")
    fd = FlowDetail("live", "live-flow")
    fd.state = states.RUNNING
    ad = TaskDetail("t", "live-atom")
    fd.add(ad)
    book.add(fd)
    conn.save_logbook(book)
    n, deadline = 0, time.monotonic() + 120
    while not os.path.exists(stop) and time.monotonic() < deadline:
        ad.put(states.SUCCESS, n)
        conn.update_atom_details(ad)
        n += 1
        with open(progress + ".tmp", "w") as fh:
            fh.write(str(n))
        os.replace(progress + ".tmp", progress)
"""


def _progress(path) -> int:
    try:
        return int(path.read_text() or 0)
    except FileNotFoundError:
        return 0


def test_dir_purge_in_batches_while_another_process_writes(tmp_path):
    store, stop, progress = tmp_path / "store", tmp_path / "stop", tmp_path / "progress"
    old = 200
    with persistence.backend({"connection": "dir", "path": str(store),
                              "history": False}) as be, be.get_connection() as conn:
        conn.upgrade()
        for i in range(old):
            book = LogBook(f"old-{i}")
            fd = FlowDetail("f", new_uuid())
            fd.state = states.SUCCESS
            fd.add(TaskDetail("t", new_uuid()))
            book.add(fd)
            conn.save_logbook(book)
    cutoff = datetime.datetime.now(UTC)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(store), str(stop),
                               str(progress)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while _progress(progress) < 3 and writer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writer.poll() is None, writer.communicate()[0]
        with persistence.backend({"connection": "dir", "path": str(store)}) as be, \
                be.get_connection() as conn:
            before = _progress(progress)
            report = conn.purge(finished_before=cutoff, batch_size=20)
            after = _progress(progress)
            assert len(report.logbooks) == old and report.batches == 10
            assert after > before, "the writer made no progress while the purge ran"
    finally:
        stop.touch()
        out, _ = writer.communicate(timeout=120)
    assert writer.returncode == 0, out
    with persistence.backend({"connection": "dir", "path": str(store)}) as be, \
            be.get_connection() as conn:
        assert [b.name for b in conn.list_logbooks()] == ["live"]
        assert conn.get_atom_details("live-atom").results == _progress(progress) - 1
