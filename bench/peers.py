"""The peers' virtualenvs: TaskFlow 6.5.0 (W1–W5) and DBOS Transact 3.4.0 (W7).

Each peer runs under its own interpreter, in a git-ignored virtualenv beside
this file, created on first use from its pinned requirements file and reused
while a probe confirms the pinned version imports with its drivers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

__all__ = ["taskflow_python", "dbos_python", "TASKFLOW_VERSION", "DBOS_VERSION"]

HERE = os.path.dirname(os.path.abspath(__file__))
TASKFLOW_VERSION = "6.5.0"
DBOS_VERSION = "3.4.0"


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _venv_python(name: str, package: str, version: str, imports: str,
                 requirements: str) -> tuple[str | None, str | None]:
    """(interpreter, None) of ``bench/.venv-<name>`` with ``package==version``, creating
    it if needed; (None, reason) if it cannot be had."""
    venv = os.path.join(HERE, f".venv-{name}")
    python = os.path.join(venv, "bin", "python")
    probe = [python, "-c", f"import importlib.metadata as m, {imports}; "
             f"print(m.version({package!r}))"]

    def ready() -> bool:
        if not os.path.exists(python):
            return False
        done = subprocess.run(probe, capture_output=True, text=True)
        return done.returncode == 0 and done.stdout.strip() == version

    if ready():
        return python, None
    _log(f"creating {venv} with {package}=={version} (one-off)")
    steps = [[sys.executable, "-m", "venv", venv],
             [python, "-m", "pip", "install", "-q", "-r", os.path.join(HERE, requirements)]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
            return None, f"cannot set up the {package} virtualenv: {tail[0][:200]}"
    return (python, None) if ready() else (None, f"{package} virtualenv incomplete after install")


def taskflow_python() -> tuple[str | None, str | None]:
    """The TaskFlow 6.5.0 interpreter (``bench/.venv-taskflow``), or why there is none."""
    return _venv_python("taskflow", "taskflow", TASKFLOW_VERSION,
                        "taskflow.storage, sqlalchemy, psycopg2, pymysql, kazoo, alembic",
                        "requirements-taskflow.txt")


def dbos_python() -> tuple[str | None, str | None]:
    """The DBOS Transact 3.4.0 interpreter (``bench/.venv-dbos``), or why there is none."""
    return _venv_python("dbos", "dbos", DBOS_VERSION, "dbos, psycopg",
                        "requirements-dbos.txt")
