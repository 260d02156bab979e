"""Key rotation and rekey, offloaded blobs over their lifetime (destroy, purge, sweep
next to a running writer, a crash between blob and commit), S3, and values carried
by migrate, export and import across stores with different pipelines."""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import sys
import threading
import time

import pytest

import persistence
from persistence import FlowDetail, LogBook, states
from persistence.backends import blobs
from persistence.exceptions import MissingKey
from persistence.models import TaskDetail
from persistence.tools import archive, rekey
from persistence.tools.copy import migrate
from tests.payload_support import KEY_A, KEY_B, full_pipeline, raw_bytes

BIG = {"rows": [f"row-{i:05d}-{os.urandom(12).hex()}" for i in range(300)]}


def _flow_book(name: str, results, n: int = 2) -> LogBook:
    book = LogBook(name)
    flow = FlowDetail(f"{name}-flow")
    for i in range(n):
        task = TaskDetail(f"{name}-task-{i}")
        task.state, task.results = states.SUCCESS, results
        task.meta["injected"] = {"x": i}
        flow.add(task)
    flow.state = states.SUCCESS
    book.add(flow)
    return book


def _values(conn) -> dict[str, object]:
    return {ad.name: (ad.results, dict(ad.meta)) for book in conn.get_logbooks()
            for fd in book for ad in fd}


def _keys(spec: dict) -> dict:
    return {"encrypt": {"keys": spec}}


# -- rotation -------------------------------------------------------------------------
def test_rotation_then_rekey_then_the_old_key_goes(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    with persistence.backend({"connection": url, **_keys({"a": KEY_A})}) as be, \
            be.get_connection() as conn:
        conn.save_logbook(_flow_book("under-a", {"v": "a"}))
    both = {"connection": url, **_keys({"a": KEY_A, "b": KEY_B})}
    with persistence.backend(both) as be, be.get_connection() as conn:
        conn.save_logbook(_flow_book("under-b", {"v": "b"}))
        before = _values(conn)                       # reads both keys
        assert {json.dumps(r) for r, _ in before.values()} == {'{"v": "a"}', '{"v": "b"}'}
        calls = []
        report = rekey.rekey(conn, lambda done, total: calls.append((done, total)))
        assert report.key == "b" and report.flows == 2 and report.flows_rewritten == 1
        assert report.values_rewritten == 4          # 2 results, 2 meta values, flow: none
        assert calls[-1] == (2, 2)
        again = rekey.rekey(conn)                    # resumable: nothing left to do
        assert again.flows_rewritten == 0 and again.values_rewritten == 0
    with persistence.backend({"connection": url, **_keys({"b": KEY_B})}) as be, \
            be.get_connection() as conn:
        assert _values(conn) == before               # key a is gone, all still read


def test_rekey_encrypts_values_written_before_encryption_was_turned_on(tmp_path):
    path = str(tmp_path / "s")
    with persistence.backend({"connection": "dir", "path": path}) as be, \
            be.get_connection() as conn:
        conn.save_logbook(_flow_book("plain", {"v": "PLAIN-VALUE-123"}))
    with persistence.backend({"connection": "dir", "path": path, **_keys({"a": KEY_A})}) \
            as be, be.get_connection() as conn:
        assert b"PLAIN-VALUE-123" in raw_bytes(be)
        assert rekey.rekey(conn).values_rewritten == 4
        # The records hold no plaintext any more; the dir backend's history links keep
        # each earlier version of a record file as it was (documented).
        records = b"".join(p.read_bytes().split(b"\n")[1] for p in
                           (tmp_path / "s").glob("*/*/.record"))
        assert b"atom_details" not in records and records.count(b'"$payload"') == 4
        assert b"PLAIN-VALUE-123" not in records
        assert all(r == {"v": "PLAIN-VALUE-123"} for r, _ in _values(conn).values())


def test_rekey_on_the_command_line_prints_no_key(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/s.db"
    with persistence.backend({"connection": url, **_keys({"a": KEY_A})}) as be, \
            be.get_connection() as conn:
        conn.save_logbook(_flow_book("cli", {"v": 1}))
    keys = f"a:{base64.b64encode(KEY_A).decode()},b:{base64.b64encode(KEY_B).decode()}"
    env = {"PERSISTENCE_TEST_KEYS": keys, "PATH": ""}
    done = subprocess.run([sys.executable, "-m", "persistence", "rekey",
                           f"{url}?encrypt=env:PERSISTENCE_TEST_KEYS"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "under key 'b'" in done.stdout and "rewrote 4 value(s)" in done.stdout
    for secret in (base64.b64encode(KEY_A).decode(), base64.b64encode(KEY_B).decode(), keys):
        assert secret not in done.stdout + done.stderr
    with persistence.backend({"connection": url, **_keys({"b": KEY_B})}) as be, \
            be.get_connection() as conn:
        assert {json.dumps(r) for r, _ in _values(conn).values()} == {'{"v": 1}'}
    done = subprocess.run([sys.executable, "-m", "persistence", "ls", url],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0            # names are in clear: listing needs no key


# -- blobs over their lifetime ----------------------------------------------------------
@pytest.mark.parametrize("where", ["dir", "s3"])
def test_offload_destroy_and_purge_remove_blobs(tmp_path, where, request):
    offload = ({"url": str(tmp_path / "blobs")} if where == "dir"
               else request.getfixturevalue("s3_offload"))
    conf = {"connection": f"sqlite:///{tmp_path}/s.db", "compress": "zstd",
            "offload": {**offload, "threshold": "1KiB"}}
    with persistence.backend(conf) as be, be.get_connection() as conn:
        store = be.payload.offload
        keep, doomed, old = (_flow_book(n, BIG) for n in ("keep", "doomed", "old"))
        for book in (keep, doomed, old):
            conn.save_logbook(book)
        assert len(list(store.blobs())) == 6
        refs = blobs.referenced_blobs(conn)
        assert len(refs) == 6 and all(url == offload["url"] for url, _ in refs)
        conn.destroy_logbook(doomed.uuid)
        assert len(list(store.blobs())) == 4
        report = conn.purge(datetime.datetime.now(datetime.timezone.utc)
                            + datetime.timedelta(seconds=1))
        assert set(report.logbooks) == {keep.uuid, old.uuid}
        assert list(store.blobs()) == []


def test_overwritten_and_orphaned_blobs_are_swept_after_the_grace_period(tmp_path):
    conf = {"connection": "dir", "path": str(tmp_path / "s"),
            "offload": {"url": str(tmp_path / "blobs"), "threshold": 100, "grace": 30}}
    with persistence.backend(conf) as be, be.get_connection() as conn:
        book = _flow_book("b", BIG, n=1)
        conn.save_logbook(book)
        task = next(iter(next(iter(book))))
        task.results = {"rows": BIG["rows"][:100]}
        conn.update_atom_details(task)          # the first blob is now unreferenced
        be.payload.offload.put(b"x" * 500)      # a write that crashed before its commit
        assert len(list(be.payload.offload.blobs())) == 3
        now = time.time()
        young = blobs.sweep(conn)                # all younger than the grace period
        assert young.removed == () and young.listed == 3
        later = blobs.sweep(conn, clock=lambda: now + 60)
        assert len(later.removed) == 2 and later.referenced == 1
        assert conn.get_atom_details(task.uuid).results == {"rows": BIG["rows"][:100]}
        assert len(list(be.payload.offload.blobs())) == 1
        dry = blobs.sweep(conn, clock=lambda: now + 60, dry_run=True)
        assert dry.removed == () and dry.dry_run


def test_sweep_next_to_a_running_writer_removes_only_garbage(tmp_path):
    """A writer overwrites large results as fast as it can while sweeps with a short
    grace period run in a loop: every record always reads back whole."""
    grace = 1.0
    conf = {"connection": f"sqlite:///{tmp_path}/s.db",
            "offload": {"url": str(tmp_path / "blobs"), "threshold": 100, "grace": grace}}
    with persistence.backend(conf) as be:
        with be.get_connection() as conn:
            book = _flow_book("w", BIG, n=3)
            conn.save_logbook(book)
        stop, errors, writes, sweeps = threading.Event(), [], [0], [0]

        def writer():
            with be.get_connection() as conn:
                atoms = list(next(iter(conn.get_logbook(book.uuid))))
                while not stop.is_set():
                    for ad in atoms:
                        ad.results = {"rows": BIG["rows"], "n": writes[0]}
                        conn.update_atom_details(ad)
                        writes[0] += 1

        def sweeper():
            with be.get_connection() as conn:
                while not stop.is_set():
                    blobs.sweep(conn)
                    sweeps[0] += 1

        threads = [threading.Thread(target=writer), threading.Thread(target=sweeper)]
        for t in threads:
            t.start()
        try:
            deadline = time.monotonic() + 4 * grace
            with be.get_connection() as conn:
                while time.monotonic() < deadline:
                    for ad in next(iter(conn.get_logbook(book.uuid))):
                        assert ad.results["rows"] == BIG["rows"]
        except BaseException as err:
            errors.append(err)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        assert not errors, errors
        assert writes[0] > 20 and sweeps[0] > 2
        with be.get_connection() as conn:
            final = blobs.sweep(conn, clock=lambda: time.time() + 2 * grace)
            assert final.referenced == 3 and len(list(be.payload.offload.blobs())) == 3
            assert all(ad.results["rows"] == BIG["rows"]
                       for ad in next(iter(conn.get_logbook(book.uuid))))


def test_a_failed_write_leaves_only_an_unreferenced_blob(tmp_path):
    conf = {"connection": f"sqlite:///{tmp_path}/s.db",
            "offload": {"url": str(tmp_path / "blobs"), "threshold": 100}}
    with persistence.backend(conf) as be, be.get_connection() as conn:
        book = _flow_book("c", {"small": 1}, n=1)
        conn.save_logbook(book)
        stale = next(iter(conn.get_logbook(book.uuid).find(next(iter(book)).uuid)))
        fresh = next(iter(conn.get_logbook(book.uuid).find(next(iter(book)).uuid)))
        fresh.results = {"v": 1}
        conn.update_atom_details(fresh)
        stale.results = BIG                       # uploads, then the write conflicts
        with pytest.raises(persistence.exceptions.Conflict):
            conn.update_atom_details(stale)
        assert len(list(be.payload.offload.blobs())) == 1
        report = blobs.sweep(conn, grace=0, clock=lambda: time.time() + 1)
        assert len(report.removed) == 1 and conn.get_atom_details(fresh.uuid).results == \
            {"v": 1}


# -- carried between stores -----------------------------------------------------------
def test_migrate_export_import_carry_values_across_pipelines(tmp_path):
    source = {"connection": f"sqlite:///{tmp_path}/src.db", **full_pipeline(tmp_path)}
    plain = {"connection": "dir", "path": str(tmp_path / "plain")}
    other = {"connection": "memory", "serializer": "json", "compress": "zlib",
             "encrypt": {"keys": {"a": KEY_A, "z": KEY_B}, "current": "z"},
             "offload": {"url": str(tmp_path / "other-blobs"), "threshold": 512}}
    with persistence.backend(source) as src, persistence.backend(plain) as mid, \
            persistence.backend(other) as dst:
        with src.get_connection() as s, mid.get_connection() as m, dst.get_connection() as d:
            s.save_logbook(_flow_book("carried", BIG))
            s.save_logbook(_flow_book("small", {"secret": "CARRIED-SECRET"}))
            expected = _values(s)
            assert migrate(s, m).verified and _values(m) == expected
            assert b"CARRIED-SECRET" in raw_bytes(mid)            # the plain store
            path = tmp_path / "from-encrypted.zip"
            archive.export_archive(s, path)
            import zipfile
            with zipfile.ZipFile(path) as z:
                assert b"CARRIED-SECRET" not in z.read("records.jsonl")
            with pytest.raises(MissingKey):
                with persistence.backend({"connection": "memory"}) as bare, \
                        bare.get_connection() as b:
                    archive.import_archive(b, path)
            assert archive.import_archive(d, path).created == 2
            assert _values(d) == expected
            assert b"CARRIED-SECRET" not in raw_bytes(dst)
            assert len(list(dst.payload.offload.blobs())) == 2   # its own blobs
            path2 = tmp_path / "from-plain.zip"
            archive.export_archive(m, path2)
            with persistence.backend(source) as again, again.get_connection() as a:
                a.clear_all()
                assert archive.import_archive(a, path2).created == 2
                assert _values(a) == expected


def test_sweep_on_the_command_line(tmp_path):
    blobs_dir = tmp_path / "blobs"
    url = f"sqlite:///{tmp_path}/s.db?offload={blobs_dir}&offload_threshold=100&offload_grace=0"
    with persistence.backend(url) as be, be.get_connection() as conn:
        conn.save_logbook(_flow_book("kept", BIG, n=1))
        be.payload.offload.put(b"z" * 300)                 # an orphan
    time.sleep(0.05)
    run = [sys.executable, "-m", "persistence", "sweep", url]
    dry = subprocess.run(run + ["--dry-run", "--json"], capture_output=True, text=True,
                         timeout=120)
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert (report["listed"], report["referenced"], len(report["removed"])) == (2, 1, 1)
    done = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "removed 1" in done.stdout, done.stderr
    assert len(list(blobs_dir.rglob("*-*"))) == 1
    with persistence.backend(url) as be, be.get_connection() as conn:
        assert _values(conn)["kept-task-0"][0] == BIG
