"""TaskFlow plugin: TaskFlow engines keep their state in persistence's backends.

A TaskFlow application keeps its code and changes only its persistence
configuration::

    backend = taskflow.persistence.backends.fetch(
        {"connection": "persistence+postgresql://host/db"})

TaskFlow's ``fetch()`` looks the scheme up before its ``+`` (``persistence``)
in the entry-point group ``taskflow.persistence`` and builds
:class:`TaskFlowBackend`, which strips ``persistence+``, builds the backend
with :func:`persistence.fetch` and converts TaskFlow's model objects to ours
and back at the connection boundary (:mod:`.convert`).  Errors reach TaskFlow
as TaskFlow's own exception classes, ours kept as the cause (:mod:`.errors`).

Only this subpackage imports TaskFlow; without it installed importing it
raises :class:`~persistence.exceptions.MissingDependency`.
"""

from __future__ import annotations

from ...exceptions import MissingDependency

try:
    import taskflow.persistence.base  # noqa: F401
except ImportError as err:
    raise MissingDependency(
        f"the TaskFlow plugin needs TaskFlow ({err}): "
        f"pip install 'persistence[taskflow]'") from err

from .backend import PREFIX, TaskFlowBackend, inner_configuration  # noqa: E402
from .connection import TaskFlowConnection  # noqa: E402

__all__ = ["TaskFlowBackend", "TaskFlowConnection", "PREFIX", "inner_configuration"]
