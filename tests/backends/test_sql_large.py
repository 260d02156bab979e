"""Values of any size on every database: no truncation, no packet-size failure.

MariaDB refuses any statement over ``max_allowed_packet`` (16 MiB here), so
large atom values travel as chunk rows; these tests check that the split is
invisible: round trips, updates from large to small and back, deletion.
"""

from __future__ import annotations

import contextlib
import os

import pytest
import sqlalchemy as sa

import persistence
from persistence import FlowDetail, LogBook, RetryDetail, TaskDetail, states
from persistence.testing.samples import make_failure, new_uuid


def _book(*atoms) -> tuple[LogBook, FlowDetail]:
    book = LogBook("large")
    fd = FlowDetail("flow", new_uuid())
    for ad in atoms:
        fd.add(ad)
    book.add(fd)
    return book, fd


def _chunk_rows(backend) -> int:
    with backend.engine.connect() as c:
        return c.execute(sa.text("SELECT COUNT(*) FROM atomdetail_chunks")).scalar()


def _twenty_megabytes() -> dict:
    # Incompressible text (hex of random bytes), so no encoding trick hides the size.
    return {"blob": os.urandom(10 * 1024 * 1024).hex(), "tail": "✓ end"}


def test_a_20_mb_result_round_trips(sql_backend):
    result = _twenty_megabytes()
    ad = TaskDetail("big", new_uuid())
    ad.put(states.SUCCESS, result)
    book, fd = _book(ad)
    with contextlib.closing(sql_backend.get_connection()) as conn:
        conn.save_logbook(book)
    with contextlib.closing(sql_backend.get_connection()) as other:
        assert other.get_atom_details(ad.uuid).results == result
        assert other.get_logbook(book.uuid).find(fd.uuid).find(ad.uuid).results == result
    del result


def test_large_then_small_then_large_again(sql_backend):
    ad = TaskDetail("changing", new_uuid())
    book, fd = _book(ad)
    with contextlib.closing(sql_backend.get_connection()) as conn:
        conn.save_logbook(book)
        big = {"x": "y" * (3 * 1024 * 1024)}
        ad.put(states.SUCCESS, big)
        ad.meta["note"] = "z" * (2 * 1024 * 1024)
        conn.update_atom_details(ad)
        assert conn.get_atom_details(ad.uuid).results == big
        ad.reset(states.PENDING)
        ad.meta.clear()
        conn.update_atom_details(ad)
        got = conn.get_atom_details(ad.uuid)
        assert got.results is None and dict(got.meta) == {}
        ad.put(states.SUCCESS, big)
        conn.update_flow_details(fd)
        assert conn.get_flow_details(fd.uuid).find(ad.uuid).results == big


def test_a_retry_detail_with_1000_prior_results(sql_backend):
    retry = RetryDetail("retry", new_uuid())
    book, fd = _book(retry)
    with contextlib.closing(sql_backend.get_connection()) as conn:
        conn.save_logbook(book)
        for i in range(1000):
            retry.results.append(({"attempt": i, "pad": "p" * 200},
                                  {"task": make_failure(f"failure {i}")}))
        retry.touch()
        conn.update_atom_details(retry)
    with contextlib.closing(sql_backend.get_connection()) as other:
        got = other.get_atom_details(retry.uuid)
        assert len(got.results) == 1000
        assert got.results[-1][0] == {"attempt": 999, "pad": "p" * 200}
        assert got.results[-1][1]["task"].exception_str == "failure 999"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_chunking_is_invisible_and_cleaned_up(sql_database_factory, kind):
    """A tiny inline limit forces every value through chunk rows on every database."""
    url = sql_database_factory(kind)
    conf = {"connection": url, "max_inline_size": 64, "chunk_size": 50}
    with persistence.backend(conf) as be, contextlib.closing(be.get_connection()) as conn:
        conn.clear_all()
        atoms = [TaskDetail(f"t{i}", new_uuid()) for i in range(3)]
        for i, ad in enumerate(atoms):
            ad.put(states.SUCCESS, {"i": i, "text": "ünïcode ✓ " * 20})
            ad.meta["m"] = "meta " * 30
        atoms[2].put(states.FAILURE, make_failure())
        book, fd = _book(*atoms)
        conn.save_logbook(book)
        assert _chunk_rows(be) > 0
        with contextlib.closing(be.get_connection()) as other:
            got = other.get_logbook(book.uuid).find(fd.uuid)
            for ad in atoms:
                assert got.find(ad.uuid).results == ad.results
                assert dict(got.find(ad.uuid).meta) == dict(ad.meta)
            assert got.find(atoms[2].uuid).failure.exception_str == "boom ✗"
        for ad in atoms:  # back to small: the chunks go
            ad.reset(states.PENDING)
            ad.meta.clear()
        conn.update_flow_details(fd)
        assert _chunk_rows(be) == 0
        atoms[0].put(states.SUCCESS, "q" * 500)
        conn.update_atom_details(atoms[0])
        assert _chunk_rows(be) > 0
        conn.destroy_logbook(book.uuid)
        assert _chunk_rows(be) == 0


def test_large_flow_meta_is_stored_or_clearly_refused(sql_backend):
    """Logbook and flow meta stay inline: any size where the database takes it,
    a clear StorageFailure with nothing written where it cannot (MySQL's packet)."""
    book, fd = _book(TaskDetail("t", new_uuid()))
    fd.meta["big"] = "m" * (10 * 1024 * 1024)
    with contextlib.closing(sql_backend.get_connection()) as conn:
        if sql_backend.engine.dialect.name in ("mysql", "mariadb"):
            with pytest.raises(persistence.exceptions.StorageFailure, match="meta of"):
                conn.save_logbook(book)
            assert list(conn.get_logbooks()) == []
        else:
            conn.save_logbook(book)
            assert conn.get_flow_details(fd.uuid).meta["big"] == fd.meta["big"]
