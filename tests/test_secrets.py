"""No credential in any log line, error, repr or CLI output, on any backend with one.

The password holds an unencoded ``@`` (the parser splits the user part at
the last ``@``; a mask stopping at the first one used to print the rest) and
each half is looked for separately.  Every attempt (right credentials, wrong
ones, an unreachable server) runs with every logger at its lowest level, and
everything it leaves is searched: log lines, the whole exception chain
(``__cause__``/``__context__``, str, repr, traceback), the reprs of the
backend and its connection, and the CLI's stdout and stderr with ``--debug``.

The machine's PostgreSQL trusts 127.0.0.1, so PostgreSQL is tested on a
private server of the test's own that checks passwords.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import traceback
import urllib.parse
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import persistence
from persistence.backends.url import make_url, mask_password
from persistence.exceptions import ConfigurationError
from persistence.tools.cli import app as cli
from tests.fixtures import _zkserver
from tests.fixtures.sql import ADMIN_URLS, server_database

HALVES = ("Hunter2x", "Zq9Wv7-k")
SECRET = "@".join(HALVES)
WRONG = "Wr0ngPw@Yy4Tt1"
ENCODED = urllib.parse.quote(SECRET, safe="")


def leaks(text: str) -> list[str]:
    """The parts of either password found in ``text``."""
    return [part for part in (*HALVES, *WRONG.split("@"), ENCODED) if part in text]


@pytest.fixture
def all_logs() -> Iterator[list[str]]:
    """Every log record of every logger, formatted with its traceback, while the test runs."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(f"{record.name}: {self.format(record)}")

    root = logging.getLogger()
    handler, level = Keep(level=1), root.level
    root.addHandler(handler)
    root.setLevel(1)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def chain_text(err: BaseException | None) -> str:
    """str, repr and traceback of ``err`` and of every exception it was raised from."""
    out, seen = [], set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        out += [str(err), repr(err), *traceback.format_exception(err)]
        err = err.__cause__ or err.__context__
    return "\n".join(out)


def attempt(conf) -> tuple[bool, str]:
    """(connected, everything the attempt left) for a backend built from ``conf``."""
    text = ""
    try:
        with persistence.backend(conf) as be:
            text += repr(be) + str(be)
            with contextlib.closing(be.get_connection()) as conn:
                text += repr(conn)
                list(conn.get_logbooks())
        return True, text
    except Exception as err:
        return False, text + chain_text(err)


def cli_debug(uri: str) -> str:
    """stdout and stderr of ``persistence --debug ls URI`` in a fresh process."""
    env = {k: v for k, v in os.environ.items() if k != cli.ENV_URI}
    done = subprocess.run([sys.executable, "-m", "persistence", "--debug", "ls", uri],
                          capture_output=True, text=True, env=env, timeout=120)
    return done.stdout + done.stderr


def check(uris: dict[str, str], expect: dict[str, bool], logs: list[str]) -> None:
    for label, uri in uris.items():
        connected, text = attempt(uri)
        assert connected is expect[label], (label, text[-2000:])
        assert not leaks(text), (label, leaks(text))
        assert not leaks("\n".join(logs)), (label, [line for line in logs if leaks(line)][:3])
    # The same URIs read as TaskFlow stores (another reader of the same credentials).
    for label, uri in uris.items():
        if label == "unreachable":   # (its query holds our options, not TaskFlow's)
            continue
        _, text = attempt(f"taskflow+{uri.partition('?')[0]}")
        assert not leaks(text) and not leaks("\n".join(logs)), ("taskflow+", label)
    # Two CLI runs are enough: one that connects, one that fails.
    for label in ("right", "unreachable"):
        out = cli_debug(uris[label])
        assert "DEBUG" in out and not leaks(out), (label, out[-2000:])


# -- the parser and the mask agree ----------------------------------------------------------

@pytest.mark.parametrize("uri", [
    f"postgresql://bob:{SECRET}@db.example:5432/flows",
    f"zookeeper://bob:{SECRET}@zk1:2181,zk2:2181/flows",
    f"mysql://bob:{ENCODED}@127.0.0.1/x?charset=utf8mb4",
])
def test_the_mask_hides_exactly_what_the_parser_calls_the_password(uri):
    url = make_url(uri)
    assert url.password == SECRET and url.username == "bob"
    for shown in (mask_password(uri), mask_password(f"failed on '{uri}': x@y"), repr(url),
                  str(url), url.render()):
        assert not leaks(shown) and "***" in shown, shown
        assert url.hosts[0][0] in shown


@pytest.mark.parametrize("password", ["pa/ss@", "p#w", "p?q", "12/abc"])
def test_a_password_the_parser_cannot_read_is_refused_or_masked_whole(password):
    uri = f"postgresql://bob:{password}word@h/db"
    assert "word" not in mask_password(uri) and password not in mask_password(uri)
    try:
        url = make_url(uri)
    except ConfigurationError as err:
        assert password not in str(err) and "percent-encode" in str(err)
    else:
        assert password not in repr(url)


def test_whitespace_in_the_user_part_is_refused_without_echoing_it():
    with pytest.raises(ConfigurationError, match="percent-encode") as err:
        make_url("postgresql://bob:Qx7 Kw9@h/db")
    assert "Qx7" not in str(err.value) and "Kw9" not in str(err.value)


def test_sqlalchemy_gets_the_password_our_parser_reads():
    from persistence.backends.sql.config import parse_url
    url = parse_url(f"postgresql+psycopg://bob:{SECRET}@db.example:5433/flows?sslmode=require")
    assert (url.password, url.host, url.port, url.database) == (SECRET, "db.example", 5433,
                                                                "flows")
    assert url.query == {"sslmode": "require"} and not leaks(repr(url))


# -- every backend with credentials ---------------------------------------------------------

def test_mysql_credentials_never_show(all_logs):
    user = f"pt_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN_URLS["mysql"], isolation_level="AUTOCOMMIT",
                             poolclass=sa.pool.NullPool)
    with server_database("mysql") as db_url:
        database = sa.make_url(db_url).database
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY '{SECRET}'")
            conn.exec_driver_sql(f"GRANT ALL ON `{database}`.* TO '{user}'@'%%'")
        try:
            base = "mysql://{user}:{pw}@127.0.0.1:3306/" + database
            check({"right": base.format(user=user, pw=SECRET),
                   "encoded": base.format(user=user, pw=ENCODED),
                   "wrong": base.format(user=user, pw=WRONG),
                   "unreachable": f"mysql://{user}:{SECRET}@127.0.0.1:1/{database}"
                                  f"?connect_timeout=1&retry_attempts=0"},
                  {"right": True, "encoded": True, "wrong": False, "unreachable": False},
                  all_logs)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'%%'")
            admin.dispose()


@pytest.fixture(scope="module")
def password_postgresql() -> Iterator[str]:
    """host:port of a private PostgreSQL that checks passwords (scram-sha-256 on
    127.0.0.1), with role ``bob`` (password SECRET) owning database ``flows``."""
    import psycopg

    from tests.conftest import unavailable
    from tests.resumption.servers import PostgreSQL, postgres_missing

    why = postgres_missing()
    if why:
        unavailable(why)
    server = PostgreSQL((), "127.0.0.1", "127.0.0.1/32", port=_zkserver.free_ports(1)[0])
    try:
        with open(os.path.join(server.data, "pg_hba.conf"), "w") as fh:
            fh.write("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
        server.start()
        with psycopg.connect(host=server.dir, port=server.port, user="postgres",
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f"CREATE ROLE bob LOGIN PASSWORD '{SECRET}'")
            conn.execute("CREATE DATABASE flows OWNER bob")
        yield f"127.0.0.1:{server.port}"
    finally:
        server.close()


def test_postgresql_credentials_never_show(all_logs, password_postgresql):
    base = f"postgresql://bob:{{pw}}@{password_postgresql}/flows?retry_attempts=0"
    check({"right": base.format(pw=SECRET), "encoded": base.format(pw=ENCODED),
           "wrong": base.format(pw=WRONG),
           "unreachable": f"postgresql://bob:{SECRET}@127.0.0.1:1/flows"
                          f"?connect_timeout=1&retry_attempts=0"},
          {"right": True, "encoded": True, "wrong": False, "unreachable": False}, all_logs)


def test_zookeeper_credentials_never_show(all_logs, zookeeper_hosts, zookeeper_admin):
    root = f"/persistence-tests/secrets-{uuid.uuid4().hex}"
    # Made by the admin (open ACL): bob would make it readable by bob only.
    zookeeper_admin.ensure_path("/persistence-tests")
    try:
        # The first backend creates the root with an ACL only these credentials pass.
        check({"right": f"zookeeper://bob:{SECRET}@{zookeeper_hosts}{root}?timeout=10",
               "wrong": f"zookeeper://bob:{WRONG}@{zookeeper_hosts}{root}?timeout=10",
               "unreachable": f"zookeeper://bob:{SECRET}@127.0.0.1:1{root}?timeout=1"},
              {"right": True, "wrong": False, "unreachable": False}, all_logs)
        assert any("Auth(" in line and "bob:***" in line for line in all_logs)
    finally:
        zookeeper_admin.add_auth("digest", f"bob:{SECRET}")   # to delete what bob made
        _zkserver.purge(zookeeper_admin, root)


@pytest.mark.parametrize("password", [123456789, "Hunter2x\x00Zq9Wv7-k"])
def test_a_password_option_of_the_wrong_kind_is_refused_without_its_value(password):
    from persistence.backends.registry import fetch
    with pytest.raises(ConfigurationError, match="'password' must be a string") as err:
        fetch({"connection": "zookeeper", "hosts": "127.0.0.1:1", "username": "bob",
               "password": password})
    assert "123456789" not in str(err.value) and not leaks(str(err.value))
