"""A real third-party plugin: ``examples/persistence-redis`` is pip-installed as its
own distribution and passes the shared contract suite.

The distribution is installed (``--no-deps``) into a private directory with the
same helper as the echo plugin (``tests.fixtures.echo_plugin.pip_install``), so
nothing lands in the shared environment and nothing is left if the run dies; the
directory is deleted at the end.  The plugin's own test module
(``examples/persistence-redis/tests``) then runs in a child pytest that sees the
installed distribution, so ``fetch("redis://…")`` goes through the entry point,
against the Redis server on 127.0.0.1:6379 (``scripts/setup.d/30-redis.sh``), in
database 15 under a key prefix of its own that it deletes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import unavailable
from tests.fixtures.echo_plugin import pip_install, plugin_env

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "persistence-redis"
URL = os.environ.get("PERSISTENCE_REDIS_TEST_URL", "redis://127.0.0.1:6379/15")


def _redis_reachable() -> str | None:
    import redis

    client = redis.Redis.from_url(URL, socket_connect_timeout=5)
    try:
        client.ping()
        return None
    except redis.RedisError as err:
        return f"no Redis server at {URL} ({err}): scripts/setup.d/30-redis.sh starts one"
    finally:
        client.close()


@pytest.fixture(scope="module")
def redis_plugin(tmp_path_factory):
    """The directory persistence-redis was installed into; removed afterwards."""
    site = pip_install(EXAMPLE, tmp_path_factory, "redis-plugin")
    try:
        yield site
    finally:
        shutil.rmtree(site, ignore_errors=True)


def test_installed_plugin_publishes_only_an_entry_point(redis_plugin):
    (entry_points,) = redis_plugin.glob("persistence_redis-*.dist-info/entry_points.txt")
    assert entry_points.read_text().split() == ["[persistence.backends]", "redis", "=",
                                                "persistence_redis:RedisBackend"]
    assert (redis_plugin / "persistence_redis" / "__init__.py").exists()
    assert not (redis_plugin / "persistence").exists()   # --no-deps: uses ours


def test_contract_suite_passes_against_the_installed_plugin(redis_plugin, tmp_path):
    why = _redis_reachable()
    if why:
        unavailable(why)
    tests = tmp_path / "plugin-tests"
    shutil.copytree(EXAMPLE / "tests", tests / "tests")
    shutil.copy(EXAMPLE / "pyproject.toml", tests / "pyproject.toml")  # its pytest settings
    env = plugin_env(redis_plugin)
    env["PERSISTENCE_REDIS_TEST_URL"] = URL
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x",
                           "tests"], cwd=tests, capture_output=True, text=True, env=env,
                          timeout=600)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary
    assert "skipped" not in summary, summary
