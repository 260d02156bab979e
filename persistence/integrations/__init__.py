"""Adapters that let other systems keep their state in persistence's backends.

:mod:`persistence.integrations.taskflow` publishes every backend to TaskFlow
(entry-point group ``taskflow.persistence``, name ``persistence``), so a
TaskFlow application switches by changing only its connection string.
"""
