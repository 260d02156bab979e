"""A backend published by a separate distribution is found by fetch() by name."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

import persistence
from persistence.exceptions import NotFound
from persistence.testing.samples import make_book
from tests.fixtures.echo_plugin import PLUGIN_MODULE, plugin_env

PROBE = """
import json, persistence
be = persistence.fetch("echo://host:1/p?a=b")
print(json.dumps({"class": type(be).__module__ + "." + type(be).__name__,
                  "conf": be.conf, "installed": persistence.available_backends()}))
"""


def _probe(env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          env=env, timeout=60)


def test_fresh_interpreter_with_the_plugin_installed_finds_it(echo_plugin_dir):
    done = _probe(plugin_env(echo_plugin_dir))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["class"] == f"{PLUGIN_MODULE}.EchoBackend"
    assert out["conf"] == {"connection": "echo://host:1/p?a=b", "host": "host", "port": 1,
                           "path": "/p", "a": "b"}
    assert "echo" in out["installed"] and "memory" in out["installed"]


def test_without_the_plugin_echo_is_not_found():
    done = _probe()
    assert done.returncode != 0
    assert "NotFound" in done.stderr and "'echo'" in done.stderr


def test_persistence_itself_knows_nothing_of_the_plugin():
    package = Path(persistence.__file__).parent
    for source in package.rglob("*.py"):
        text = source.read_text()
        assert PLUGIN_MODULE not in text and "EchoBackend" not in text, source
    own = importlib.metadata.distribution("persistence").entry_points
    assert "echo" not in {ep.name for ep in own.select(group="persistence.backends")}
    assert "echo" not in persistence.available_backends()


def test_plugin_backend_in_process_gets_conf_and_kwargs_and_works(echo_plugin):
    marker = object()
    be = persistence.fetch("echo+drv://user:pw@host:1/p?a=b&c=d", client=marker)
    assert type(be).__module__ == PLUGIN_MODULE
    assert be.conf == {"connection": "echo+drv://user:pw@host:1/p?a=b&c=d", "host": "host",
                       "port": 1, "path": "/p", "username": "user", "password": "pw",
                       "driver": "drv", "a": "b", "c": "d"}
    assert be.kwargs == {"client": marker}
    received = sys.modules[PLUGIN_MODULE].RECEIVED[-1]
    assert received["conf"] == be.conf and received["kwargs"]["client"] is marker
    book = make_book()
    with persistence.backend("echo://") as echo:
        with echo.get_connection() as conn:
            conn.save_logbook(book)
            assert len(conn.get_logbook(book.uuid)) == len(book)
    assert echo.closed
    assert "echo" in persistence.available_backends()


def test_plugin_is_gone_after_the_fixture():
    with pytest.raises(NotFound):
        persistence.fetch("echo://")
