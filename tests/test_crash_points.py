"""Crash-point injection: a save stopped after each of its individual writes.

A save of a multi-flow logbook (and a re-save that adds a flow) is run once
to count its individual writes on the store (dir: each file, directory,
link, rename or removal; memory: each node change; ZooKeeper: each
transaction sent, with a small ``max_request_bytes`` so one save takes many),
then again on a fresh store for every k, stopped right after the k-th write.
A reader then sees every logbook and flow detail either absent or complete,
``upgrade()`` removes what the stopped save left, and saving the same logbook
again gives exactly what that save holds.  (Redis applies a save in one
MULTI/EXEC: see ``examples/persistence-redis/tests``.)
"""

from __future__ import annotations

import contextlib
import functools
import os
import types
import uuid
from collections.abc import Callable, Iterator

import pytest

from persistence import states
from persistence.backends import dirfiles
from persistence.backends.dir import DirBackend
from persistence.backends.memory import MemoryBackend
from persistence.exceptions import NotFound
from persistence.models import FlowDetail, LogBook, TaskDetail

PAD = "x" * 1500


class _Crash(BaseException):
    """Stops the writer where it is: nothing in the write path handles it."""


class _Counter:
    def __init__(self, stop_after: int | None) -> None:
        self.stop_after, self.steps = stop_after, 0

    def step(self) -> None:
        if self.stop_after is not None and self.steps >= self.stop_after:
            raise _Crash(self.steps)
        self.steps += 1


def _flow(tag: str, atoms: int = 2) -> FlowDetail:
    fd = FlowDetail(f"flow-{tag}", f"flow-{tag}")
    for a in range(atoms):
        ad = TaskDetail(f"atom-{tag}-{a}", f"atom-{tag}-{a}")
        ad.put(states.SUCCESS, {"tag": tag, "a": a, "pad": PAD})
        fd.add(ad)
    return fd


def _book(tags: list[str], uuid_: str = "book-1") -> LogBook:
    book = LogBook("book", uuid=uuid_)
    for tag in tags:
        book.add(_flow(tag))
    return book


def _shape(book: LogBook) -> dict[str, set[str]]:
    return {fd.uuid: {ad.uuid for ad in fd} for fd in book}


def _complete_or_absent(conn, flows: dict[str, set[str]], book_uuid: str,
                        must_have: dict[str, set[str]]) -> dict[str, set[str]] | None:
    """Check what a reader sees; return the visible book's shape (None if absent)."""
    for flow_uuid, atoms in flows.items():
        try:
            fd = conn.get_flow_details(flow_uuid)
        except NotFound:
            with pytest.raises(NotFound):
                list(conn.get_atoms_for_flow(flow_uuid))
            continue
        assert {ad.uuid for ad in fd} == atoms, f"flow {flow_uuid} is visible half-written"
        assert {ad.uuid for ad in conn.get_atoms_for_flow(flow_uuid)} == atoms
    listed = [b for b in conn.get_logbooks() if b.uuid == book_uuid]
    try:
        book = conn.get_logbook(book_uuid)
    except NotFound:
        assert not listed, "get_logbooks lists a logbook get_logbook cannot find"
        with pytest.raises(NotFound):
            list(conn.get_flows_for_book(book_uuid))
        assert not must_have, "a logbook stored before the save disappeared"
        return None
    shape = _shape(book)
    assert listed and _shape(listed[0]) == shape
    assert {fd.uuid for fd in conn.get_flows_for_book(book_uuid)} == set(shape)
    assert shape in (must_have, {**must_have, **flows}), f"half a logbook is visible: {shape}"
    for fd in book:
        for ad in fd:
            assert ad.results["pad"] == PAD
    listed_flows = {fd.uuid for fd in conn.list_flow_details(logbook=book_uuid)}
    assert listed_flows == set(shape)
    return shape


def _scenarios() -> list[tuple[str, list[str], list[str]]]:
    """(name, flows saved before, flows the stopped save adds)."""
    return [("new multi-flow logbook", [], ["a", "b"]),
            ("a flow added to a stored logbook", ["a"], ["b"])]


def _run(open_store: Callable[[], Iterator], instrument: Callable, leftovers: Callable,
         name: str, before: list[str], added: list[str]) -> int:
    """Stop the save after each of its writes in turn; return how many writes it makes."""
    k, total = 0, None
    while total is None or k < total:
        with open_store() as (connect, store):
            conn = connect()
            if before:
                conn.save_logbook(_book(before))
            book = conn.get_logbook("book-1") if before else _book([])
            for tag in added:
                book.add(_flow(tag))
            other = _book(["o"], "other")
            conn.save_logbook(other)
            counter = _Counter(None if total is None else k)
            with instrument(store, counter):
                try:
                    conn.save_logbook(book)
                    stopped = False
                except _Crash:
                    stopped = True
            if total is None:
                total = counter.steps
                assert total >= 2, f"{name}: only {total} writes counted"
                continue
            assert stopped, f"{name}: save finished before write {k}"
            where = f"{name}, stopped after write {k} of {total}"
            must = _shape(_book(before))
            added_shape = _shape(_book(added))
            reader = connect()
            try:
                seen = _complete_or_absent(reader, added_shape, "book-1", must)
                assert _shape(reader.get_logbook("other")) == _shape(other)
                reader.upgrade()
                assert leftovers(store) == [], "upgrade() left these"
                assert _complete_or_absent(reader, added_shape, "book-1", must) == seen
                # Saved again by someone else (a retry from another process):
                again = _book(["a"])
                connect().save_logbook(again)
                expected = {**(seen or {}), **_shape(again)}
                assert _shape(connect().get_logbook("book-1")) == expected
            except AssertionError as err:
                raise AssertionError(f"{err} ({where})") from err
        k += 1
    return total


# -- dir: every file-system change ----------------------------------------------
_MUTATING = ("makedirs", "replace", "rename", "link", "unlink", "rmdir")


class _CountingOs(types.ModuleType):
    def __init__(self, counter: _Counter) -> None:
        super().__init__("os")
        self._counter = counter

    def __getattr__(self, name: str):
        real = getattr(os, name)
        if name in _MUTATING:
            def counted(*args, **kwargs):
                self._counter.step()
                return real(*args, **kwargs)
            return counted
        if name == "open":
            def opened(path, flags, *args):
                if flags & os.O_CREAT:
                    self._counter.step()
                return real(path, flags, *args)
            return opened
        return real


def _dir_leftovers(store: str) -> list[str]:
    """Temporary files, staging directories and record directories without a record."""
    out = []
    for directory, dirs, files in os.walk(store):
        out += [os.path.join(directory, n) for n in dirs + files
                if n.startswith((".tmp-", dirfiles.STAGING_PREFIX))]
    for kind in ("books", "flow_details", "atom_details"):
        for entry in os.scandir(os.path.join(store, kind)):
            if entry.is_dir() and not os.path.exists(os.path.join(entry.path, ".record")):
                out.append(entry.path)
    return out


@pytest.mark.parametrize("name,before,added", _scenarios())
def test_dir_save_stopped_after_each_write(tmp_path, monkeypatch, name, before, added):
    @contextlib.contextmanager
    def open_store():
        path = str(tmp_path / uuid.uuid4().hex)
        yield lambda: DirBackend({"path": path, "max_cache_size": 0}).get_connection(), path

    @contextlib.contextmanager
    def instrument(store, counter):
        with monkeypatch.context() as m:
            m.setattr(dirfiles, "os", _CountingOs(counter))
            yield

    total = _run(open_store, instrument, _dir_leftovers, name, before, added)
    print(f"dir, {name}: {total} writes")


# -- memory: every node change ---------------------------------------------------
@pytest.mark.parametrize("name,before,added", _scenarios())
def test_memory_save_stopped_after_each_write(monkeypatch, name, before, added):
    @contextlib.contextmanager
    def open_store():
        be = MemoryBackend()
        yield be.get_connection, be

    @contextlib.contextmanager
    def instrument(be, counter):
        fs = be.memory
        with monkeypatch.context() as m:
            for op in ("_set", "_add_leaf", "_ensure", "_delete"):
                real = getattr(fs, op)

                @functools.wraps(real)   # the transaction tells ops apart by name
                def counted(*args, real=real):
                    counter.step()
                    return real(*args)
                m.setattr(fs, op, counted)
            yield

    def leftovers(be) -> list[str]:
        return []   # nothing a reader sees stays behind: nodes without a value are absent

    _run(open_store, instrument, leftovers, name, before, added)


# -- ZooKeeper: every transaction sent -------------------------------------------
@pytest.mark.parametrize("name,before,added", _scenarios())
def test_zookeeper_save_stopped_after_each_transaction(zookeeper_backend_factory, name,
                                                       before, added):
    @contextlib.contextmanager
    def open_store():
        root = f"/persistence-tests/{uuid.uuid4().hex}"
        backends = []

        def connect():
            be = zookeeper_backend_factory(path=root, chunk_size=200, max_request_bytes=4296)
            backends.append(be)
            return be.get_connection()
        yield connect, backends

    @contextlib.contextmanager
    def instrument(backends, counter):
        be = backends[-1]
        real = be.call

        def call(what, *args, **kwargs):
            if what.startswith("commit a transaction"):
                counter.step()
            return real(what, *args, **kwargs)
        be.call = call
        try:
            yield
        finally:
            be.call = real

    def leftovers(backends) -> list[str]:
        return []   # an empty znode is absent to readers; the next save of it clears it

    total = _run(open_store, instrument, leftovers, name, before, added)
    print(f"zookeeper, {name}: {total} transactions")


# -- what an interrupted save left, met by the next save of the same logbook ----------
def _leave_unpublished_book(kind: str, be) -> None:
    """Make ``books/book-1`` exist without a record, linking the stored ``flow-o``."""
    conn = be.get_connection()
    if kind == "dir":
        os.makedirs(os.path.join(be.path, "books", "book-1"))
        open(os.path.join(be.path, "books", "book-1", "flow-o"), "wb").close()
    elif kind == "memory":
        be.memory.ensure_path(conn._join(conn.book_path, "book-1", "flow-o"))
    else:
        client = be.client
        client.create(conn._join(conn.book_path, "book-1"), b"")
        client.create(conn._join(conn.book_path, "book-1", "flow-o"), b"")


@pytest.mark.parametrize("kind", ["dir", "memory", "zookeeper"])
def test_an_unpublished_logbook_is_absent_and_the_next_save_replaces_it(
        kind, tmp_path, request):
    if kind == "dir":
        be = DirBackend({"path": str(tmp_path / "store"), "max_cache_size": 0})
    elif kind == "memory":
        be = MemoryBackend()
    else:
        be = request.getfixturevalue("zookeeper_backend_factory")()
    conn = be.get_connection()
    conn.save_logbook(_book(["o"], "other"))
    _leave_unpublished_book(kind, be)
    assert [b.uuid for b in conn.get_logbooks()] == ["other"]
    with pytest.raises(NotFound):
        conn.get_logbook("book-1")
    with pytest.raises(NotFound):
        list(conn.get_flows_for_book("book-1"))
    assert {fd.uuid for fd in conn.list_flow_details()} == {"flow-o"}
    conn.save_logbook(_book(["a"]))
    assert _shape(be.get_connection().get_logbook("book-1")) == _shape(_book(["a"]))
