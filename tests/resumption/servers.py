"""A PostgreSQL instance of the test's own, inside a network namespace.

The machine's main cluster (127.0.0.1:5432) is shared with other tests and
is never touched: this one is ``initdb``-ed into a temporary directory owned
by the ``postgres`` user, listens only on the server namespace's address and
trusts the test subnet.  It can be restarted mid-test (``pg_ctl restart``,
what ``pg_ctlcluster … restart`` runs for a packaged cluster).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile

__all__ = ["PostgreSQL", "postgres_missing"]


def _bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


def postgres_missing() -> str | None:
    if _bindir() is None:
        return "PostgreSQL server binaries are not installed (/usr/lib/postgresql/*/bin)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "there is no postgres user to run a PostgreSQL instance as"
    if shutil.which("runuser") is None:
        return "runuser is not installed: cannot start PostgreSQL as the postgres user"
    return None


class PostgreSQL:
    """Our own PostgreSQL on ``host:port`` in namespace ``ns`` (see the module doc)."""

    def __init__(self, exec_prefix: tuple[str, ...], host: str, subnet: str,
                 port: int = 5433) -> None:
        self.prefix = exec_prefix
        self.host, self.port = host, port
        self.bindir = _bindir()
        self.dir = tempfile.mkdtemp(prefix="persistence-pg-")
        user = pwd.getpwnam("postgres")
        os.chown(self.dir, user.pw_uid, user.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self._as_postgres(os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", "postgres",
                          "--auth=trust", "--no-sync", "-E", "UTF8", timeout=120)
        with open(os.path.join(self.data, "pg_hba.conf"), "a") as fh:
            fh.write(f"host all all {subnet} trust\n")
        self.options = (f"-c listen_addresses={host} -p {port} -k {self.dir} "
                        f"-c max_connections=100 -c shared_buffers=16MB")
        self.running = False

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{database}"

    def _as_postgres(self, *cmd: str, timeout: float = 60, netns: bool = False) -> None:
        full = [*(self.prefix if netns else ()), "runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                              cwd=self.dir)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:2])} failed ({done.returncode}): "
                               f"{done.stdout}{done.stderr}{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            with open(self.log) as fh:
                return "".join(fh.readlines()[-20:])
        except OSError:
            return ""

    def _ctl(self, *args: str) -> None:
        self._as_postgres(os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l", self.log,
                          "-o", self.options, "-w", "-t", "60", *args, timeout=90, netns=True)

    def start(self) -> None:
        self._ctl("start")
        self.running = True

    def restart(self) -> None:
        """Stop (fast: sessions are cut) and start again, as a server restart does."""
        self._ctl("-m", "fast", "restart")

    def stop(self) -> None:
        if self.running:
            self.running = False
            self._ctl("-m", "immediate", "stop")

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
