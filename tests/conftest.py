"""Test configuration: backend fixtures come from ``tests/fixtures/*``.

The ``backend`` fixture is parametrised over every backend a fixtures module
lists in ``CONTRACT_BACKENDS``; tests that take it run once per backend.
Under ``CI=true`` a backend whose server is missing fails instead of skipping.
"""

from __future__ import annotations

import os
import sys

import pytest

from tests.fixtures import plugin_modules

pytest_plugins = plugin_modules()

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip a test whose service is missing — or fail it under CI=true."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: every backend must be exercised)", pytrace=False)
    pytest.skip(reason)


def contract_backends() -> list[str]:
    """Backend names listed by the fixture modules, optionally narrowed by
    ``PERSISTENCE_TEST_BACKENDS=memory,dir`` (never narrowed under CI)."""
    names = [name for module in plugin_modules()
             for name in getattr(sys.modules[module], "CONTRACT_BACKENDS", ())]
    wanted = os.environ.get("PERSISTENCE_TEST_BACKENDS")
    if wanted and not IN_CI:
        names = [n for n in names if n in wanted.split(",")]
    return names


def pytest_generate_tests(metafunc):
    if "backend_name" in metafunc.fixturenames:
        metafunc.parametrize("backend_name", contract_backends())


@pytest.fixture
def backend(request, backend_name):
    """A fresh, empty, upgraded backend; runs the test once per backend."""
    return request.getfixturevalue(f"backend_{backend_name}")


@pytest.fixture
def conn(backend):
    """An open connection to ``backend``."""
    connection = backend.get_connection()
    try:
        yield connection
    finally:
        connection.close()
