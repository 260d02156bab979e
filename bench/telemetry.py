"""``python -m bench.telemetry``: what the otel instrumentation costs per operation.

Times ``Storage.save`` (one atom result, one backend write) on the memory
backend, the cheapest there is, so the instrumentation's share is as large as
it can be, in four modes:

``bare``          the unwrapped functions (what the code would cost with no hooks)
``no extra``      OpenTelemetry not importable (a child process that blocks it)
``tracing off``   OpenTelemetry installed, no tracer or meter provider configured
``tracing on``    SDK tracer and meter providers (spans to a no-op processor)

Prints a table (microseconds per save, best of ``--repeat`` rounds) and, with
``--json``, the figures.  ``--quick``: few iterations (a smoke run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

CHILD = """
import sys, json
sys.modules["opentelemetry"] = None
from bench.telemetry import measure
print(json.dumps(measure({n}, {repeat})))
"""


def _flow() -> tuple[Any, Any]:
    import persistence
    from persistence.atom import Task
    from persistence.models import FlowDetail, LogBook
    from persistence.storage import Storage

    be = persistence.fetch("memory://")
    book, flow = LogBook("bench"), FlowDetail("bench")
    book.add(flow)
    with be.get_connection() as conn:
        conn.save_logbook(book)
    storage = Storage(flow, be)
    storage.ensure_atoms([Task("t", provides="v")])
    return be, storage


def measure(n: int, repeat: int) -> float:
    """Best time per ``Storage.save`` over ``repeat`` rounds of ``n`` saves (µs)."""
    _, storage = _flow()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for i in range(n):
            storage.save("t", i)
        best = min(best, (time.perf_counter() - start) / n)
    storage.close()
    return best * 1e6


def _bare(n: int, repeat: int) -> float:
    """The same with every instrumented function swapped for the one it wraps."""
    from persistence import storage as storage_module
    from persistence.base import Connection

    swapped: list[tuple[type, str, Any]] = []

    def unwrap(cls: type) -> None:
        for name, value in list(vars(cls).items()):
            inner = getattr(value, "__wrapped__", None)
            if inner is not None and getattr(value, "__persistence_instrumented__", False):
                swapped.append((cls, name, value))
                setattr(cls, name, inner)

    classes = [storage_module.Storage]
    todo = [Connection]
    while todo:
        cls = todo.pop()
        classes.append(cls)
        todo.extend(cls.__subclasses__())
    for cls in classes:
        unwrap(cls)
    try:
        return measure(n, repeat)
    finally:
        for cls, name, value in swapped:
            setattr(cls, name, value)


def _tracing_on(n: int, repeat: int) -> float:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    from persistence import telemetry

    telemetry.configure(TracerProvider(), MeterProvider())
    try:
        return measure(n, repeat)
    finally:
        telemetry.configure()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.telemetry")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few iterations")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    n = 200 if args.quick else 20_000
    repeat = 2 if args.quick else args.repeat
    child = subprocess.run([sys.executable, "-c", CHILD.format(n=n, repeat=repeat)],
                           capture_output=True, text=True, check=True)
    figures = {"bare": _bare(n, repeat), "no extra": json.loads(child.stdout)}
    try:
        import opentelemetry.trace  # noqa: F401 - the application uses OpenTelemetry...
    except ImportError:
        pass
    figures["tracing off"] = measure(n, repeat)   # ...but has set no provider
    try:
        figures["tracing on"] = _tracing_on(n, repeat)
    except ImportError:
        figures["tracing on"] = None   # the SDK is not installed
    if args.json:
        print(json.dumps({"us_per_save": figures, "saves": n, "repeat": repeat}))
        return 0
    print(f"Storage.save on memory://, best of {repeat} x {n} (µs per save)")
    for mode, us in figures.items():
        extra = "" if us is None or mode == "bare" else \
            f"  ({us - figures['bare']:+.2f} µs vs bare)"
        print(f"  {mode:<12} {'-' if us is None else f'{us:8.2f}'}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
