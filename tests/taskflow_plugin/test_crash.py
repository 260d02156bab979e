"""A TaskFlow engine SIGKILLed mid-flow resumes through the plugin, re-running nothing
that finished.

A real child interpreter (``_crash_child.py``, plain TaskFlow code) runs a
six-task flow with ``taskflow.engines.load(flow, backend=conf, book=book)``;
once three tasks have finished it blocks in the fourth and is killed with
SIGKILL.  A fresh interpreter loads the logbook through TaskFlow's ``fetch()``
and resumes with ``taskflow.engines.load(flow, flow_detail=..., book=...,
backend=conf)``.  Each task execution leaves a line in a file, so the test
counts them: the three finished tasks ran once, the one killed while running
twice, the rest once.

Every backend but memory: a memory store lives and dies with its process, so
there is no second process to resume in.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from persistence import states
from tests.taskflow_plugin.conftest import PLUGIN_BACKENDS

CHILD = Path(__file__).with_name("_crash_child.py")
RESULTS = {"seed": 100, "v1": 101, "v2": 103, "v3": 104, "v4": 211, "v5": 216, "v6": 222}


def _child(mode: str, conf: dict, workdir: Path, book_uuid: str) -> list[str]:
    return [sys.executable, str(CHILD), mode, json.dumps(conf), str(workdir), book_uuid]


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child exited ({proc.returncode}) before {path.name}: "
                                 f"{proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"child did not reach {path.name} in {timeout} s")
        time.sleep(0.02)


def _states(plugin_store, book_uuid: str) -> dict[str, str]:
    with contextlib.closing(plugin_store.backend.get_connection()) as conn:
        (flow,) = list(conn.get_logbook(book_uuid))
        return {ad.name: ad.state for ad in flow}


@pytest.mark.parametrize("plugin_store", [b for b in PLUGIN_BACKENDS if b != "memory"],
                         indirect=True)
def test_killed_engine_resumes_without_rerunning_finished_tasks(plugin_store, tmp_path):
    book_uuid = str(uuid.uuid4())
    first = subprocess.Popen(_child("run", plugin_store.conf, tmp_path, book_uuid),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(tmp_path / "blocked", first)
        before = _states(plugin_store, book_uuid)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL
    assert {n: before[n] for n in ("s1", "s2", "s3", "s4", "s5", "s6")} == {
        "s1": states.SUCCESS, "s2": states.SUCCESS, "s3": states.SUCCESS,
        "s4": states.RUNNING, "s5": states.PENDING, "s6": states.PENDING}

    (tmp_path / "release").touch()
    second = subprocess.run(_child("resume", plugin_store.conf, tmp_path, book_uuid),
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == RESULTS

    executions = Counter((tmp_path / "executions").read_text().split())
    assert executions == {"s1": 1, "s2": 1, "s3": 1, "s4": 2, "s5": 1, "s6": 1}
    after = _states(plugin_store, book_uuid)
    assert all(after[f"s{i}"] == states.SUCCESS for i in range(1, 7)), after
