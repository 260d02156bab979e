"""How TaskFlow finds and configures the plugin: entry point, configuration forms, errors.

These go through TaskFlow's own ``taskflow.persistence.backends.fetch`` and
the entry point the installed (editable) distribution publishes.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import subprocess
import sys

import pytest
from taskflow import exceptions as tf_exc
from taskflow.persistence import backends as tf_backends

from persistence.backends.dir import DirBackend
from persistence.backends.memory import MemoryBackend
from persistence.exceptions import ConfigurationError, NotFound
from persistence.integrations.taskflow import TaskFlowBackend, inner_configuration


def test_the_installed_distribution_publishes_the_entry_point():
    (entry,) = [ep for ep in importlib.metadata.entry_points(group="taskflow.persistence")
                if ep.name == "persistence"]
    assert entry.value == "persistence.integrations.taskflow:TaskFlowBackend"
    assert entry.dist.name == "persistence"
    assert entry.load() is TaskFlowBackend


@pytest.mark.parametrize("conf, kind, path", [
    ({"connection": "persistence+memory://"}, MemoryBackend, None),
    ({"connection": "persistence+memory"}, MemoryBackend, None),
    ({"connection": "persistence+memory:"}, MemoryBackend, None),
    ({"connection": "persistence+dir", "path": "{tmp}/a"}, DirBackend, "{tmp}/a"),
    ({"connection": "persistence+file://{tmp}/b"}, DirBackend, "{tmp}/b"),   # file:///…
    ("persistence+dir://{tmp}/c", DirBackend, "{tmp}/c"),
])
def test_taskflow_fetch_builds_the_plugin_in_every_configuration_form(tmp_path, conf, kind,
                                                                     path):
    def fill(value):     # {tmp}: an absolute path, so "file://{tmp}" has three slashes
        return value.replace("{tmp}", str(tmp_path))
    conf = {k: fill(v) for k, v in conf.items()} if isinstance(conf, dict) else fill(conf)
    with contextlib.closing(tf_backends.fetch(conf)) as backend:
        assert isinstance(backend, TaskFlowBackend)
        assert type(backend.persistence_backend) is kind
        if path is not None:
            assert backend.persistence_backend.path == fill(path)
        with contextlib.closing(backend.get_connection()) as conn:
            conn.upgrade()
            conn.validate()


def test_taskflow_backend_context_manager_upgrades_the_store(tmp_path):
    conf = {"connection": f"persistence+sqlite:///{tmp_path}/flows.db"}
    with tf_backends.backend(conf) as backend:
        with contextlib.closing(backend.get_connection()) as conn:
            conn.validate()
            assert list(conn.get_logbooks()) == []


def test_uri_parts_taskflow_copied_into_the_conf_are_not_passed_twice():
    # What TaskFlow's fetch() hands the plugin for a URI: the URI plus its parts.
    conf = {"connection": "persistence+postgresql://app:s3cret@db:5433/flows?pool_size=3",
            "username": "app", "password": "s3cret", "port": 5433, "hostname": "db:5433",
            "pool_size": "3", "history": False}
    assert inner_configuration(conf) == {
        "connection": "postgresql://app:s3cret@db:5433/flows?pool_size=3", "history": False}
    # A part the application set to something else itself is kept (and wins).
    assert inner_configuration({**conf, "pool_size": 9})["pool_size"] == 9
    assert inner_configuration({"connection": "persistence+zookeeper",
                                "hosts": "zk1:2181", "path": "/app"}) == {
        "connection": "zookeeper", "hosts": "zk1:2181", "path": "/app"}


@pytest.mark.parametrize("connection", ["postgresql://db/flows", "persistence", "persistence+",
                                        "persistence+://x", None])
def test_a_connection_that_does_not_name_a_backend_is_refused(connection):
    with pytest.raises(ConfigurationError, match="persistence\\+"):
        inner_configuration({"connection": connection})


def test_bad_configuration_is_reported_by_get_connection_not_hidden_by_fetch(tmp_path):
    # TaskFlow's fetch() would turn an error raised while building into
    # NotFound("Could not find backend persistence"); the plugin keeps it for later.
    backend = tf_backends.fetch({"connection": "persistence+dir", "path": str(tmp_path),
                                 "pool_sise": 3})
    with pytest.raises(ConfigurationError, match="unknown option.*'pool_sise'"):
        backend.get_connection()
    backend.close()

    missing = tf_backends.fetch({"connection": "persistence+nosuch://host/x"})
    with pytest.raises(tf_exc.NotFound, match="no backend named 'nosuch'") as caught:
        missing.get_connection()
    assert isinstance(caught.value.__cause__, NotFound)


def test_passwords_stay_out_of_errors_and_reprs():
    conf = {"connection": "persistence+postgresql://app:s3cret@127.0.0.1:1/db", "bogus": 1}
    backend = TaskFlowBackend(conf)
    with pytest.raises(ConfigurationError) as caught:
        backend.get_connection()
    assert "s3cret" not in str(caught.value) and "s3cret" not in repr(backend)
    with pytest.raises(ConfigurationError) as caught:
        inner_configuration({"connection": "postgresql://app:s3cret@db/x"})
    assert "s3cret" not in str(caught.value)


def test_a_wrapped_backend_is_left_open_for_its_owner():
    memory = MemoryBackend()
    wrapped = TaskFlowBackend.wrap(memory)
    with contextlib.closing(wrapped.get_connection()) as conn:
        conn.upgrade()
    wrapped.close()
    assert wrapped.persistence_backend is memory and wrapped.store is memory.token


def test_without_taskflow_the_plugin_says_which_extra_to_install():
    code = ("import sys; sys.modules['taskflow'] = None\n"
            "import persistence, persistence.tools.cli.app\n"       # the rest needs no TaskFlow
            "from persistence.exceptions import MissingDependency\n"
            "try:\n"
            "    import persistence.integrations.taskflow\n"
            "except MissingDependency as err:\n"
            "    print(err)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pip install 'persistence[taskflow]'" in done.stdout
