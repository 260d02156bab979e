"""Persistence of workflow run-time state: logbooks, flow details and atom details
in pluggable backends, so a run that dies on one machine can resume on another.

Public names mirror TaskFlow's ``taskflow.persistence`` so its users can switch
by changing imports.
"""

from . import exceptions, models, states, telemetry
from .backends.base import Backend, Connection
from .backends.registry import available_backends, backend, fetch
from .backends.url import BackendURL, make_url
from .models.failure import Failure
from .models.records import AtomDetail, FlowDetail, LogBook, RetryDetail, TaskDetail
from .runtime.storage import Storage

__all__ = [
    "fetch", "backend", "available_backends",
    "Backend", "Connection",
    "LogBook", "FlowDetail", "AtomDetail", "TaskDetail", "RetryDetail",
    "Failure", "BackendURL", "make_url", "Storage",
    "exceptions", "models", "states",
]

__version__ = "0.1.0"

# Storage transitions as spans (a no-op without the otel extra or a tracer provider).
telemetry.instrument(Storage, telemetry.STORAGE_TRANSITIONS, storage=True)
