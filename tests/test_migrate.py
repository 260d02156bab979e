"""Migration between every ordered pair of backends the fixtures provide: complete,
lossless, resumable without duplicates, verified.

Pairs come from ``tests.conftest.contract_backends()``, so a backend added to
``tests/fixtures`` is migrated to and from every other one with no change here.
"""

from __future__ import annotations

import itertools

import pytest

import persistence
from persistence.exceptions import Duplicate, NotFound
from persistence.testing.samples import new_uuid
from persistence.tools import copy as mig
from tests.conftest import contract_backends
from tests.test_archive import all_books, rich_book, same_books

PAIRS = list(itertools.permutations(contract_backends(), 2))


@pytest.fixture
def pair(request):
    src_name, dst_name = request.param
    src = request.getfixturevalue(f"backend_{src_name}")
    dst = request.getfixturevalue(f"backend_{dst_name}")
    with src.get_connection() as s, dst.get_connection() as d:
        yield s, d


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS], indirect=True)
def test_migration_between_every_pair_is_complete_resumable_and_verified(pair):
    src, dst = pair
    books = [rich_book(f"book-{i}") for i in range(3)]
    for book in books:
        src.save_logbook(book)
    # An earlier run was interrupted: one logbook made it, one only partly.
    mig.migrate(src, dst, [books[0].uuid])
    partial = src.get_logbook(books[1].uuid)
    partial._flowdetails_by_id.pop(next(iter(partial)).uuid)
    dst.save_logbook(partial)

    report = mig.migrate(src, dst)
    assert (report.created, report.replaced, report.skipped) == (1, 1, 1)
    assert report.verified and report.logbooks == 3
    same_books(all_books(dst), books)

    again = mig.migrate(src, dst)                      # nothing left to do, no duplicates
    assert (again.created, again.replaced, again.skipped) == (0, 0, 3)
    assert len(list(dst.get_logbooks(lazy=True))) == 3


@pytest.fixture
def two_memories():
    with persistence.backend("memory://") as a, persistence.backend("memory://") as b:
        with a.get_connection() as s, b.get_connection() as d:
            yield s, d


def test_selected_logbooks_only(two_memories):
    src, dst = two_memories
    books = [rich_book(f"b{i}") for i in range(3)]
    for book in books:
        src.save_logbook(book)
    report = mig.migrate(src, dst, [books[2].uuid, books[0].uuid, books[2].uuid])
    assert report.created == 2
    same_books(all_books(dst), [books[0], books[2]])


def test_a_missing_selected_logbook_fails_before_anything_is_written(two_memories):
    src, dst = two_memories
    book = rich_book()
    src.save_logbook(book)
    with pytest.raises(NotFound):
        mig.migrate(src, dst, [book.uuid, new_uuid()])
    assert all_books(dst) == {}


def test_existing_policies(two_memories):
    src, dst = two_memories
    book = rich_book()
    src.save_logbook(book)
    other = persistence.LogBook("other content", uuid=book.uuid)
    dst.save_logbook(other)
    with pytest.raises(Duplicate):
        mig.migrate(src, dst, existing="fail")
    assert mig.migrate(src, dst, existing="skip").skipped == 1
    assert dst.get_logbook(book.uuid).name == "other content"
    assert mig.migrate(src, dst, existing="replace").replaced == 1
    same_books(all_books(dst), [book])
    with pytest.raises(ValueError, match="existing must be one of"):
        mig.migrate(src, dst, existing="merge")


def test_verification_catches_a_destination_that_loses_records(two_memories):
    src, dst = two_memories
    book = rich_book()
    src.save_logbook(book)
    mig.migrate(src, dst)
    damaged = src.get_logbook(book.uuid)
    damaged._flowdetails_by_id.pop(next(iter(book)).uuid)
    dst.destroy_logbook(book.uuid)
    dst.save_logbook(damaged)
    with pytest.raises(mig.VerificationFailed, match=book.uuid):
        mig.verify_counts(dst, {book.uuid: (len(book), sum(len(f) for f in book))})


def test_progress_is_reported_per_logbook(two_memories):
    src, dst = two_memories
    for i in range(4):
        src.save_logbook(rich_book(f"b{i}"))
    seen = []
    mig.migrate(src, dst, progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert seen == [("copy", i, 4) for i in range(1, 5)] + [("verify", i, 4) for i in range(1, 5)]
