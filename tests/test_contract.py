"""Run the shipped contract suite against every backend the fixtures provide.

``backend`` comes from ``tests/conftest.py`` and is parametrised over every
name in ``CONTRACT_BACKENDS`` of ``tests/fixtures/*``, so a backend added
there runs the whole suite with no change here.
"""

from persistence.testing.contract import BackendContract


class TestBackendContract(BackendContract):
    pass
