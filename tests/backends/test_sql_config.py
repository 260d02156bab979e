"""Configuration of the SQL backend: URL forms, options, engines, missing drivers, bad hosts."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap

import pytest
import sqlalchemy as sa

import persistence
from persistence.exceptions import ConfigurationError, MissingDependency, StorageFailure


def _url(conf, **kwargs) -> sa.URL:
    be = persistence.fetch(conf, **kwargs)
    try:
        return be.engine.url
    finally:
        be.close()


@pytest.mark.parametrize("conf,drivername,database", [
    ("sqlite://", "sqlite", None),
    ("sqlite:///relative.db", "sqlite", "relative.db"),
    ("sqlite:////abs/path.db", "sqlite", "/abs/path.db"),
    ({"connection": "sqlite", "path": "/abs/path.db"}, "sqlite", "/abs/path.db"),
    ("postgresql://u@h/db", "postgresql+psycopg", "db"),
    ("postgres://u@h/db", "postgresql+psycopg", "db"),
    ("postgresql+psycopg://u@h/db", "postgresql+psycopg", "db"),
    ("mysql://root@h/db", "mysql+pymysql", "db"),
    ("mysql+pymysql://root@h/db", "mysql+pymysql", "db"),
    ("sqlalchemy+sqlite:///x.db", "sqlite", "x.db"),
    ({"connection": "sqlalchemy", "url": "postgresql://u@h/db"}, "postgresql+psycopg", "db"),
    ({"connection": "postgresql", "host": "h", "port": 5433, "username": "u",
      "password": "pw", "database": "db"}, "postgresql+psycopg", "db"),
    ({"connection": "mysql", "host": "h", "user": "root", "database": "db"},
     "mysql+pymysql", "db"),
])
def test_url_forms(conf, drivername, database):
    url = _url(conf)
    assert (url.drivername, url.database) == (drivername, database)


def test_options_in_the_query_string_are_ours_the_rest_the_drivers():
    be = persistence.fetch("postgresql://u:pw@127.0.0.1/db?pool_size=3&retry_attempts=2"
                           "&retry_backoff=0.5&application_name=flows&echo=false")
    try:
        assert be.engine.pool.size() == 3
        assert be.retrying.stop.max_attempt_number == 2
        assert dict(be.engine.url.query) == {"application_name": "flows"}
        assert "pw" not in repr(be) and "***" in repr(be)
        # The backend reads its own URL: the driver's parameter is no option of ours.
        assert "application_name" not in be.conf and be.conf["pool_size"] == "3"
    finally:
        be.close()
    tf = persistence.fetch("taskflow+postgresql://u@127.0.0.1/db?application_name=flows")
    try:
        assert "application_name" not in tf.conf and "application_name=flows" in tf.location
    finally:
        tf.close()


def test_every_host_of_a_multi_host_uri_reaches_the_driver():
    """libpq's multi-host form: hosts in the query string, none in the netloc.  Dropping
    them would silently connect to the default server instead."""
    be = persistence.fetch("postgresql://u:pw@/db?host=10.1.0.1:5432&host=10.1.0.2:5433"
                           "&target_session_attrs=read-write&retry_attempts=3")
    try:
        assert be.engine.url.query["host"] == ("10.1.0.1:5432", "10.1.0.2:5433")
        assert be.engine.url.query["target_session_attrs"] == "read-write"
        assert be.retrying.stop.max_attempt_number == 3
    finally:
        be.close()
    single = persistence.fetch("postgresql://u@/db?host=10.1.0.9:6543")
    try:
        assert single.engine.url.query["host"] == "10.1.0.9:6543"
    finally:
        single.close()


def test_driver_parameters_reach_the_driver(backend_postgresql):
    url = backend_postgresql.engine.url.update_query_dict({"application_name": "flows-app"})
    with persistence.backend(url.render_as_string(hide_password=False)) as be:
        with be.engine.connect() as c:
            assert c.execute(sa.text("SHOW application_name")).scalar() == "flows-app"


@pytest.mark.parametrize("conf,message", [
    ({"connection": "sqlite://", "colour": "blue"}, "colour"),
    ({"connection": "sqlite://", "pool_size": 5}, "in-memory"),
    ({"connection": "sqlite:///x.db", "synchronous": "sometimes"}, "synchronous"),
    ({"connection": "sqlite:///x.db", "journal_mode": "fast"}, "journal_mode"),
    ({"connection": "sqlite:///x.db", "retry_attempts": -1}, "retry_attempts"),
    ({"connection": "sqlite:///x.db", "chunk_size": 0}, "chunk_size"),
    ({"connection": "sqlalchemy"}, "url"),
    ("sqlalchemy://x", "name the database"),
    ("sqlalchemy+nosuchdialect://x", "no dialect"),
])
def test_bad_configuration_is_reported_by_name(conf, message):
    with pytest.raises(ConfigurationError) as info:
        persistence.fetch(conf)
    assert message in str(info.value)


def test_sqlite_is_wal_with_synchronous_normal_by_default(tmp_path):
    with persistence.backend(f"sqlite:///{tmp_path}/a.db") as be, be.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 1
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_durability_options(tmp_path):
    conf = f"sqlite:///{tmp_path}/b.db?synchronous=full&journal_mode=delete"
    with persistence.backend(conf) as be, be.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2


def test_an_existing_engine_is_used_and_left_open(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/c.db")
    with persistence.backend({"connection": "sqlalchemy"}, engine=engine) as be:
        assert be.engine is engine
        with contextlib.closing(be.get_connection()) as conn:
            book = persistence.LogBook("with my engine")
            conn.save_logbook(book)
            assert conn.get_logbook(book.uuid).name == "with my engine"
    with engine.connect() as c:  # still usable: the backend did not dispose it
        assert c.execute(sa.text("SELECT COUNT(*) FROM logbooks")).scalar() == 1
    with pytest.raises(ConfigurationError, match="pool_size"):
        persistence.fetch({"connection": "sqlalchemy", "pool_size": 3}, engine=engine)
    engine.dispose()


_BLOCKED = textwrap.dedent("""
    import sys
    sys.modules[sys.argv[1]] = None   # as if the driver were not installed
    import persistence
    from persistence.exceptions import MissingDependency
    try:
        persistence.fetch(sys.argv[2])
    except MissingDependency as err:
        print(err)
    else:
        print("no error")
""")


@pytest.mark.parametrize("module,url,extra", [
    ("psycopg", "postgresql://u@127.0.0.1/db", "persistence[postgresql]"),
    ("pymysql", "mysql://root@127.0.0.1/db", "persistence[mysql]"),
])
def test_a_missing_driver_names_the_extra_to_install(module, url, extra):
    out = subprocess.run([sys.executable, "-c", _BLOCKED, module, url], capture_output=True,
                         text=True, timeout=60)
    assert f"pip install '{extra}'" in out.stdout, out.stdout + out.stderr
    assert issubclass(MissingDependency, ImportError)


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_an_unreachable_server_fails_in_bounded_time_without_the_password(scheme):
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    be = persistence.fetch(f"{scheme}://someone:s3cr3t-pw@127.0.0.1:1/db"
                           f"?retry_attempts=2&retry_backoff=0.01&connect_timeout=2")
    try:
        with contextlib.closing(be.get_connection()) as conn:
            with pytest.raises(StorageFailure) as info:
                conn.upgrade()
        message = str(info.value)
        assert "127.0.0.1:1" in message and "gave up after 3 attempts" in message
        assert "s3cr3t-pw" not in message and "s3cr3t-pw" not in repr(be)
        cause = info.value.__cause__
        assert cause is not None and "s3cr3t-pw" not in str(cause)
    finally:
        be.close()
