"""The reference engine and ``persistence demo``: a real SIGKILL, then a resume.

The crash tests use durable backends only (dir, and sqlite once the SQL
backend is installed): the memory backend does not outlive a process.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest

import persistence
from persistence import models, states
from persistence.atom import Task
from persistence.exceptions import NotFound
from persistence.tools import demo
from persistence.tools.cli import app as cli
from persistence.tools.engine import RAN, SKIPPED, Engine, plan
from tests.conftest import unavailable

ORDER = ["generate", "square", "total", "split", "left", "right", "join"]


def _sqlite_available() -> bool:
    try:
        from persistence.backends.sql import SQLAlchemyBackend  # noqa: F401
    except (ImportError, AttributeError):
        return False
    return True


def _uri(kind: str, tmp_path) -> str:
    if kind == "sqlite":
        if not _sqlite_available():
            unavailable("the SQL backend (persistence.backends.sql) is not installed")
        return f"sqlite:///{tmp_path / 'demo.db'}"
    return f"file://{tmp_path / 'store'}"


def _stored_flow(uri: str, flow_uuid: str) -> models.FlowDetail:
    with persistence.backend(uri) as be, contextlib.closing(be.get_connection()) as conn:
        return conn.get_flow_details(flow_uuid)


# -- the crash and the resume ---------------------------------------------------

@pytest.mark.parametrize("kind, crash_after", [("dir", 0), ("dir", 3), ("dir", 6),
                                               ("sqlite", 3)])
def test_sigkilled_run_resumes_without_reexecuting_finished_tasks(kind, crash_after, tmp_path):
    durable_uri = _uri(kind, tmp_path)
    lines: list[str] = []
    report = demo.run_demo(durable_uri, crash_after, out=lines.append)

    assert report.crash_returncode == -9                 # a real SIGKILL, not an exception
    assert report.crash_pid != report.resume_pid
    assert [r.name for r in report.rows] == ORDER
    assert report.skipped == ORDER[:crash_after]
    assert report.ran == ORDER[crash_after:]
    assert report.reexecuted_finished == []
    executions = {r.name: r.executions for r in report.rows}
    interrupted = ORDER[crash_after]                     # killed mid-execution: runs again
    assert executions == {name: 2 if name == interrupted else 1 for name in ORDER}
    assert {r.name: r.stored_after_crash for r in report.rows} == {
        name: (states.SUCCESS if i < crash_after else
               states.RUNNING if i == crash_after else states.PENDING)
        for i, name in enumerate(ORDER)}
    assert report.identical
    assert any("SIGKILL" in line for line in lines)

    stored = _stored_flow(durable_uri, report.flow)      # what the backend holds now
    assert stored.state == states.SUCCESS
    results = {ad.name: ad.results for ad in stored}
    assert results.pop("_TaskFlow_INJECTOR") == {"count": demo.COUNT}
    assert results == {r.name: r.uninterrupted for r in report.rows}


def test_cli_demo_prints_the_table(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "persistence", "demo", "--backend", f"file://{tmp_path}/s",
         "--crash-after", "2"], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "skipped (stored)" in out.stdout
    assert "re-ran (was RUNNING)" in out.stdout
    assert "2 task(s) skipped because their results were already stored, 5 ran" in out.stdout
    assert "finished tasks executed again: 0" in out.stdout
    assert "Final results identical to an uninterrupted run: yes" in out.stdout


def test_cli_demo_defaults_to_sqlite_in_the_current_directory(tmp_path):
    if not _sqlite_available():
        unavailable("the SQL backend (persistence.backends.sql) is not installed")
    out = subprocess.run([sys.executable, "-m", "persistence", "demo"], capture_output=True,
                         text=True, timeout=180, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "persistence-demo.db").exists()
    assert "identical to an uninterrupted run: yes" in out.stdout


def test_cli_demo_without_rich_prints_a_plain_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "rich", None)
    assert cli.main(["demo", "--backend", f"file://{tmp_path}/s", "--crash-after", "5"]) == 0
    text = capsys.readouterr().out
    assert "task      after kill  resumed run" in text
    assert "right     RUNNING     re-ran (was RUNNING)  2" in text


def test_cli_rejects_a_crash_point_outside_the_flow(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["demo", "--crash-after", "7"])
    assert exit_.value.code == 2
    assert "from 0 to 6" in capsys.readouterr().err
    with pytest.raises(ValueError):
        demo.run_demo("memory://", 7)


def test_cli_reports_backend_errors_without_a_traceback(capsys):
    assert cli.main(["demo", "--backend", "nosuch://x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("persistence demo: error:") and "Traceback" not in err


def test_python_dash_m_persistence_needs_a_command():
    out = subprocess.run([sys.executable, "-m", "persistence"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "COMMAND" in out.stderr


# -- the engine -----------------------------------------------------------------

class Fn(Task):
    def __init__(self, name, fn, **kwargs):
        super().__init__(name, **kwargs)
        self.fn = fn
        self.calls = 0

    def execute(self, **args):
        self.calls += 1
        return self.fn(**args)


def test_plan_orders_a_diamond_and_rejects_cycles():
    order, preds = plan(demo.build_flow())
    assert [t.name for t in order] == ORDER
    assert preds["join"] == ["left", "right"]
    with pytest.raises(ValueError, match="cycle"):
        plan([Task("a", requires="y", provides="x"), Task("b", requires="x", provides="y")])


def test_engine_scope_is_predecessors_nearest_first():
    engine = Engine(demo.build_flow(), models.FlowDetail("f", "f"), policy="never")
    assert engine.scope_of("join") == [["left", "right"], ["split"], ["total"], ["square"],
                                       ["generate"]]
    assert engine.scope_of("generate") == []


def test_engine_uses_scope_to_pick_between_providers():
    def tasks():
        return [Fn("a", lambda: "A", provides="x"), Fn("b", lambda: "B", provides="x"),
                Fn("use", lambda x: x, requires="x", provides="out")]

    engine = Engine(tasks(), models.FlowDetail("f", "f"), policy="never")
    assert engine.scope_of("use") == [["a", "b"]]        # one level: its order decides
    assert {o.name: o.result for o in engine.run()}["use"] == "A"
    engine = Engine(tasks(), models.FlowDetail("f", "f"), policy="never")
    engine.predecessors["use"] = ["b"]                   # now only b is visible to it
    assert {o.name: o.result for o in engine.run()}["use"] == "B"


def test_engine_records_a_failure_and_a_rerun_runs_only_what_is_left(backend):
    flow = models.FlowDetail("f", "f-1")
    book = models.LogBook("b")
    book.add(flow)
    with contextlib.closing(backend.get_connection()) as conn:
        conn.save_logbook(book)
    broken = {"on": True}

    def flaky(x):
        if broken["on"]:
            raise RuntimeError("flaky")
        return x + 1

    tasks = [Fn("one", lambda: 1, provides="x"), Fn("two", flaky, requires="x", provides="y")]
    engine = Engine(tasks, flow, backend)
    with pytest.raises(RuntimeError, match="flaky"):
        engine.run()
    assert engine.storage.get_flow_state() == states.FAILURE
    assert engine.storage.get_execute_failures()["two"].check(RuntimeError)
    broken["on"] = False
    with contextlib.closing(backend.get_connection()) as conn:
        again = Engine(tasks, conn.get_flow_details("f-1"), backend)
    outcomes = again.run()
    assert [(o.name, o.action, o.result) for o in outcomes] == [("one", SKIPPED, 1),
                                                                ("two", RAN, 2)]
    assert [t.calls for t in tasks] == [1, 2]
    assert again.storage.get_flow_state() == states.SUCCESS
    assert [o.action for o in Engine(tasks, again.storage.flow_detail, backend).run()] == [
        SKIPPED, SKIPPED]


def test_engine_refuses_to_start_with_an_unsatisfied_argument():
    tasks = [Fn("one", lambda: 1, provides="x"), Fn("two", lambda z: z, requires="z")]
    engine = Engine(tasks, models.FlowDetail("f", "f"), policy="never")
    with pytest.raises(NotFound, match="'two' needs z"):
        engine.run()
    assert tasks[0].calls == 0


def test_engine_injects_atom_values_persistently():
    task = Fn("one", lambda limit: limit * 2, requires="limit", inject={"limit": 4},
              provides="out")
    engine = Engine([task], models.FlowDetail("f", "f"), policy="never")
    assert [o.result for o in engine.run()] == [8]
    assert engine.storage.flow_detail.find(engine.storage.get_atom_uuid("one")).meta[
        "injected"] == {"limit": 4}


def test_child_needs_the_backend_in_its_environment(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != demo.ENV_BACKEND}
    out = subprocess.run([sys.executable, "-m", "persistence.tools.demo", "--flow", "x",
                          "--journal", str(tmp_path / "j"), "--report", str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode != 0
