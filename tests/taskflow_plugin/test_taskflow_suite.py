"""TaskFlow's own persistence test suite, unchanged, on every backend through the plugin.

``taskflow.tests.unit.persistence.base.PersistenceTestMixin`` ships with
TaskFlow and is what TaskFlow runs against each of its own backends: save,
merge, lazy loads, failures, retry details, NotFound for missing records.
Here its connections come from TaskFlow's ``fetch()`` of the plugin's
configuration, on the same stores the contract suite uses.
"""

from __future__ import annotations

import contextlib
import datetime
import unittest

import pytest
from taskflow.persistence import models as tf_models
from taskflow.tests.unit.persistence import base as tf_suite

from tests.taskflow_plugin.conftest import PLUGIN_BACKENDS, make_plugin_store


class _OnPluginStore(tf_suite.PersistenceTestMixin):
    """Runs the mixin's tests with connections to the store of ``backend_name``."""

    backend_name = ""

    @pytest.fixture(autouse=True)
    def _store(self, request):
        store = make_plugin_store(request, self.backend_name)
        with contextlib.closing(store.taskflow_backend()) as backend:
            self._backend = backend
            yield

    def _get_connection(self):
        return self._backend.get_connection()

    def test_logbook_save_retrieve(self):
        """Replaces the mixin's test of the same name, which expects ``updated_at``
        to stay None after a save: our backends set it to the time of the save
        (what listing and purging by age go by).  Everything else it checks is
        checked here too."""
        book = tf_models.LogBook("lb", uuid="lb-save-retrieve")
        book.meta = {"1": 2}
        with contextlib.closing(self._get_connection()) as conn:
            before = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
            conn.save_logbook(book)
            got = conn.get_logbook(book.uuid)
        self.assertEqual(("lb", 0, {"1": 2}), (got.name, len(got), got.meta))
        self.assertEqual(book.created_at, got.created_at)
        self.assertIsNone(got.updated_at.tzinfo)      # naive UTC, as TaskFlow's
        self.assertGreaterEqual(got.updated_at, before - datetime.timedelta(seconds=1))


# One unittest class per backend (unittest classes cannot be parametrised).
for _name in PLUGIN_BACKENDS:
    globals()[f"TestTaskFlowSuite_{_name}"] = type(
        f"TestTaskFlowSuite_{_name}", (_OnPluginStore, unittest.TestCase),
        {"backend_name": _name})
del _name
