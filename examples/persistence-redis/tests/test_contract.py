"""The shared contract suite of persistence, run against the redis backend.

The backend is fetched by name through the ``persistence.backends`` entry
point, as any user would.  ``PERSISTENCE_REDIS_TEST_URL`` names the server and
database (default: database 15 on 127.0.0.1:6379); every test gets its own key
prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import os
import uuid

import pytest
import redis

import persistence
from persistence.testing.contract import BackendContract

URL = os.environ.get("PERSISTENCE_REDIS_TEST_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def backend():
    prefix = f"persistence-test:{uuid.uuid4().hex}:"
    client = redis.Redis.from_url(URL)
    try:
        client.ping()
    except redis.ConnectionError as err:
        pytest.fail(f"no Redis server at {URL}: {err}")
    try:
        with persistence.backend(f"{URL}?prefix={prefix}") as be:
            assert type(be).__name__ == "RedisBackend"
            yield be
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


class TestRedisBackend(BackendContract):
    pass


def test_a_concurrent_change_aborts_the_whole_transaction(backend):
    """WATCH: a record changed between the revision read and EXEC → Conflict, nothing written."""
    from persistence.exceptions import Conflict
    from persistence.models import FlowDetail, LogBook, TaskDetail

    book = LogBook("watched")
    fd = FlowDetail("flow", str(uuid.uuid4()))
    ad = TaskDetail("task", str(uuid.uuid4()))
    fd.add(ad)
    book.add(fd)
    with backend.get_connection() as conn:
        conn.save_logbook(book)
        txn_cm = conn._transaction()
        txn = txn_cm.__enter__()
        path = conn._atom(ad.uuid)
        revision = conn._write(path, b"{}", txn, create=False, expected_revision=ad.revision)
        with backend.get_connection() as other:           # another writer gets in first
            ad.results = "theirs"
            other.update_atom_details(ad)
        with pytest.raises(Conflict, match="nothing was written"):
            txn_cm.__exit__(None, None, None)
        assert revision == 2
        assert conn.get_atom_details(ad.uuid).results == "theirs"


def test_uri_path_is_the_database_number():
    from persistence.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="database number"):
        persistence.fetch("redis://127.0.0.1:6379/not-a-number")
    be = persistence.fetch("redis://127.0.0.1:6379/3?prefix=x:")
    try:
        assert be.client.connection_pool.connection_kwargs["db"] == 3 and be.prefix == "x:"
    finally:
        be.close()


def test_a_save_stopped_at_any_point_publishes_all_or_nothing(backend, monkeypatch):
    """A save is one MULTI/EXEC: stopped before EXEC (however far it got) nothing is
    visible, and the server drops the queued commands with the connection."""
    from persistence.exceptions import NotFound
    from persistence.models import FlowDetail, LogBook, TaskDetail

    class Stop(BaseException):
        pass

    book = LogBook("stopped")
    for f in range(2):
        fd = FlowDetail(f"flow-{f}", str(uuid.uuid4()))
        for a in range(2):
            fd.add(TaskDetail(f"atom-{a}", str(uuid.uuid4())))
        book.add(fd)
    sent = []
    real = redis.client.Pipeline.execute

    def execute(pipe, *args, **kwargs):
        if pipe.explicit_transaction:   # the MULTI of a save: stop before EXEC
            sent.append(len(pipe.command_stack))
            pipe.reset()
            raise Stop()
        return real(pipe, *args, **kwargs)
    with backend.get_connection() as conn:
        monkeypatch.setattr(redis.client.Pipeline, "execute", execute)
        with pytest.raises(Stop):
            conn.save_logbook(book)
        monkeypatch.undo()
        assert sent and sent[0] > 8   # every write of the save was queued
        with pytest.raises(NotFound):
            conn.get_logbook(book.uuid)
        for fd in book:
            with pytest.raises(NotFound):
                conn.get_flow_details(fd.uuid)
        conn.save_logbook(book)
        assert len(conn.get_logbook(book.uuid)) == 2
