"""The benchmark harness still runs end to end (tiny sizes, memory, dir and sqlite).

No timing is asserted: speed is measured by ``python -m bench``, not by tests.
This only keeps the harness from rotting as the library changes.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys

from tests.conftest import unavailable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_run_writes_json_and_report(tmp_path):
    report = tmp_path / "report.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--backends", "memory,dir",
         "--out", str(tmp_path), "--report", str(report)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads((tmp_path / "latest.json").read_text())
    assert doc["availability"] == {"memory": None, "dir": None}
    for backend in ("memory", "dir"):
        assert set(doc["floors"][backend]) >= {"update", "bulk", "select"}
        run = doc["runs"]["persistence"][backend]
        results = run["main"]["results"]
        failed = {k: v for k, v in results.items() if "error" in v}
        assert not failed, failed
        assert {"W1", "W2", "W3_one", "W3_many", "W4"} <= set(results)
        assert results["W3_one"]["atoms_loaded"] == 2 * 10
        for n, part in run["w5"].items():
            w5 = part["results"]["W5"]
            assert "error" not in w5 and "save_error" not in w5, w5
            assert w5["load"]["atoms_loaded"] == int(n)
            assert w5["rss"]["peak_mb"] > 0
    text = report.read_text()
    for heading in ("## Availability", "## Targets", "## Key ratios", "## Floors", "### dir"):
        assert heading in text


def test_unknown_backend_is_a_usage_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "bench", "--backends", "nosuch",
                           "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown backend(s) nosuch" in done.stderr


def _dbos_missing(doc) -> str | None:
    """Why the W7 run has no DBOS figures because its virtualenv could not be built."""
    reason = doc["w7"]["dbos"]["unavailable"] or ""
    return reason if reason.startswith("cannot set up") else None


def test_quick_w6_w7_on_memory_and_sqlite(tmp_path):
    """W7 (ours per mode, the floor, DBOS on sqlite) and W6 (threads on memory, 4
    processes on one sqlite file) run and land in the JSON and the report."""
    from persistence.storage import Storage

    report = tmp_path / "report.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "w7,w6", "--backends",
         "memory,sqlite", "--out", str(tmp_path), "--report", str(report)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads((tmp_path / "latest.json").read_text())
    assert doc["meta"]["phases"] == ["w7", "w6"]
    assert doc["runs"] == {} and doc["floors"] == {}
    w7 = doc["w7"]
    modes = ["default"] + (["at_most_once"] if "at_most_once" in
                           inspect.signature(Storage).parameters else [])
    for backend in ("memory", "sqlite"):
        rounds = w7["backends"][backend]["rounds"]
        assert len(rounds) == doc["meta"]["sizes"]["w7_rounds"]
        for rep, one in enumerate(rounds):
            got = one["results"]["W7"]
            assert got["modes"] == modes
            jobs = ["floor"] + (["floor_history"] if backend == "sqlite" else []) + modes
            assert sorted(got["order"]) == sorted(jobs)
            assert got["order"][0] == jobs[rep % len(jobs)]
            for floor in jobs[:-len(modes)]:
                assert got[floor]["ops"] == w7["atoms"] and got[floor]["per_op_s"] > 0
            if backend == "sqlite":  # the same write recording its history row
                assert "history INSERT" in got["floor_history"]["what"]
            for mode in modes:
                assert got[mode]["atoms"] == w7["atoms"] and got[mode]["per_atom_s"] > 0
    assert "postgresql" not in w7["dbos"]["databases"]  # not among --backends
    dbos_missing = _dbos_missing(doc)
    if not dbos_missing:
        sqlite_rounds = w7["dbos"]["databases"]["sqlite"]["rounds"]
        assert [r.get("error") for r in sqlite_rounds] == [None] * len(rounds)
        assert all(r["version"] == "3.4.0" and r["results"]["steps"] == w7["atoms"]
                   for r in sqlite_rounds)
    w6 = doc["w6"]
    levels = w6["threads"]["memory"]["results"]["W6"]
    assert sorted(levels, key=int) == ["1", "2", "4", "8", "16"]
    for n, level in levels.items():
        assert level["runs"][0]["flows"] == int(n) and level["atoms_per_s"] > 0
    shared = w6["processes"]["sqlite"]
    assert shared["failures"] == [] and shared["processes"] == 4
    assert shared["runs"][0]["flows"] == 16 and shared["atoms_per_s"] > 0
    assert {"errors", "lock_errors", "error_lines"} <= set(shared)
    text = report.read_text()
    for heading in ("## W7: per-atom checkpoint", "## W6: concurrent flows",
                    "floor + history entry", "the floor recording a history entry",
                    "W7 per atom ≤ 5× one-commit floor", "W6 4 processes × 4 flows"):
        assert heading in text
    assert "## Key ratios" not in text  # W1-W5 were not run
    if dbos_missing:
        unavailable(f"DBOS peer not measured: {dbos_missing}")
    assert "W7 per atom ≥ 20× faster than DBOS per step | sqlite | –" not in text


def test_unknown_phase_is_a_usage_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "bench", "--only", "w6,w9",
                           "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown phase(s) w9 in --only; known: w7, w6, main" in done.stderr


def test_w7_measures_every_durability_mode_storage_offers(tmp_path, monkeypatch):
    """With a Storage that takes ``at_most_once``, a W7 round times both modes and
    passes the keyword through (in-process, on memory)."""
    import persistence.storage
    from bench import adapters, checkpoint

    seen = []

    class Storage(persistence.storage.Storage):
        def __init__(self, *args, at_most_once: bool = False, **kwargs):
            seen.append(at_most_once)
            super().__init__(*args, **kwargs)

    api = adapters.load("persistence")
    backend = api.open_backend({"connection": "memory"})
    try:
        assert checkpoint.modes() in (("default",), ("default", "at_most_once"))
        monkeypatch.setattr(persistence.storage, "Storage", Storage)
        assert checkpoint.modes() == ("default", "at_most_once")
        got = checkpoint.run_round(api, backend, "memory", {"connection": "memory"}, 5, 1,
                                   rep=2, workdir=str(tmp_path))
    finally:
        backend.close()
    assert got["order"] == ["at_most_once", "floor", "default"]
    assert seen == [True, False]
    for mode in ("default", "at_most_once"):
        assert got[mode]["atoms"] == 5 and got[mode]["per_atom_s"] > 0
    assert got["floor"]["what"] == "json.dumps"


def test_payload_bench_quick_run_reports_every_stage():
    done = subprocess.run([sys.executable, "-m", "bench.payload", "--quick", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(done.stdout)
    assert {"serialize msgpack", "compress zstd", "encrypt aes-gcm", "offload dir",
            "whole pipeline"} <= set(doc["stages"])
    assert all(set(sizes) == {"1KB", "100KB"} for sizes in doc["stages"].values())
    assert {"Storage.save memory://, bare", "Storage.save memory://, default pipeline"} \
        <= set(doc["default"])
