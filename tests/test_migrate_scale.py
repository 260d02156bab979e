"""Migration memory stays flat in the number of logbooks: 10,000 logbooks × 20 atoms.

A sqlite source is filled by two helper processes, then ``persistence migrate``
copies it to a second sqlite file in its own process, whose peak RSS
(``ru_maxrss`` from ``wait4``) is measured: first for 1,000 of the logbooks,
then for all of them (the 1,000 already copied are skipped, the rest copied,
everything verified).  If memory grew with the number of logbooks, the second
peak would be far above the first: each logbook loaded is ~40 KiB of objects,
so holding 10,000 would add hundreds of MiB.  The peaks are printed
(``-s`` shows them) and written to ``$PERSISTENCE_SCALE_REPORT`` if set.
``PERSISTENCE_SCALE_LOGBOOKS`` changes the size (default 10,000).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import persistence

LOGBOOKS = int(os.environ.get("PERSISTENCE_SCALE_LOGBOOKS", "10000"))
ATOMS = 20
FIRST = LOGBOOKS // 10
#: Allowed growth of the peak RSS from FIRST to LOGBOOKS logbooks (the uuid list
#: and per-logbook counts, ~200 bytes each, stay well below it).
ALLOWED_GROWTH_MIB = 32

FILL = """
import sys
import persistence
from persistence import states
from persistence.models import FlowDetail, LogBook, TaskDetail

uri, start, stop, atoms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with persistence.backend(uri) as be, be.get_connection() as conn:
    for i in range(start, stop):
        book = LogBook(f"book-{i}", uuid=f"book-{i:06d}")
        book.meta["index"] = i
        fd = FlowDetail("flow", f"flow-{i:06d}")
        fd.state = states.SUCCESS
        for a in range(atoms):
            ad = TaskDetail(f"task-{a}", f"atom-{i:06d}-{a:02d}")
            ad.put(states.SUCCESS, {"book": i, "atom": a, "payload": "x" * 100})
            fd.add(ad)
        book.add(fd)
        conn.save_logbook(book)
"""


def _fill(uri: str) -> None:
    with persistence.backend(uri):
        pass  # create the schema once, before the two writers start
    half = LOGBOOKS // 2
    procs = [subprocess.Popen([sys.executable, "-c", FILL, uri, str(lo), str(hi), str(ATOMS)])
             for lo, hi in ((0, half), (half, LOGBOOKS))]
    for proc in procs:
        assert proc.wait(timeout=900) == 0


def _migrate(src: str, dst: str, *logbooks: str) -> tuple[dict, int]:
    """Run ``persistence migrate`` in a child; return its JSON report and peak RSS (KiB)."""
    args = [sys.executable, "-m", "persistence", "migrate", src, dst, "--json"]
    for uuid in logbooks:
        args += ["--logbook", uuid]
    with open(os.devnull, "w") as devnull:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=devnull, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
    assert proc.returncode == 0, out
    return json.loads(out), usage.ru_maxrss


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_migrating_10000_logbooks_keeps_memory_flat(tmp_path):
    src, dst = f"sqlite:///{tmp_path}/src.db", f"sqlite:///{tmp_path}/dst.db"
    _fill(src)
    first = [f"book-{i:06d}" for i in range(FIRST)]
    report, small = _migrate(src, dst, *first)
    assert report["created"] == FIRST and report["verified"]
    report, large = _migrate(src, dst)
    assert report["verified"] and report["logbooks"] == LOGBOOKS
    assert (report["skipped"], report["created"]) == (FIRST, LOGBOOKS - FIRST)
    assert report["atom_details"] == LOGBOOKS * ATOMS
    result = {"logbooks": LOGBOOKS, "atoms_per_logbook": ATOMS,
              f"peak_rss_mib_{FIRST}": round(small / 1024, 1),
              f"peak_rss_mib_{LOGBOOKS}": round(large / 1024, 1)}
    print(f"\nmigrate sqlite -> sqlite peak RSS: {result}")
    if os.environ.get("PERSISTENCE_SCALE_REPORT"):
        with open(os.environ["PERSISTENCE_SCALE_REPORT"], "w") as fh:
            json.dump(result, fh)
    assert (large - small) / 1024 < ALLOWED_GROWTH_MIB, result
