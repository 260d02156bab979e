"""The services a run talks to, and a fresh, throwaway store per measured process.

PostgreSQL and MariaDB are the machine's (127.0.0.1, trust / root without
password); ZooKeeper is started here, standalone, on a free loopback port with
its own config and data directory, and stopped at the end.  Every store a
worker gets (database, directory, sqlite file, znode root) is new and is
removed afterwards, so no run sees another's data.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

__all__ = ["Services", "BACKENDS"]

BACKENDS = ("memory", "dir", "sqlite", "postgresql", "mysql", "zookeeper")
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MY = {"host": "127.0.0.1", "port": 3306, "user": "root"}
ZK_JAR = "/usr/share/java/zookeeper.jar"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:200]


class ZooKeeper:
    """A standalone ZooKeeper server on loopback, from the Debian package's jars."""

    def __init__(self, workdir: str) -> None:
        self.dir = os.path.join(workdir, "zookeeper")
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        self.port = _free_port()
        self.hosts = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.version = ""

    def start(self, timeout: float = 30.0) -> None:
        conf = os.path.join(self.dir, "zoo.cfg")
        with open(conf, "w", encoding="utf-8") as fh:
            fh.write(f"tickTime=2000\ndataDir={self.dir}/data\nclientPort={self.port}\n"
                     f"clientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
                     f"maxClientCnxns=0\n")
        log = open(os.path.join(self.dir, "server.log"), "wb")
        self.proc = subprocess.Popen(
            ["java", "-Xmx2g", "-Dzookeeper.jmx.log4j.disable=true", "-cp", ZK_JAR,
             "org.apache.zookeeper.server.ZooKeeperServerMain", conf],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ZooKeeper exited with {self.proc.returncode} "
                                   f"(see {self.dir}/server.log)")
            reply = self._srvr()
            if "Mode:" in reply:
                first = reply.splitlines()[0]
                self.version = first.split(":", 1)[1].split("-")[0].strip()
                return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"ZooKeeper did not answer on {self.hosts} within {timeout:.0f} s")

    def _srvr(self) -> str:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b"srvr")
                return sock.recv(4096).decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None


class Services:
    """Availability checks, the ZooKeeper server, and per-worker stores."""

    def __init__(self, workdir: str | None = None) -> None:
        self.workdir = workdir or tempfile.mkdtemp(prefix="persistence-bench-")
        self.zk: ZooKeeper | None = None
        self.reasons: dict[str, str | None] = {}
        self.server_versions: dict[str, str] = {}

    # -- availability ------------------------------------------------------------
    def check(self, backend: str) -> str | None:
        """None if ``backend``'s service is reachable, else why not (cached)."""
        if backend not in self.reasons:
            try:
                self.reasons[backend] = getattr(self, f"_check_{backend}", lambda: None)()
            except Exception as err:
                self.reasons[backend] = _short(err)
        return self.reasons[backend]

    def _check_postgresql(self) -> str | None:
        try:
            import psycopg
        except ImportError as err:
            return f"psycopg (3) not installed ({err})"
        with psycopg.connect(dbname="postgres", connect_timeout=5, **PG) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        self.server_versions["PostgreSQL"] = version.split()[0]
        return None

    def _check_mysql(self) -> str | None:
        try:
            import pymysql
        except ImportError as err:
            return f"PyMySQL not installed ({err})"
        conn = pymysql.connect(connect_timeout=5, **MY)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT VERSION()")
                self.server_versions["MariaDB/MySQL"] = cur.fetchone()[0].split("-")[0]
        finally:
            conn.close()
        return None

    def _check_zookeeper(self) -> str | None:
        try:
            import kazoo  # noqa: F401
        except ImportError as err:
            return f"kazoo not installed ({err})"
        if shutil.which("java") is None or not os.path.exists(ZK_JAR):
            return f"java or {ZK_JAR} missing (apt-get install zookeeper)"
        self.zk = ZooKeeper(self.workdir)
        self.zk.start()
        self.server_versions["ZooKeeper"] = self.zk.version
        return None

    # -- stores --------------------------------------------------------------------
    @contextlib.contextmanager
    def fresh_store(self, backend: str, impl: str) -> Iterator[dict[str, Any]]:
        """Configuration of a new, empty store for ``impl`` on ``backend``; removed after."""
        tag = f"{impl[:4]}_{uuid.uuid4().hex[:10]}"
        if backend == "memory":
            yield {"connection": "memory"}
        elif backend in ("dir", "sqlite"):
            path = tempfile.mkdtemp(prefix=f"{backend}-{tag}-", dir=self.workdir)
            try:
                if backend == "dir":
                    yield {"connection": "dir", "path": os.path.join(path, "store")}
                else:
                    yield {"connection": f"sqlite:///{path}/bench.db"}
            finally:
                shutil.rmtree(path, ignore_errors=True)
        elif backend == "postgresql":
            with self.pg_database(f"bench_{tag}") as name:
                driver = "postgresql+psycopg2" if impl == "taskflow" else "postgresql"
                yield {"connection": f"{driver}://{PG['user']}@{PG['host']}:{PG['port']}/{name}"}
        elif backend == "mysql":
            with self.mysql_database(f"bench_{tag}") as name:
                yield {"connection":
                       f"mysql+pymysql://{MY['user']}@{MY['host']}:{MY['port']}/{name}"}
        elif backend == "zookeeper":
            # Left in place: the whole server's data directory goes at the end.
            conf = {"connection": "zookeeper", "hosts": self.zk.hosts if self.zk else "",
                    "path": f"/bench/{tag}"}
            if impl == "taskflow":
                # TaskFlow's version check uses the 'envi' four-letter word, which
                # ZooKeeper 3.8 does not allow by default; its own option skips it.
                conf["check_compatible"] = False
            yield conf
        else:
            raise ValueError(f"unknown backend {backend!r}")

    @contextlib.contextmanager
    def pg_database(self, name: str) -> Iterator[str]:
        import psycopg
        with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield name
        finally:
            with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @contextlib.contextmanager
    def mysql_database(self, name: str) -> Iterator[str]:
        import pymysql

        def run(sql: str) -> None:
            conn = pymysql.connect(autocommit=True, **MY)
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)
            finally:
                conn.close()

        run(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        try:
            yield name
        finally:
            run(f"DROP DATABASE IF EXISTS `{name}`")

    def close(self) -> None:
        if self.zk is not None:
            self.zk.stop()
            self.zk = None
        shutil.rmtree(self.workdir, ignore_errors=True)
