"""Raw floors: what the driver alone costs for what a backend must do.

Per backend three figures, each the median over the repetitions of a per-item
cost: ``update`` (one record UPDATE + COMMIT — the W2 floor), ``bulk`` (one
record of a bulk insert in one transaction — the W1/W4-batch floor) and
``select`` (one record of a SELECT + JSON decode — the load floor).  memory's
floors are ``json.dumps``/``json.loads`` of an atom record; dir's are a file
write+fsync+rename and a file read + decode; ZooKeeper's are kazoo
``set``/``create``/``get`` (+ decode).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from .workloads import Sizes, median

__all__ = ["atom_record", "measure", "sqlite_settings"]

SQLITE_DEFAULTS = {"journal_mode": "delete", "synchronous": 2}


def atom_record() -> dict[str, Any]:
    """An atom record as the backends store it after W2 (state SUCCESS + small result)."""
    return {"name": "w1-0-task-0-17", "uuid": str(uuid.uuid4()), "state": "SUCCESS",
            "intention": "EXECUTE",
            "results": {"value": 17, "rep": 3, "ok": True, "note": "small result"},
            "failure": None, "revert_results": None, "revert_failure": None, "meta": {},
            "version": "1.0", "type": "TASK_DETAIL", "parent_uuid": str(uuid.uuid4()),
            "revision": 7}


def _durable_ops(sizes: Sizes) -> int:
    """Operations per repetition for floors that wait for the disk (fsync/commit)."""
    return max(10, sizes.floor_ops // 5)


def _data(i: int) -> str:
    record = atom_record()
    record["results"]["value"] = i
    return json.dumps(record, separators=(",", ":"))


def _reps(sizes: Sizes, fn: Callable[[int], float]) -> dict[str, Any]:
    per = [fn(r) for r in range(sizes.reps)]
    return {"per_item_s": median(per), "reps": per}


def _per_item(n: int, fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) / n


# -- memory: json -------------------------------------------------------------------
def json_floors(sizes: Sizes) -> dict[str, Any]:
    record = atom_record()
    encoded = json.dumps(record, separators=(",", ":"))
    n = sizes.floor_ops * 10

    def dumps(_r: int) -> float:
        return _per_item(n, lambda: [json.dumps(record, separators=(",", ":"))
                                     for _ in range(n)])

    def loads(_r: int) -> float:
        return _per_item(n, lambda: [json.loads(encoded) for _ in range(n)])

    d, lo = _reps(sizes, dumps), _reps(sizes, loads)
    return {"update": dict(d, what="json.dumps of an atom record"),
            "bulk": dict(d, what="json.dumps of an atom record"),
            "select": dict(lo, what="json.loads of an atom record"),
            "record_bytes": len(encoded)}


# -- dir: files ---------------------------------------------------------------------
def file_floors(sizes: Sizes, workdir: str) -> dict[str, Any]:
    root = tempfile.mkdtemp(prefix="floor-files-", dir=workdir)
    payloads = [_data(i).encode() for i in range(_durable_ops(sizes))]

    def write(path: str, data: bytes) -> None:
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def update(_r: int) -> float:
        target = os.path.join(root, "one")
        return _per_item(len(payloads), lambda: [write(target, p) for p in payloads])

    def select(r: int) -> float:
        paths = [os.path.join(root, f"r{r}-{i}") for i in range(sizes.floor_rows)]
        for i, path in enumerate(paths):
            with open(path, "wb") as fh:
                fh.write(payloads[i % len(payloads)])

        def read_all() -> None:
            for path in paths:
                with open(path, "rb") as fh:
                    json.loads(fh.read())
        return _per_item(len(paths), read_all)

    up = _reps(sizes, update)
    return {"update": dict(up, what="file write+fsync+rename"),
            "bulk": dict(up, what="file write+fsync+rename (one per record)"),
            "select": dict(_reps(sizes, select), what="file open+read + json.loads")}


# -- SQL (sqlite, PostgreSQL, MariaDB) ------------------------------------------------
def _sql_floors(sizes: Sizes, conn: Any, ph: str, begin: Callable[[], None],
                commit: Callable[[], None], label: str, durable: bool = True) -> dict[str, Any]:
    """The three SQL floors over a DB-API connection (``ph`` = paramstyle marker)."""
    cur = conn.cursor()
    key = str(uuid.uuid4())
    begin()
    cur.execute(f"INSERT INTO floor (uuid, parent, data) VALUES ({ph}, {ph}, {ph})",
                (key, "none", _data(0)))
    commit()
    payloads = [_data(i) for i in range(_durable_ops(sizes) if durable else sizes.floor_ops)]
    parents: list[str] = []

    def update(_r: int) -> float:
        def loop() -> None:
            for p in payloads:
                begin()
                cur.execute(f"UPDATE floor SET data = {ph} WHERE uuid = {ph}", (p, key))
                commit()
        return _per_item(len(payloads), loop)

    def bulk(_r: int) -> float:
        parent = str(uuid.uuid4())
        parents.append(parent)
        rows = [(str(uuid.uuid4()), parent, payloads[i % len(payloads)])
                for i in range(sizes.floor_rows)]

        def insert() -> None:
            begin()
            cur.executemany(
                f"INSERT INTO floor (uuid, parent, data) VALUES ({ph}, {ph}, {ph})", rows)
            commit()
        return _per_item(len(rows), insert)

    def select(r: int) -> float:
        parent = parents[r % len(parents)]

        def read() -> None:
            begin()
            cur.execute(f"SELECT uuid, data FROM floor WHERE parent = {ph}", (parent,))
            for _uuid, data in cur.fetchall():
                json.loads(data)
            commit()
        return _per_item(sizes.floor_rows, read)

    out = {"update": dict(_reps(sizes, update), what=f"{label} UPDATE + COMMIT"),
           "bulk": dict(_reps(sizes, bulk), what=f"{label} bulk INSERT, one transaction"),
           "select": dict(_reps(sizes, select), what=f"{label} SELECT + json.loads")}
    cur.close()
    return out


def sqlite_settings(workdir: str) -> dict[str, Any]:
    """journal_mode/synchronous the persistence sqlite backend runs with (defaults if unknown)."""
    path = os.path.join(tempfile.mkdtemp(prefix="probe-", dir=workdir), "probe.db")
    try:
        import persistence
        backend = persistence.fetch({"connection": f"sqlite:///{path}"})
    except Exception as err:
        return dict(SQLITE_DEFAULTS, source=f"sqlite defaults (backend not available: "
                                            f"{type(err).__name__})")
    try:
        with contextlib.closing(backend.get_connection()) as conn:
            conn.upgrade()
        engine = getattr(backend, "engine", None) or getattr(backend, "_engine", None)
        if engine is not None:
            with engine.connect() as sa_conn:
                mode = sa_conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                sync = sa_conn.exec_driver_sql("PRAGMA synchronous").scalar()
            return {"journal_mode": str(mode).lower(), "synchronous": int(sync),
                    "source": "read from the backend's own connection"}
        raw = sqlite3.connect(path)
        try:
            mode = raw.execute("PRAGMA journal_mode").fetchone()[0]
        finally:
            raw.close()
        sync = 1 if mode == "wal" else 2
        return {"journal_mode": mode, "synchronous": sync,
                "source": "journal_mode from the file; synchronous assumed"}
    finally:
        backend.close()


def sqlite_floors(sizes: Sizes, workdir: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The SQL floors on a sqlite file at the backend's journal mode and sync level."""
    path = os.path.join(tempfile.mkdtemp(prefix="floor-sqlite-", dir=workdir), "floor.db")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA journal_mode={settings['journal_mode']}")
        conn.execute(f"PRAGMA synchronous={int(settings['synchronous'])}")
        conn.execute("CREATE TABLE floor (uuid TEXT PRIMARY KEY, parent TEXT, data TEXT)")
        conn.execute("CREATE INDEX floor_parent ON floor (parent)")
        label = f"sqlite ({settings['journal_mode']}, synchronous={settings['synchronous']})"
        # WAL with synchronous <= NORMAL does not wait for the disk on commit.
        durable = not (settings["journal_mode"] == "wal" and int(settings["synchronous"]) <= 1)
        return _sql_floors(sizes, conn, "?", lambda: conn.execute("BEGIN"),
                           lambda: conn.execute("COMMIT"), label, durable)
    finally:
        conn.close()


def postgresql_floors(sizes: Sizes, services: Any) -> dict[str, Any]:
    import psycopg

    from .services import PG
    with services.pg_database(f"bench_floor_{uuid.uuid4().hex[:10]}") as name:
        with psycopg.connect(dbname=name, **PG) as conn:
            conn.execute("CREATE TABLE floor (uuid TEXT PRIMARY KEY, parent TEXT, data TEXT)")
            conn.execute("CREATE INDEX floor_parent ON floor (parent)")
            conn.commit()
            return _sql_floors(sizes, conn, "%s", lambda: None, conn.commit,
                               "PostgreSQL (psycopg 3)")


def mysql_floors(sizes: Sizes, services: Any) -> dict[str, Any]:
    import pymysql

    from .services import MY
    with services.mysql_database(f"bench_floor_{uuid.uuid4().hex[:10]}") as name:
        conn = pymysql.connect(database=name, autocommit=False, **MY)
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE floor (uuid VARCHAR(36) PRIMARY KEY, "
                            "parent VARCHAR(36), data MEDIUMTEXT, INDEX (parent)) "
                            "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
            conn.commit()
            return _sql_floors(sizes, conn, "%s", lambda: None, conn.commit,
                               "MariaDB (PyMySQL)")
        finally:
            conn.close()


# -- ZooKeeper ---------------------------------------------------------------------
def zookeeper_floors(sizes: Sizes, hosts: str) -> dict[str, Any]:
    from kazoo.client import KazooClient
    client = KazooClient(hosts=hosts, timeout=15)
    client.start(timeout=15)
    root = f"/floor-{uuid.uuid4().hex[:10]}"
    ops = _durable_ops(sizes)
    payloads = [_data(i).encode() for i in range(ops)]
    try:
        client.ensure_path(root)
        client.create(f"{root}/one", payloads[0])

        def set_(_r: int) -> float:
            return _per_item(ops, lambda: [client.set(f"{root}/one", p) for p in payloads])

        def create(r: int) -> float:
            client.create(f"{root}/r{r}")
            return _per_item(ops, lambda: [client.create(f"{root}/r{r}/{i}", p)
                                           for i, p in enumerate(payloads)])

        def get(r: int) -> float:
            paths = [f"{root}/r{r % sizes.reps}/{i}" for i in range(ops)]
            return _per_item(ops, lambda: [json.loads(client.get(p)[0]) for p in paths])

        def get_async(r: int) -> float:
            paths = [f"{root}/r{r % sizes.reps}/{i}" for i in range(ops)]

            def pipelined() -> None:
                for result in [client.get_async(p) for p in paths]:
                    json.loads(result.get()[0])
            return _per_item(ops, pipelined)

        out = {"update": dict(_reps(sizes, set_), what="kazoo set"),
               "bulk": dict(_reps(sizes, create), what="kazoo create (one per record)"),
               "select": dict(_reps(sizes, get), what="kazoo get + json.loads"),
               "select_pipelined": dict(_reps(sizes, get_async),
                                        what="kazoo get_async, all in flight + json.loads")}
        client.delete(root, recursive=True)
        return out
    finally:
        client.stop()
        client.close()


def measure(backend: str, sizes: Sizes, services: Any, workdir: str) -> dict[str, Any]:
    """The floors for ``backend`` (its service already checked)."""
    if backend == "memory":
        return json_floors(sizes)
    if backend == "dir":
        return file_floors(sizes, workdir)
    if backend == "sqlite":
        settings = sqlite_settings(workdir)
        out = sqlite_floors(sizes, workdir, settings)
        out["settings"] = settings
        return out
    if backend == "postgresql":
        return postgresql_floors(sizes, services)
    if backend == "mysql":
        return mysql_floors(sizes, services)
    if backend == "zookeeper":
        return zookeeper_floors(sizes, services.zk.hosts)
    raise ValueError(f"unknown backend {backend!r}")
