"""The otel extra: spans and metrics, checked with the SDK's in-memory exporters.

Providers are handed to ``telemetry.configure`` (not set globally), so the rest of
the test session records nothing.
"""

from __future__ import annotations

import json
import pathlib
import sqlite3
import subprocess
import sys
import time

import pytest

import persistence
from persistence import states, telemetry
from persistence.atom import Task
from persistence.exceptions import Conflict, StorageFailure
from persistence.models import FlowDetail, LogBook
from persistence.storage import Storage
from persistence.tools import demo
from persistence.tools.engine import Engine

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
SECRET_VALUE = "result-only-the-user-may-see"
PASSWORD = "pw-s3cret"


@pytest.fixture
def otel():
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = sdk_trace.TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry.configure(tracer_provider, MeterProvider(metric_readers=[reader]))
    try:
        yield spans, reader
    finally:
        telemetry.configure()


def _metrics(reader) -> dict[str, list]:
    found: dict[str, list] = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                found[metric.name] = list(metric.data.data_points)
    return found


def _total(points) -> float:
    return sum(getattr(p, "value", None) or getattr(p, "count", 0) for p in points)


def test_a_demo_run_yields_the_expected_span_tree(otel, tmp_path):
    spans, reader = otel
    uri = f"sqlite:///{tmp_path}/demo.db"
    _, flow_uuid = demo._create_flow(uri)
    spans.clear()
    with persistence.backend(uri) as be:
        with be.get_connection() as conn:
            flow = conn.get_flow_details(flow_uuid)
        engine = Engine(demo.build_flow(), flow, be)
        engine.run()
        engine.storage.close()
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}

    def parent(span):
        return by_id.get(span.parent.span_id) if span.parent else None

    saves = [s for s in finished if s.name == "persistence.storage.save"]
    assert sorted(s.attributes["persistence.atom"] for s in saves) == sorted(
        t.name for t in demo.build_flow())
    for save in saves:
        children = [s for s in finished if parent(s) is save]
        assert [c.name for c in children] == ["persistence.backend.update_atom_details"]
        child = children[0].attributes
        assert child["persistence.backend"] == "sqlite" and child["persistence.records"] == 1
        assert child["persistence.bytes"] > 0 and child["persistence.conflicts"] == 0
        assert save.attributes["persistence.flow"] == flow_uuid
    flow_states = [s for s in finished if s.name == "persistence.storage.set_flow_state"]
    assert flow_states and all(
        [c.name for c in finished if parent(c) is s] == [
            "persistence.backend.update_flow_details"] for s in flow_states)
    # Besides what the test itself called, every backend span of the run hangs below a
    # Storage transition (none is orphaned).
    orphans = sorted(s.name for s in finished if s.name.startswith("persistence.backend.")
                     and parent(s) is None)
    assert orphans == ["persistence.backend.get_flow_details",
                       "persistence.backend.upgrade"], orphans
    writes = _metrics(reader)["persistence.write.duration"]
    operations = {p.attributes["persistence.operation"]: p.count for p in writes}
    assert operations["update_atom_details"] >= len(saves)        # the results
    assert operations["update_atom_details_nowait"] >= len(saves)  # RUNNING marks


def test_conflicts_takeovers_offloads_and_retries_are_counted(otel, tmp_path):
    spans, reader = otel
    uri = f"sqlite:///{tmp_path}/flows.db?max_inline_size=1024&chunk_size=512"
    book, flow = LogBook("b"), FlowDetail("f")
    book.add(flow)
    with persistence.backend(uri) as be:
        with be.get_connection() as conn:
            conn.save_logbook(book)
            stale = conn.get_flow_details(flow.uuid)
            fresh = conn.get_flow_details(flow.uuid)
            fresh.state = states.RUNNING
            conn.update_flow_details(fresh)
            stale.state = states.FAILURE
            with pytest.raises(Conflict):
                conn.update_flow_details(stale)
            conn.claim_flow(flow.uuid, "host-a:1", ttl=0.05)
            time.sleep(0.1)
            claim = conn.claim_flow(flow.uuid, "host-b:2", ttl=5)
            assert claim.taken_over_from == "host-a:1"
            current = conn.get_flow_details(flow.uuid)
        storage = Storage(current, be)
        storage.ensure_atoms([Task("big", provides="blob")])
        storage.save("big", "x" * 5000)                    # too large for one row: chunks
        storage.close()
    refused = [s for s in spans.get_finished_spans()
               if s.attributes.get("persistence.conflicts") == 1]
    assert [s.name for s in refused] == ["persistence.backend.update_flow_details"]
    assert refused[0].attributes["error.type"] == "Conflict"
    found = _metrics(reader)
    assert _total(found["persistence.conflicts"]) == 1
    assert _total(found["persistence.claim.takeovers"]) == 1
    assert _total(found["persistence.offloaded.bytes"]) >= 5000

    # A database another process keeps locked: each retry is counted, on the span too.
    path = tmp_path / "locked.db"
    locked = f"sqlite:///{path}?busy_timeout=0.01&retry_attempts=3&retry_backoff=0.001"
    with persistence.backend(locked) as be, be.get_connection() as conn:
        holder = sqlite3.connect(path)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(StorageFailure):
                conn.save_logbook(LogBook("blocked"))
        finally:
            holder.rollback()
            holder.close()
    blocked = [s for s in spans.get_finished_spans()
               if s.name == "persistence.backend.save_logbook" and
               s.attributes.get("persistence.retries")]
    assert blocked and blocked[-1].attributes["persistence.retries"] == 3
    assert _total(_metrics(reader)["persistence.retries"]) >= 3


def test_spans_carry_no_values_and_no_credentials(otel, tmp_path):
    spans, _ = otel
    uri = f"postgresql://bob:{PASSWORD}@127.0.0.1:1/db?connect_timeout=1&retry_attempts=0"
    with pytest.raises(StorageFailure):
        with persistence.backend(uri):
            pass
    book, flow = LogBook("b"), FlowDetail("f")
    book.add(flow)
    with persistence.backend(f"file://{tmp_path}/store") as be:
        with be.get_connection() as conn:
            conn.save_logbook(book)
        storage = Storage(flow, be)
        storage.ensure_atoms([Task("t", provides="v")])
        storage.inject({"token": SECRET_VALUE})
        storage.save("t", {"answer": SECRET_VALUE})
        storage.close()
    finished = spans.get_finished_spans()
    assert {s.attributes["persistence.backend"] for s in finished
            if "persistence.backend" in s.attributes} >= {"postgresql", "dir"}
    text = json.dumps([{**dict(s.attributes), "name": s.name,
                        "status": s.status.description, "events": [e.name for e in s.events]}
                       for s in finished])
    assert SECRET_VALUE not in text and PASSWORD not in text


def test_without_the_extra_or_a_provider_nothing_records():
    script = """
import sys
{block}
import persistence
from persistence import telemetry
from persistence.models import LogBook
with persistence.backend("memory://") as be, be.get_connection() as conn:
    conn.save_logbook(LogBook("b"))
print("opentelemetry" in sys.modules, telemetry.available(), telemetry.enabled())
"""
    blocked = "sys.modules['opentelemetry'] = None"
    # Blocked: not importable.  Installed but unused by the application: not even imported
    # by persistence until asked (available() imports it), and nothing records.
    for block, expected in ((blocked, "True False False"), ("", "False True False")):
        done = subprocess.run([sys.executable, "-c", script.format(block=block)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == expected.split()


def test_the_overhead_benchmark_runs():
    """Speed is measured by ``python -m bench.telemetry``, never asserted here."""
    done = subprocess.run([sys.executable, "-m", "bench.telemetry", "--quick", "--json"],
                          capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)["us_per_save"]
    assert set(figures) == {"bare", "no extra", "tracing off", "tracing on"}
    assert all(value > 0 for value in figures.values())
