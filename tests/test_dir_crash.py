"""The dir backend under SIGKILL: a killed writer leaves old or new records, never torn ones.

A real child interpreter writes in a loop (new logbooks, atom updates with
changing results, re-saves) and is killed with SIGKILL at random moments,
over and over, on the same directory.  After every kill each record file must
parse, every logbook must load through a fresh backend, each result must be
complete and no older than the last write the child saw succeed.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import persistence
from persistence import states
from persistence.backends.dir import STAGING_PREFIX
from persistence.exceptions import StorageFailure
from persistence.models import FlowDetail, LogBook, TaskDetail
from persistence.testing.samples import make_book

KILLS = 30
PAYLOAD_ROWS = 200

CHILD = r"""
import sys
from persistence import states
from persistence.backends.dir import DirBackend
from persistence.models import FlowDetail, LogBook, TaskDetail

store, run, ack_path, rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ack = open(ack_path, "a", buffering=1)

def payload(n):
    return {"n": n, "rows": [n] * rows, "text": "ü" * (n % 37)}

def new_book(uuid, flows, atoms):
    book = LogBook(uuid, uuid=uuid)
    for f in range(flows):
        fd = FlowDetail(f"{uuid}-f{f}", f"{uuid}-f{f}")
        for a in range(atoms):
            ad = TaskDetail(f"{uuid}-f{f}-a{a}", f"{uuid}-f{f}-a{a}")
            ad.put(states.SUCCESS, payload(0))
            fd.add(ad)
        book.add(fd)
    return book

conn = DirBackend({"path": store}).get_connection()
conn.upgrade()
book = new_book(f"main-{run}", 2, 3)
conn.save_logbook(book)
atoms = [ad for fd in book for ad in fd]
for ad in atoms:
    ack.write(f"{ad.uuid} 0\n")
n = 0
while True:
    n += 1
    ad = atoms[n % len(atoms)]
    ad.put(states.SUCCESS, payload(n))
    if n % 7 == 0:
        book.meta["n"] = n
        conn.save_logbook(book)
    elif n % 11 == 0:
        conn.update_flow_details(next(fd for fd in book if ad in fd))
    else:
        conn.update_atom_details(ad)
    ack.write(f"{ad.uuid} {n}\n")
    if n % 5 == 0:
        conn.save_logbook(new_book(f"extra-{run}-{n}", 2, 2))
"""


def _acked(ack_file: Path) -> dict[str, int]:
    """Last write the child saw succeed, per atom (complete lines only)."""
    last: dict[str, int] = {}
    for line in ack_file.read_text().splitlines(keepends=True):
        if line.endswith("\n"):
            uuid, n = line.split()
            last[uuid] = int(n)
    return last


def _wait_for_first_ack(proc: subprocess.Popen, ack_file: Path, err_file: Path) -> None:
    deadline = time.monotonic() + 30
    while not (ack_file.exists() and ack_file.read_text().count("\n") >= 6):
        if proc.poll() is not None:
            pytest.fail(f"writer died on its own:\n{err_file.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail("writer did not start within 30 s")
        time.sleep(0.01)


def _check_every_record_file(store: Path) -> set[Path]:
    """Every record file parses; return the leftover temp files."""
    temps = set()
    for path in store.rglob("*"):
        if path.name.startswith(".tmp-"):
            temps.add(path)
        elif path.name == ".record" or path.name.startswith(".h-"):
            raw = path.read_bytes()
            header, sep, body = raw.partition(b"\n")
            assert sep and header.isdigit() and int(header) >= 1, f"torn header in {path}"
            body, _, entry = body.partition(b"\n")   # the third line: its history entry
            try:
                record = json.loads(body.decode("utf-8"))
                if path.name.startswith(".h-"):
                    assert json.loads(entry)["revision"] == int(header), path
            except ValueError as err:
                raise AssertionError(f"torn record in {path}: {err}") from err
            staged = path.parent.name.startswith(STAGING_PREFIX)   # a kill left it unpublished
            assert isinstance(record, dict) and (staged or record["uuid"] == path.parent.name), path
    return temps


def _check_store(store: Path, acked: dict[str, int]) -> None:
    with persistence.backend({"connection": "dir", "path": str(store),
                              "max_cache_size": 0}) as be, be.get_connection() as conn:
        books = list(conn.get_logbooks())
        atoms = {ad.uuid: ad for book in books for fd in book for ad in fd}
        for uuid in os.listdir(store / "atom_details"):
            if (store / "atom_details" / uuid / ".record").exists():
                atoms.setdefault(uuid, conn.get_atom_details(uuid))
    for ad in atoms.values():
        n = ad.results["n"]
        assert ad.results["rows"] == [n] * PAYLOAD_ROWS, f"incomplete result in {ad.uuid}"
        assert ad.results["text"] == "ü" * (n % 37)
    for uuid, n in acked.items():
        assert uuid in atoms, f"acknowledged atom {uuid} is missing"
        assert atoms[uuid].results["n"] >= n, f"acknowledged write {n} of {uuid} was lost"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_sigkilled_writer_never_leaves_a_torn_record(tmp_path):
    store = tmp_path / "store"
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    temps_seen: set[Path] = set()
    for run in range(KILLS):
        ack_file, err_file = tmp_path / f"ack-{run}", tmp_path / f"err-{run}"
        with open(err_file, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-c", CHILD, str(store), str(run),
                                     str(ack_file), str(PAYLOAD_ROWS)],
                                    stderr=err, stdout=subprocess.DEVNULL)
        try:
            _wait_for_first_ack(proc, ack_file, err_file)
            time.sleep(rng.uniform(0, 0.25))
            assert proc.poll() is None, f"writer stopped early:\n{err_file.read_text()}"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        context = f"(kill {run + 1} of {KILLS}, seed {seed})"
        try:
            temps_seen |= _check_every_record_file(store)
            _check_store(store, _acked(ack_file))
        except (AssertionError, StorageFailure) as err:
            raise AssertionError(f"{err} {context}") from err
    # Leftover temp files (if a kill hit one) break neither reads nor new writes.
    print(f"leftover temp files after {KILLS} kills: {len(temps_seen)}")
    with persistence.backend({"connection": "dir", "path": str(store)}) as be, \
            be.get_connection() as conn:
        book = make_book()
        conn.save_logbook(book)
        assert conn.get_logbook(book.uuid).name == book.name
        assert len(list(conn.get_logbooks())) >= KILLS


# -- several processes -------------------------------------------------------------
WRITER = r"""
import sys
from persistence import states
from persistence.backends.dir import DirBackend

store, flow_uuid, mine, via_flow, rounds = sys.argv[1:6]
conn = DirBackend({"path": store}).get_connection()
fd = conn.get_flow_details(flow_uuid)
atoms = [fd.find(uuid) for uuid in mine.split(",")]
for i in range(int(rounds)):
    for ad in atoms:
        ad.put(states.SUCCESS, {"by": mine, "i": i})
    if via_flow == "1":
        fd.meta["i"] = i
        conn.update_flow_details(fd)
    else:
        for ad in atoms:
            conn.update_atom_details(ad)
"""


def test_processes_updating_different_atoms_of_one_flow_lose_nothing(tmp_path):
    """One process saves the whole flow each time (only its changed atoms may be
    written), the others update single atoms: nobody's writes are lost."""
    store, rounds = tmp_path / "store", 40
    book = LogBook("shared")
    fd = FlowDetail("flow", "flow-shared")
    for i in range(6):
        fd.add(TaskDetail(f"t{i}", f"atom-{i}"))
    book.add(fd)
    with persistence.backend({"connection": "dir", "path": str(store)}) as be, \
            be.get_connection() as conn:
        conn.save_logbook(book)
    groups = ["atom-0,atom-1", "atom-2,atom-3", "atom-4,atom-5"]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(store), fd.uuid, group,
                               "1" if n == 0 else "0", str(rounds)], stderr=subprocess.PIPE)
             for n, group in enumerate(groups)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    with persistence.backend({"connection": "dir", "path": str(store)}) as be, \
            be.get_connection() as conn:
        got = conn.get_flow_details(fd.uuid)
    assert got.meta["i"] == rounds - 1 and len(got) == 6
    for group in groups:
        for uuid in group.split(","):
            assert got.find(uuid).results == {"by": group, "i": rounds - 1}


# -- corrupt files --------------------------------------------------------------
def _saved_book(store: Path) -> LogBook:
    book = LogBook("book")
    fd = FlowDetail("flow", "flow-1")
    ad = TaskDetail("atom", "atom-1")
    ad.put(states.SUCCESS, {"rows": list(range(100))})
    fd.add(ad)
    book.add(fd)
    with persistence.backend({"connection": "dir", "path": str(store)}) as be, \
            be.get_connection() as conn:
        conn.save_logbook(book)
    return book


def _corruptions(original: bytes) -> dict[str, bytes]:
    return {
        "truncated": original[: len(original) // 2],
        "empty": b"",
        "header-only": original.partition(b"\n")[0] + b"\n",
        "no-header": original.partition(b"\n")[2],
        "not-a-record": b"3\n[1, 2, 3]",
        "missing-fields": b"3\n{}",
        "not-utf8": b"3\n{\"name\": \"\xff\xfe\"}",
    }


@pytest.mark.parametrize("kind", list(_corruptions(b"1\n{}")))
def test_corrupt_atom_file_is_a_storage_failure_naming_it(tmp_path, kind):
    store = tmp_path / "store"
    _saved_book(store)
    file = store / "atom_details" / "atom-1" / ".record"
    file.write_bytes(_corruptions(file.read_bytes())[kind])
    with persistence.backend({"connection": "dir", "path": str(store)}) as be, \
            be.get_connection() as conn:
        for read in (lambda: conn.get_atom_details("atom-1"),
                     lambda: conn.get_flow_details("flow-1"),
                     lambda: list(conn.get_logbooks())):
            with pytest.raises(StorageFailure) as info:
                read()
            assert str(file) in str(info.value)


@pytest.mark.parametrize("kind", ["truncated", "empty", "not-a-record"])
def test_corrupt_logbook_file_is_a_storage_failure_naming_it(tmp_path, kind):
    store = tmp_path / "store"
    book = _saved_book(store)
    file = store / "books" / book.uuid / ".record"
    file.write_bytes(_corruptions(file.read_bytes())[kind])
    with persistence.backend({"connection": "dir", "path": str(store)}) as be, \
            be.get_connection() as conn:
        for read in (lambda: conn.get_logbook(book.uuid),
                     lambda: conn.get_logbook(book.uuid, lazy=True)):
            with pytest.raises(StorageFailure) as info:
                read()
            assert str(file) in str(info.value)


def test_corruption_is_seen_through_a_warm_cache(tmp_path):
    """A backend that already read a file notices when it is replaced by garbage."""
    store = tmp_path / "store"
    _saved_book(store)
    file = store / "atom_details" / "atom-1" / ".record"
    with persistence.backend({"connection": "dir", "path": str(store)}) as be, \
            be.get_connection() as conn:
        assert conn.get_atom_details("atom-1").results == {"rows": list(range(100))}
        file.write_bytes(file.read_bytes()[:20])
        with pytest.raises(StorageFailure, match=re.escape(str(file))):
            conn.get_atom_details("atom-1")
