"""The demo flow, SIGKILLed in one kind of engine and resumed by the other.

The asyncio reference engine (``examples/asyncio_engine.py``) and the sync
demo engine (``python -m persistence.tools.demo``, the reference
:class:`~persistence.tools.engine.Engine`) take the same arguments and keep
the same journal.  One runs the demo flow and kills itself (SIGKILL) in the
middle of the fourth task; a fresh process of the other kind resumes the
same flow: the three finished tasks are skipped, the killed one runs again,
the rest run once, and the answers equal an uninterrupted run's.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys

import pytest

from persistence.tools import demo

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "examples", "asyncio_engine.py")
SYNC = [sys.executable, "-m", "persistence.tools.demo"]
ASYNC = [sys.executable, EXAMPLE]
CRASH_AFTER = 3


def _run(cmd: list[str], uri: str, flow_uuid: str, journal: str, report: str,
         crash_after: int | None = None) -> subprocess.CompletedProcess:
    args = [*cmd, "--flow", flow_uuid, "--journal", journal, "--report", report]
    if crash_after is not None:
        args += ["--crash-after", str(crash_after)]
    # The sync demo child reads its own variable, the example the CLI's.
    env = dict(os.environ, **{demo.ENV_BACKEND: uri, "PERSISTENCE_URI": uri})
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture(params=["sqlite", "postgresql"])
def uri(request, tmp_path, sql_database_factory):
    return (f"sqlite:///{tmp_path}/demo.db" if request.param == "sqlite"
            else sql_database_factory("postgresql"))


@pytest.mark.parametrize("first, second", [(ASYNC, SYNC), (SYNC, ASYNC)],
                         ids=["asyncio-killed-sync-resumes", "sync-killed-asyncio-resumes"])
def test_the_demo_flow_resumes_across_engine_kinds(uri, tmp_path, first, second):
    _, flow_uuid = demo._create_flow(uri)
    journal, report = str(tmp_path / "journal"), str(tmp_path / "report.json")
    killed = _run(first, uri, flow_uuid, journal, report, CRASH_AFTER)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    resumed = _run(second, uri, flow_uuid, journal, report)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    with open(report, encoding="utf-8") as fh:
        outcomes = json.load(fh)
    with open(journal, encoding="utf-8") as fh:
        runs = collections.Counter(line.split()[0] for line in fh if line.strip())
    names = [t.name for t in demo.build_flow()]
    assert [o["action"] for o in outcomes] == ["skipped"] * CRASH_AFTER + \
        ["ran"] * (len(names) - CRASH_AFTER)
    # The killed task ran twice (once cut short), every other task once.
    assert runs == {name: 2 if i == CRASH_AFTER else 1 for i, name in enumerate(names)}
    assert {o["name"]: o["result"] for o in outcomes} == demo._reference_results()
