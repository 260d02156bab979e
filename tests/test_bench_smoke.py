"""The benchmark harness still runs end to end (tiny sizes, memory and dir).

No timing is asserted: speed is measured by ``python -m bench``, not by tests.
This only keeps the harness from rotting as the library changes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
