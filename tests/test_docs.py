"""The Sphinx documentation builds with warnings as errors, and its examples run.

``-b doctest`` runs every ``>>>`` example in ``doc/`` — the pages and the module
docstrings they pull in with autodoc — against the installed package.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from persistence.atom import Atom, History, Retry, Task
from persistence.storage import Storage

pytest.importorskip("sphinx", reason="sphinx is not installed (add it to the test extra)")

DOC = Path(__file__).resolve().parents[1] / "doc"


def _sphinx(builder: str, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q",
                           "-b", builder, "-d", str(out / "doctrees"), str(DOC),
                           str(out / builder)],
                          capture_output=True, text=True, timeout=600)


def test_html_builds_without_warnings(tmp_path):
    done = _sphinx("html", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    for page in ("index", "getting-started", "storage", "engine-loop", "history", "payloads",
                 "cli",
                 "observability",
                 "archive-and-migrate",
                 "writing-a-backend", "migrating-from-taskflow", "taskflow-plugin",
                 "migrating-taskflow-stores", "backends/index", "backends/sql", "backends/dir",
                 "backends/memory"):
        assert (tmp_path / "html" / f"{page}.html").exists(), page
    storage = (tmp_path / "html" / "storage.html").read_text()
    for name in _public(Storage):               # every method an engine author calls
        assert f'id="persistence.storage.Storage.{name}"' in storage, name
    for name in ("Task", "Retry", "Atom", "History", "is_retry"):
        assert f'id="persistence.atom.{name}"' in storage, name


def _public(cls: type) -> list[str]:
    return [name for name in dir(cls) if not name.startswith("_")]


def test_every_public_storage_and_atom_member_has_a_docstring():
    for cls in (Storage, Atom, Task, Retry, History):
        for name in _public(cls):
            member = inspect.getattr_static(cls, name)
            doc = getattr(member, "__doc__", None) if callable(member) or isinstance(
                member, property) else "data"
            assert doc and doc.strip(), f"{cls.__name__}.{name}"


def test_code_examples_pass_as_doctests(tmp_path):
    done = _sphinx("doctest", tmp_path)
    report = (tmp_path / "doctest" / "output.txt").read_text()
    assert done.returncode == 0, report[-5000:] + done.stderr[-3000:]
    summary = report[report.rindex("Doctest summary"):]
    tests = int(summary.split()[3])
    assert tests >= 60 and " 0 failures in tests" in summary, summary
