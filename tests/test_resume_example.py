"""examples/resume_on_another_host.py does what doc/resuming.rst says, in real processes.

Both "hosts" are processes on this machine sharing a sqlite file (the
two-host test does the same over a network): the first run is SIGKILLed once
two tasks have finished; a second, started at once, waits for the dead
run's claim to expire, takes the flow over and skips the stored tasks; a
third run on the finished flow skips everything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import persistence

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "resume_on_another_host.py"


def _cmd(*args: str) -> list[str]:
    return [sys.executable, str(SCRIPT), *args]


def test_killed_run_is_taken_over_and_resumed(tmp_path):
    uri = f"sqlite:///{tmp_path}/flows.db"
    env = dict(os.environ, PERSISTENCE_URI=uri)
    flow = subprocess.run(_cmd("new"), env=env, capture_output=True, text=True, timeout=120,
                          check=True).stdout.strip()

    first = subprocess.Popen(_cmd("run", flow, "--ttl", "1", "--pause", "0.2"), env=env,
                             stdout=subprocess.PIPE, text=True)
    finished = []
    for line in first.stdout:
        finished.append(line.split("=")[0].strip())
        if len(finished) == 2:
            first.send_signal(signal.SIGKILL)
            break
    first.wait(timeout=60)
    first.stdout.close()
    assert first.returncode == -signal.SIGKILL and finished == ["generate", "square"]

    second = subprocess.run(_cmd("run", flow, "--ttl", "1", "--pause", "0"), env=env,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "took the flow over from" in second.stdout
    assert "skipped (stored before): generate, square" in second.stdout

    again = subprocess.run(_cmd("run", flow, "--pause", "0"), env=env, capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0 and "took the flow over" not in again.stdout
    assert "skipped (stored before): generate, square, total, split, left, right, join" \
        in again.stdout
    with persistence.backend(uri) as be, be.get_connection() as conn:
        results = {ad.name: ad.results for ad in conn.get_flow_details(flow)}
        assert results["join"] == {"left": 36, "right": 38, "sum": 74}
        assert conn.get_claim(flow) is None           # released at the end


def test_a_flow_another_engine_runs_is_refused(tmp_path):
    uri = f"sqlite:///{tmp_path}/flows.db"
    env = dict(os.environ, PERSISTENCE_URI=uri)
    flow = subprocess.run(_cmd("new"), env=env, capture_output=True, text=True, timeout=120,
                          check=True).stdout.strip()
    with persistence.backend(uri) as be, be.get_connection() as conn:
        conn.claim_flow(flow, "engine elsewhere", 120)
        refused = subprocess.run(_cmd("run", flow, "--wait", "0"), env=env,
                                 capture_output=True, text=True, timeout=120)
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert "engine elsewhere" in refused.stdout
        # Nothing ran: the refused engine did not even add its tasks' atom details.
        assert [ad.name for ad in conn.get_flow_details(flow)] == ["_TaskFlow_INJECTOR"]
