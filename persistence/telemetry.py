"""OpenTelemetry spans and metrics for backend operations and Storage transitions.

Installed with the ``otel`` extra (``pip install 'persistence[otel]'``, the
OpenTelemetry API only); the application configures the SDK and exporters as
usual.  Every public operation of a backend connection becomes a span named
``persistence.backend.<operation>``, every Storage transition a span named
``persistence.storage.<method>`` (so a Storage call is the parent of the
backend writes it causes).  Span attributes:

=========================  =================================================================
``persistence.backend``    ``memory``, ``dir``, ``sqlite``, ``postgresql``, ``mysql``,
                           ``zookeeper`` (or the backend's class name)
``persistence.operation``  ``save_logbook``, ``update_atom_details``, ``save``…
``persistence.records``    logbooks + flow details + atom details written or read
``persistence.bytes``      encoded record bytes written (where the backend encodes)
``persistence.conflicts``  1 when the write was refused for a stale revision
``persistence.retries``    transient failures retried within the operation
``persistence.flow``       the flow detail's uuid (Storage spans)
``persistence.atom``       the atom a Storage transition is about (a name)
=========================  =================================================================

Never values, results, failures' messages or credentials: an error sets the
span's status and ``error.type`` (the exception class) only.

Metrics (meter ``persistence``): ``persistence.write.duration`` and
``persistence.read.duration`` (histograms, seconds), counters
``persistence.conflicts``, ``persistence.retries``,
``persistence.claim.takeovers`` and ``persistence.offloaded.bytes`` (values
moved to chunks because they were too large for one row or znode).

Cost: without the extra, or while no tracer or meter provider is set, an
instrumented call is one extra function call and a look at OpenTelemetry's
global state; an application that never imports OpenTelemetry does not even
load it (``python -m bench.telemetry`` measures this).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

# The OpenTelemetry API, bound once the application uses it: an application that never
# imports OpenTelemetry has set no provider, so it pays neither the import nor a check.
_trace: Any = None
_metrics: Any = None
# The API module holding the global meter provider (bound with _metrics).
_meter_state: Any = None
_modules = sys.modules

__all__ = ["configure", "available", "instrument", "enabled", "measuring", "add_bytes",
           "retried", "offloaded", "backend_name", "WRITES", "READS", "STORAGE_TRANSITIONS"]

NAME = "persistence"
#: Connection operations timed as writes and as reads.
WRITES = frozenset({"save_logbook", "update_flow_details", "update_atom_details",
                    "update_atom_details_nowait", "destroy_logbook", "clear_all", "upgrade",
                    "claim_flow", "renew_claim", "release_flow", "snapshot_flow",
                    "restore_flow", "fork_flow", "purge"})
READS = frozenset({"get_logbook", "get_flow_details", "get_atom_details", "get_claim",
                   "get_history", "list_snapshots", "get_snapshot", "summary", "count_atoms",
                   "list_logbooks", "count_logbooks", "list_flow_details", "validate"})
#: Storage methods that change run-time state (each one span).
STORAGE_TRANSITIONS = frozenset({
    "ensure_atoms", "save", "set_atom_state", "set_atom_intention", "reset",
    "save_retry_failure", "cleanup_retry_history", "inject", "inject_atom_args",
    "update_atom_metadata", "update_flow_metadata", "set_task_progress", "set_flow_state",
    "change_flow_state", "flush", "refresh"})
_ATOM_FIRST = frozenset({"save", "set_atom_state", "set_atom_intention", "reset",
                         "save_retry_failure", "cleanup_retry_history", "inject_atom_args",
                         "update_atom_metadata", "set_task_progress"})
_BACKENDS = {"MemoryBackend": "memory", "DirBackend": "dir", "ZkBackend": "zookeeper"}
_MARK = "__persistence_instrumented__"
# Providers named in the environment are built by the API's getters on first use.
_ENV_PROVIDERS = any(name in os.environ for name in ("OTEL_PYTHON_TRACER_PROVIDER",
                                                     "OTEL_PYTHON_METER_PROVIDER"))


class _Operation:
    """What the backend operation in progress has counted so far."""

    __slots__ = ("bytes", "retries")

    def __init__(self) -> None:
        self.bytes = 0
        self.retries = 0


_current: contextvars.ContextVar[_Operation | None] = contextvars.ContextVar(
    "persistence_operation", default=None)


class _Instruments:
    """The tracer and meter instruments of one pair of providers."""

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        self.tracer_provider, self.meter_provider = tracer_provider, meter_provider
        self.tracer = tracer_provider.get_tracer(NAME) if _real(tracer_provider) else None
        meter = meter_provider.get_meter(NAME) if _real(meter_provider) else None
        self.meter = meter
        if meter is not None:
            self.write = meter.create_histogram("persistence.write.duration", unit="s",
                                                description="backend write latency")
            self.read = meter.create_histogram("persistence.read.duration", unit="s",
                                               description="backend read latency")
            self.conflicts = meter.create_counter(
                "persistence.conflicts", description="writes refused for a stale revision")
            self.retries = meter.create_counter(
                "persistence.retries", description="transient failures retried")
            self.takeovers = meter.create_counter(
                "persistence.claim.takeovers", description="expired claims taken over")
            self.offloaded = meter.create_counter(
                "persistence.offloaded.bytes", unit="By",
                description="value bytes moved to chunks (too large for one row or znode)")


def _real(provider: Any) -> bool:
    """Whether ``provider`` was set by the application (not the API's proxy or no-op)."""
    name = type(provider).__name__.lstrip("_")
    return not name.startswith(("Proxy", "NoOp", "DefaultMeterProvider"))


_instruments: _Instruments | None = None
# Providers given to configure(), used instead of the global ones.
_providers: tuple[Any, Any] | None = None


def configure(tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Record persistence's spans and metrics with these providers rather than the
    global ones (OpenTelemetry's usual ``tracer_provider=`` option); ``configure()``
    goes back to the global providers."""
    global _providers, _instruments
    if not _load(force=True):
        raise ImportError("OpenTelemetry is not installed: pip install 'persistence[otel]'")
    if tracer_provider is None and meter_provider is None:
        _providers = None
    else:
        _providers = (tracer_provider or _trace.NoOpTracerProvider(),
                      meter_provider or _metrics.NoOpMeterProvider())
    _instruments = None


def _load(force: bool = False) -> bool:
    """Bind the OpenTelemetry API if the application has imported it (or ``force``)."""
    global _trace, _metrics, _meter_state
    if _trace is not None:
        return True
    if not (force or _ENV_PROVIDERS or "opentelemetry.trace" in _modules or
            "opentelemetry.metrics" in _modules):
        return False
    try:
        from opentelemetry import metrics, trace
    except ImportError:   # the otel extra is not installed: everything here is a no-op
        return False
    _meter_state = _modules.get("opentelemetry.metrics._internal")
    _trace, _metrics = trace, metrics
    return True


def available() -> bool:
    """Whether the OpenTelemetry API is installed (the ``otel`` extra)."""
    return _load(force=True)


def _unset() -> bool:
    """Whether no provider was set, neither given to :func:`configure` nor global (the
    API's own module state, read directly: its getters look at the environment on
    every call, too slow for every write).  Every instrumented call asks this first,
    so it costs a few lookups and no further call while nothing is set."""
    if _providers is not None or _ENV_PROVIDERS:
        return False
    if _trace is None:
        return not ("opentelemetry.trace" in _modules or "opentelemetry.metrics" in _modules
                    ) or not _load()
    return (getattr(_trace, "_TRACER_PROVIDER", False) is None and
            getattr(_meter_state, "_METER_PROVIDER", False) is None)


def _active() -> _Instruments | None:
    """The instruments, or None when nothing would record (the common, cheap case)."""
    global _instruments
    if _providers is not None:
        tracer_provider, meter_provider = _providers
    else:
        if _unset():
            return None
        tracer_provider = _trace.get_tracer_provider()
        meter_provider = _metrics.get_meter_provider()
    cached = _instruments
    if cached is None or cached.tracer_provider is not tracer_provider or \
            cached.meter_provider is not meter_provider:
        cached = _instruments = _Instruments(tracer_provider, meter_provider)
    if cached.tracer is None and cached.meter is None:
        return None
    return cached


def enabled() -> bool:
    """Whether spans or metrics are being recorded right now."""
    return _active() is not None


# -- what backends report from inside an operation ---------------------------------

def measuring() -> bool:
    """Whether an instrumented backend operation is in progress (worth counting bytes)."""
    return _current.get() is not None


def add_bytes(count: int) -> None:
    """Count ``count`` encoded bytes written by the operation in progress."""
    op = _current.get()
    if op is not None:
        op.bytes += count


def retried(backend: str) -> None:
    """A transient failure is being retried (SQL session, ZooKeeper writes)."""
    op = _current.get()
    if op is not None:
        op.retries += 1
    inst = _active()
    if inst is not None and inst.meter is not None:
        inst.retries.add(1, {"persistence.backend": backend})


def offloaded(backend: str, count: int) -> None:
    """``count`` bytes of values were moved to chunks."""
    inst = _active()
    if inst is not None and inst.meter is not None and count:
        inst.offloaded.add(count, {"persistence.backend": backend})


# -- wrapping ----------------------------------------------------------------------

def backend_name(backend: Any) -> str:
    """The short name spans and metrics use for ``backend`` (never its URL)."""
    dialect = getattr(backend, "dialect_name", None)
    if isinstance(dialect, str):
        return dialect
    name = type(backend).__name__
    return _BACKENDS.get(name, name)


def _records(value: Any) -> int:
    # Told apart by their public attributes: this module sits below every layer
    # (the models use it), so it cannot import them.
    if isinstance(value, (list, tuple)):
        return sum(_records(v) for v in value)
    if hasattr(value, "intention"):                       # an atom detail
        return 1
    if hasattr(value, "created_at"):                      # a logbook: its flows and atoms
        return 1 + sum(1 + len(fd) for fd in value)
    if hasattr(value, "state") and hasattr(value, "find"):  # a flow detail and its atoms
        return 1 + len(value)
    return 0


def _fail(span: Any, err: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", type(err).__name__)
    span.set_status(Status(StatusCode.ERROR, type(err).__name__))


def _span(inst: _Instruments, name: str, attrs: dict[str, Any]) -> Any:
    """A current span named ``name`` (a null context when only metrics record)."""
    if inst.tracer is None:
        return contextlib.nullcontext(None)
    return inst.tracer.start_as_current_span(name, attributes=attrs, record_exception=False,
                                             set_status_on_exception=False)


def _backend_call(inst: _Instruments, operation: str, fn: Callable, conn: Any,
                  args: tuple, kwargs: dict) -> Any:
    from .exceptions import Conflict

    backend = backend_name(conn.backend)
    attrs = {"persistence.backend": backend, "persistence.operation": operation}
    op = _Operation()
    with _span(inst, f"persistence.backend.{operation}", attrs) as span:
        token = _current.set(op)
        start = time.perf_counter()
        conflict = False
        try:
            result = fn(conn, *args, **kwargs)
            if operation == "claim_flow" and getattr(result, "taken_over_from", None) and \
                    inst.meter is not None:
                inst.takeovers.add(1, {"persistence.backend": backend})
            if span is not None:
                written = operation in WRITES and args
                span.set_attribute("persistence.records",
                                   _records(args[0]) if written else _records(result))
            return result
        except BaseException as err:
            conflict = isinstance(err, Conflict)
            if span is not None:
                _fail(span, err)
            raise
        finally:
            elapsed = time.perf_counter() - start
            _current.reset(token)
            if inst.meter is not None:
                (inst.write if operation in WRITES else inst.read).record(elapsed, attrs)
                if conflict:
                    inst.conflicts.add(1, {"persistence.backend": backend})
            if span is not None:
                span.set_attribute("persistence.bytes", op.bytes)
                span.set_attribute("persistence.retries", op.retries)
                span.set_attribute("persistence.conflicts", int(conflict))


def _storage_call(inst: _Instruments, operation: str, fn: Callable, storage: Any,
                  args: tuple, kwargs: dict) -> Any:
    if inst.tracer is None:
        return fn(storage, *args, **kwargs)
    attrs: dict[str, Any] = {"persistence.operation": operation,
                             "persistence.flow": storage.flow_uuid}
    if operation in _ATOM_FIRST and args and isinstance(args[0], str):
        attrs["persistence.atom"] = args[0]
    with _span(inst, f"persistence.storage.{operation}", attrs) as span:
        try:
            return fn(storage, *args, **kwargs)
        except BaseException as err:
            _fail(span, err)
            raise


def _wrap(fn: Callable, operation: str, call: Callable) -> Callable:
    @functools.wraps(fn)
    def instrumented(self: Any, *args: Any, **kwargs: Any) -> Any:
        # The usual case, nothing records: the OpenTelemetry API was never imported
        # (_unset()'s first answer, asked here without the call), or no provider is set.
        if (_trace is None and _providers is None and not _ENV_PROVIDERS
                and "opentelemetry.trace" not in _modules
                and "opentelemetry.metrics" not in _modules) or _unset():
            return fn(self, *args, **kwargs)
        inst = _active()
        if inst is None:
            return fn(self, *args, **kwargs)
        return call(inst, operation, fn, self, args, kwargs)
    setattr(instrumented, _MARK, True)
    return instrumented


def instrument(cls: type, operations: Iterable[str], storage: bool = False) -> None:
    """Wrap ``cls``'s ``operations`` (once: those a parent class already wrapped are
    left alone; those a mixin brings are wrapped here)."""
    call = _storage_call if storage else _backend_call
    for name in operations:
        fn = next((klass.__dict__[name] for klass in cls.__mro__ if name in klass.__dict__),
                  None)
        if inspect.isfunction(fn) and not getattr(fn, _MARK, False):
            setattr(cls, name, _wrap(fn, name, call))
