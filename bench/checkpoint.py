"""W7: the price of one checkpointed atom, next to one raw commit.

Per atom an engine marks it RUNNING, runs it, and saves its result:
``set_atom_state(name, RUNNING)`` then ``save(name, result)`` through our
``Storage`` (policy ``always``).  That is timed over ``atoms`` atoms after a
short warm-up, once per durability mode ``Storage`` offers: ``default`` (no
keyword: at-least-once) and, when ``Storage`` accepts ``at_most_once``,
``at_most_once`` (RUNNING durable before the call returns).

The floor is one durable write through the raw driver, timed the same way in
the same process, on the same kind of store: an ``UPDATE … ; COMMIT`` of one
atom record (sqlite at the backend's own journal mode and synchronous level;
PostgreSQL with psycopg 3; MariaDB with PyMySQL), one kazoo ``set``, a file
write + fsync + rename, or ``json.dumps`` for memory.  Runs inside a worker
process (``bench/worker.py --part w7``) with the project's interpreter.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from .floors import atom_record, sqlite_settings

__all__ = ["modes", "storage_round", "floor_round", "run_round"]


def modes() -> tuple[str, ...]:
    """The durability modes this revision's ``Storage`` offers."""
    from persistence.storage import Storage
    if "at_most_once" in inspect.signature(Storage).parameters:
        return ("default", "at_most_once")
    return ("default",)


def _result(i: int, rep: int) -> dict[str, Any]:
    return {"value": i, "rep": rep, "ok": True, "note": "small result"}


def storage_round(api: Any, backend: Any, mode: str, atoms: int, warmup: int,
                  rep: int) -> dict[str, Any]:
    """Seconds per atom of RUNNING → save(result) through ``Storage`` in ``mode``."""
    from persistence.storage import Storage
    book = api.models.LogBook(f"w7-{mode}-{rep}")
    fd = api.models.FlowDetail(f"w7-{mode}-{rep}-flow", str(uuid.uuid4()))
    fd.state = api.states.RUNNING
    book.add(fd)
    conn = backend.get_connection()
    try:
        conn.save_logbook(book)
    finally:
        conn.close()
    extra = {"at_most_once": True} if mode == "at_most_once" else {}
    storage = Storage(fd, backend, policy="always", **extra)
    try:
        names = [f"w7-atom-{i}" for i in range(warmup + atoms)]
        storage.ensure_atoms(api.make_tasks(names))
        running = api.states.RUNNING
        for i, name in enumerate(names[:warmup]):
            storage.set_atom_state(name, running)
            storage.save(name, _result(i, rep))
        timed = names[warmup:]
        start = time.perf_counter()
        for i, name in enumerate(timed):
            storage.set_atom_state(name, running)
            storage.save(name, _result(i, rep))
        seconds = time.perf_counter() - start
    finally:
        storage.close()
    return {"seconds": seconds, "atoms": atoms, "per_atom_s": seconds / atoms}


# -- the one-commit floor, per kind of store ---------------------------------------
def _payloads(n: int) -> list[str]:
    out = []
    for i in range(n):
        record = atom_record()
        record["results"]["value"] = i
        out.append(json.dumps(record, separators=(",", ":")))
    return out


#: The history row a write records (the columns of our history table).
_HISTORY_COLUMNS = ("uuid", "kind", "name", "flow_uuid", "old_state", "new_state",
                    "intention", "revision", "at_ns", "owner", "event")


def _history_ddl(id_column: str) -> list[str]:
    """The floor's history table, typed and indexed like ours (by flow, then id)."""
    types = {"name": "TEXT", "revision": "INTEGER", "at_ns": "BIGINT"}
    columns = ", ".join(f"{c} {types.get(c, 'VARCHAR(255)')}" for c in _HISTORY_COLUMNS)
    return [f"CREATE TABLE w7_floor_history ({id_column}, {columns})",
            "CREATE INDEX w7_floor_history_flow ON w7_floor_history (flow_uuid, id)"]


def _sql_update(conn: Any, ph: str, begin: Callable[[], None], commit: Callable[[], None],
                create: str, history: list[str] | None = None) -> Callable[[str], None]:
    """Create the floor table; return one UPDATE + COMMIT of its one row (with
    ``history``, the DDL of a history table: an INSERT of its history row too)."""
    cur = conn.cursor()
    table = "w7_floor_h" if history else "w7_floor"
    cur.execute(create.replace("w7_floor", table))
    for ddl in history or ():
        cur.execute(ddl)
    key, flow = str(uuid.uuid4()), str(uuid.uuid4())
    begin()
    cur.execute(f"INSERT INTO {table} (uuid, data) VALUES ({ph}, {ph})", (key, "{}"))
    commit()
    log = (f"INSERT INTO w7_floor_history ({', '.join(_HISTORY_COLUMNS)}) VALUES "
           f"({', '.join([ph] * len(_HISTORY_COLUMNS))})")

    def update(data: str) -> None:
        begin()
        cur.execute(f"UPDATE {table} SET data = {ph} WHERE uuid = {ph}", (data, key))
        if history:
            cur.execute(log, (key, "atom", "w7-atom", flow, "RUNNING", "SUCCESS", "EXECUTE",
                              7, time.time_ns(), None, "write"))
        commit()
    return update


@contextlib.contextmanager
def _one_write(backend_name: str, conf: dict[str, Any], workdir: str, history: bool = False
               ) -> Iterator[tuple[Callable[[str], None], str]]:
    """(one durable write of an atom record, what it is) for ``backend_name``; with
    ``history``, the write also records its history entry as ours does (SQL: a row
    in an indexed history table, same transaction; ZooKeeper: a sequential node in
    the same multi)."""
    table = "CREATE TABLE w7_floor (uuid VARCHAR(36) PRIMARY KEY, data TEXT)"
    also = " + history INSERT" if history else ""
    if backend_name == "memory":
        record = atom_record()
        yield (lambda _data: json.dumps(record, separators=(",", ":"))), "json.dumps"
    elif backend_name == "dir":
        target = os.path.join(tempfile.mkdtemp(prefix="w7-floor-", dir=workdir), "one")

        def write(data: str) -> None:
            tmp = target + ".tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        yield write, "file write+fsync+rename"
    elif backend_name == "sqlite":
        settings = sqlite_settings(workdir)
        path = os.path.join(tempfile.mkdtemp(prefix="w7-floor-", dir=workdir), "floor.db")
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute(f"PRAGMA journal_mode={settings['journal_mode']}")
            conn.execute(f"PRAGMA synchronous={int(settings['synchronous'])}")
            update = _sql_update(conn, "?", lambda: conn.execute("BEGIN"),
                                 lambda: conn.execute("COMMIT"), table,
                                 _history_ddl("id INTEGER PRIMARY KEY") if history else None)
            yield update, (f"sqlite UPDATE{also} + COMMIT ({settings['journal_mode']}, "
                           f"synchronous={settings['synchronous']})")
        finally:
            conn.close()
    elif backend_name == "postgresql":
        import psycopg
        url = urlsplit(conf["connection"])
        with psycopg.connect(host=url.hostname, port=url.port or 5432,
                             user=unquote(url.username or ""),
                             dbname=url.path.lstrip("/")) as conn:
            update = _sql_update(conn, "%s", lambda: None, conn.commit, table,
                                 _history_ddl("id BIGSERIAL PRIMARY KEY") if history else None)
            yield update, f"PostgreSQL UPDATE{also} + COMMIT (psycopg 3)"
    elif backend_name == "mysql":
        import pymysql
        url = urlsplit(conf["connection"])
        conn = pymysql.connect(host=url.hostname, port=url.port or 3306,
                               user=unquote(url.username or ""),
                               database=url.path.lstrip("/"), autocommit=False)
        try:
            update = _sql_update(
                conn, "%s", lambda: None, conn.commit,
                table.replace("TEXT)", "MEDIUMTEXT) ENGINE=InnoDB"),
                _history_ddl("id BIGINT AUTO_INCREMENT PRIMARY KEY") if history else None)
            yield update, f"MariaDB UPDATE{also} + COMMIT (PyMySQL)"
        finally:
            conn.close()
    elif backend_name == "zookeeper":
        from kazoo.client import KazooClient
        client = KazooClient(hosts=conf["hosts"], timeout=15)
        client.start(timeout=15)
        node = f"{conf['path']}-w7-floor{'-h' if history else ''}"
        try:
            client.create(node, b"{}", makepath=True)
            if not history:
                yield (lambda data: client.set(node, data.encode())), "kazoo set"
                return
            entry = json.dumps(dict.fromkeys(_HISTORY_COLUMNS, "w7")).encode()

            def logged(data: str) -> None:
                txn = client.transaction()
                txn.set_data(node, data.encode())
                txn.create(f"{node}/h-", entry, sequence=True)
                if any(isinstance(r, Exception) for r in txn.commit()):
                    raise RuntimeError("the floor's multi failed")
            yield logged, "kazoo multi (set + sequential history node)"
        finally:
            client.stop()
            client.close()
    else:
        raise ValueError(f"unknown backend {backend_name!r}")


#: The stores whose floor is also measured with a history entry per write.
HISTORY_FLOORS = ("sqlite", "postgresql", "mysql", "zookeeper")


def floor_round(backend_name: str, conf: dict[str, Any], ops: int, warmup: int,
                workdir: str, history: bool = False) -> dict[str, Any]:
    """Seconds per raw durable write (the one-commit floor) over ``ops`` writes."""
    payloads = _payloads(warmup + ops)
    with _one_write(backend_name, conf, workdir, history) as (write, what):
        for data in payloads[:warmup]:
            write(data)
        start = time.perf_counter()
        for data in payloads[warmup:]:
            write(data)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "ops": ops, "per_op_s": seconds / ops, "what": what}


def run_round(api: Any, backend: Any, backend_name: str, conf: dict[str, Any], atoms: int,
              warmup: int, rep: int, workdir: str) -> dict[str, Any]:
    """One W7 round on one store: the floor and every mode, in an order that rotates
    with ``rep`` so that no one of them always goes first."""
    from .workloads import describe
    jobs: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("floor", lambda: floor_round(backend_name, conf, atoms, warmup, workdir))]
    if backend_name in HISTORY_FLOORS:
        jobs.append(("floor_history", lambda: floor_round(backend_name, conf, atoms, warmup,
                                                          workdir, history=True)))
    for mode in modes():
        jobs.append((mode, lambda m=mode: storage_round(api, backend, m, atoms, warmup, rep)))
    shift = rep % len(jobs)
    out: dict[str, Any] = {"order": [], "modes": list(modes())}
    for key, job in jobs[shift:] + jobs[:shift]:
        out["order"].append(key)
        try:
            out[key] = job()
        except Exception as err:  # recorded; the other measurements go on
            out[key] = {"error": describe(err)}
    return out
