"""fetch() and backend(): URIs and dicts → entry point → configured backend, clear errors."""

from __future__ import annotations

import logging
import os
import sys
import traceback

import pytest

import persistence
from persistence.backends.dir import DirBackend
from persistence.backends.memory import MemoryBackend
from persistence.backends.url import make_url, mask_password
from persistence.exceptions import ConfigurationError, MissingDependency, NotFound, StorageFailure
from persistence.testing.samples import make_book
from tests.fixtures.echo_plugin import PLUGIN_MODULE

SECRET = "s3cr3t-Pa55w0rd"  # must never show up in errors, reprs or logs


def _received():
    return sys.modules[PLUGIN_MODULE].RECEIVED[-1]


# -- the built-in backends ----------------------------------------------------
def test_fetch_memory_uri():
    be = persistence.fetch("memory://")
    assert type(be) is MemoryBackend
    assert be.conf == {"connection": "memory://"}
    with be, be.get_connection() as conn:
        conn.upgrade()
        book = make_book()
        conn.save_logbook(book)
        assert conn.get_logbook(book.uuid).name == book.name


def test_fetch_dir_dict(tmp_path):
    store = tmp_path / "store"
    be = persistence.fetch({"connection": "dir", "path": str(store)})
    assert type(be) is DirBackend and be.path == str(store)
    with be, be.get_connection() as conn:
        conn.upgrade()
        conn.save_logbook(make_book())
    assert sorted(os.listdir(store / "books")) != []


def test_fetch_file_uri(tmp_path):
    be = persistence.fetch("file:///tmp/x")
    assert type(be) is DirBackend and be.path == "/tmp/x"
    assert be.conf["path"] == "/tmp/x"  # building it touches nothing on disk
    store = tmp_path / "x"
    with persistence.backend(f"file://{store}") as be:
        assert be.path == str(store)
        with be.get_connection() as conn:
            conn.validate()


def test_scheme_is_case_insensitive():
    assert type(persistence.fetch("MEMORY://")) is MemoryBackend


def test_available_backends_lists_the_built_in_ones():
    names = persistence.available_backends()
    assert {"memory", "dir", "file"} <= set(names) and names == sorted(names)


def test_uri_parts_land_in_the_conf():
    uri = f"memory://user:{SECRET}@db.example:4321/base"
    be = persistence.fetch(uri)
    assert be.conf == {"connection": uri, "host": "db.example", "port": 4321,
                       "path": "/base", "username": "user", "password": SECRET}
    assert be.path == "/base"  # the memory backend roots its tree at the URI path


def test_query_parameters_land_in_the_conf_and_are_converted(tmp_path):
    be = persistence.fetch(f"file://{tmp_path}/q?max_cache_size=7")
    assert be.conf["max_cache_size"] == "7"
    assert be.file_cache is not None and be.file_cache.maxsize == 7
    assert persistence.fetch(f"file://{tmp_path}/q?max_cache_size=0").file_cache is None


def test_dict_connection_may_be_a_uri_and_its_keys_win(tmp_path):
    be = persistence.fetch({"connection": "file:///from/uri?max_cache_size=5",
                            "path": str(tmp_path), "max_cache_size": 3})
    assert type(be) is DirBackend and be.path == str(tmp_path)
    assert be.file_cache.maxsize == 3


def test_dict_connection_may_name_a_backend_with_a_driver():
    assert type(persistence.fetch({"connection": "memory+anything"})) is MemoryBackend


def test_every_query_parameter_reaches_a_plugin(echo_plugin):
    uri = "echo://h1:1,h2:2/p/q?a=b&c=d&empty=&a2=%20x"
    be = persistence.fetch(uri)
    assert be.conf == {"connection": uri, "host": "h1", "port": 1, "hosts": "h1:1,h2:2",
                       "path": "/p/q", "a": "b", "c": "d", "empty": "", "a2": " x"}
    assert _received()["backend"] is be


def test_driver_suffix_is_split_off_the_backend_name(echo_plugin):
    be = persistence.fetch("echo+pymysql://root@localhost/db")
    assert be.conf["driver"] == "pymysql" and be.conf["username"] == "root"
    url = make_url("mysql+pymysql://u:p@h:3306/db?charset=utf8mb4")
    assert (url.backend, url.driver, url.host, url.port, url.path) == \
        ("mysql", "pymysql", "h", 3306, "/db")
    with pytest.raises(NotFound) as info:
        persistence.fetch("nosuch+pymysql://u@h/db")
    assert "'nosuch'" in str(info.value) and "nosuch+pymysql" not in str(info.value)


def test_mysql_with_driver_finds_the_mysql_entry_point():
    """Whatever the SQL backend then does, the lookup itself must succeed."""
    try:
        be = persistence.fetch("mysql+pymysql://root@127.0.0.1:1/nodb")
    except NotFound as err:
        pytest.fail(f"mysql+pymysql was not looked up as 'mysql': {err}")
    except Exception:  # found; whether it then loads is not this test's concern
        return
    be.close()
    assert type(be).__module__.startswith("persistence.backends.sql")


def test_fetch_kwargs_go_to_the_constructor(echo_plugin):
    client = object()
    be = persistence.fetch("echo://", client=client)
    assert be.kwargs == {"client": client}
    with pytest.raises(TypeError):
        persistence.fetch("memory://", client=client)  # the constructor's own error


def test_every_fetch_builds_a_fresh_backend(tmp_path):
    one, two = persistence.fetch("memory://"), persistence.fetch("memory://")
    assert one is not two and one.memory is not two.memory
    book = make_book()
    with one.get_connection() as conn:
        conn.upgrade()
        conn.save_logbook(book)
    with two.get_connection() as conn:
        conn.upgrade()
        assert list(conn.get_logbooks()) == []
    conf = {"connection": "dir", "path": str(tmp_path)}
    first, second = persistence.fetch(conf), persistence.fetch(conf)
    assert first is not second
    assert first.token is second.token  # one store: records of one are the other's too
    with persistence.backend(conf) as a, a.get_connection() as conn:
        conn.save_logbook(book)
    with persistence.backend(conf) as b, b.get_connection() as conn:
        assert conn.get_logbook(book.uuid).name == book.name  # same files, new object


# -- errors ------------------------------------------------------------------
def test_unknown_backend_names_it_and_lists_installed_ones():
    with pytest.raises(NotFound) as info:
        persistence.fetch("nope://host/x")
    message = str(info.value)
    assert "'nope'" in message
    for name in persistence.available_backends():
        assert name in message
    assert isinstance(info.value, LookupError)
    with pytest.raises(NotFound, match="'nope'"):
        persistence.fetch({"connection": "nope"})


def test_backend_whose_module_is_missing_is_a_missing_dependency(echo_plugin):
    with pytest.raises(MissingDependency) as info:
        persistence.fetch("echo-missing://")
    assert "'echo-missing'" in str(info.value) and "install" in str(info.value)
    assert isinstance(info.value.__cause__, ImportError)


@pytest.mark.parametrize("conf", [42, None, b"memory://", ["memory://"], {"path": "/x"},
                                  {"connection": 5}, {"connection": ""}],
                         ids=["int", "none", "bytes", "list", "no-connection", "int-connection",
                              "empty-connection"])
def test_wrong_conf_type_is_a_type_error_saying_what_was_expected(conf):
    with pytest.raises(TypeError) as info:
        persistence.fetch(conf)
    assert "connection" in str(info.value) or "URI" in str(info.value)


def test_backend_constructor_rejects_a_non_mapping():
    with pytest.raises(TypeError, match="mapping"):
        MemoryBackend(["memory"])


@pytest.mark.parametrize("uri", ["memory", "memory:/x", "://x"])
def test_strings_that_are_not_uris_are_configuration_errors(uri):
    with pytest.raises(ConfigurationError, match="not a backend URI"):
        persistence.fetch(uri)


def test_unknown_option_is_named(tmp_path):
    with pytest.raises(ConfigurationError) as info:
        persistence.fetch("memory://?colour=blue")
    assert "'colour'" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        persistence.fetch({"connection": "dir", "path": str(tmp_path), "bogus": 1,
                           "other_bogus": 2})
    message = str(info.value)
    assert "'bogus'" in message and "'other_bogus'" in message
    assert "max_cache_size" in message  # the known ones are listed too
    assert isinstance(info.value, ValueError)


def test_bad_option_value_is_named(tmp_path):
    with pytest.raises(ConfigurationError, match="max_cache_size"):
        persistence.fetch(f"file://{tmp_path}?max_cache_size=lots")


# -- secrets -------------------------------------------------------------------
def _all_text(err: BaseException) -> str:
    parts = ["".join(traceback.format_exception(err))]
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        parts += [str(err), repr(err), repr(err.args)]
        err = err.__cause__ or err.__context__
    return "\n".join(parts)


FAILING_CONFS = [
    f"nope://user:{SECRET}@host/db",
    f"nope+drv://user:{SECRET}@host:5/db?x=1",
    f"memory://user:{SECRET}@host/?colour=blue",
    f"memory://user:{SECRET}@host:notaport/",
    f"file://user:{SECRET}@host/tmp/x?max_cache_size=lots",
    f"mysql+pymysql://user:{SECRET}@127.0.0.1:1/db?bogus_option=1",
    {"connection": "memory", "password": SECRET, "colour": "blue"},
    {"connection": f"nope://user:{SECRET}@host/db"},
]


@pytest.mark.parametrize("conf", FAILING_CONFS, ids=range(len(FAILING_CONFS)))
def test_password_never_in_errors_or_logs(conf, caplog):
    caplog.set_level(logging.DEBUG)
    try:
        be = persistence.fetch(conf)
    except Exception as err:  # whatever it is, it must not leak the secret
        assert SECRET not in _all_text(err)
    else:  # a backend that builds lazily; then using it must not leak either
        assert SECRET not in repr(be)
        be.close()
    _assert_no_secret_logged(caplog)


def test_password_never_in_logs_of_a_successful_fetch(echo_plugin, caplog):
    caplog.set_level(logging.DEBUG)
    for conf in (f"echo://user:{SECRET}@host:1/p?a=b", f"memory://u:{SECRET}@h/",
                 {"connection": "echo", "password": SECRET}):
        with persistence.backend(conf) as be:
            assert SECRET not in repr(be)
    _assert_no_secret_logged(caplog)
    assert any("echo" in r.getMessage() for r in caplog.records)  # logging was captured


def _assert_no_secret_logged(caplog) -> None:
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + (record.exc_text or "")
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        assert SECRET not in text, record


def test_urls_mask_the_password():
    uri = f"sqlite+drv://user:{SECRET}@host:1/db?x=1"
    url = make_url(uri)
    assert url.password == SECRET
    for text in (repr(url), str(url), url.render(), mask_password(uri),
                 mask_password(f"a {uri} and postgresql://u:{SECRET}@h/db")):
        assert SECRET not in text and "***" in text
    assert url.render(hide_password=False) == uri


# -- backend() -------------------------------------------------------------------
def test_backend_context_manager_upgrades(tmp_path):
    plain = persistence.fetch({"connection": "dir", "path": str(tmp_path / "plain")})
    with plain.get_connection() as conn, pytest.raises(StorageFailure):
        conn.validate()  # nobody upgraded it
    with persistence.backend({"connection": "dir", "path": str(tmp_path / "ctx")}) as be:
        with be.get_connection() as conn:
            conn.validate()
    assert {"atom_details", "books", "flow_details"} <= set(os.listdir(tmp_path / "ctx"))


def test_backend_context_manager_closes_on_exit_and_on_error(echo_plugin):
    with persistence.backend("echo://") as be:
        assert not be.closed
    assert be.closed
    with pytest.raises(RuntimeError, match="inside"):
        with persistence.backend("echo://") as be:
            raise RuntimeError("inside")
    assert be.closed


def test_backend_context_manager_closes_when_upgrade_fails(echo_plugin):
    with pytest.raises(StorageFailure, match="upgrade failed"):
        with persistence.backend("echo://?fail_upgrade=1"):
            pytest.fail("the body must not run")
    assert _received()["backend"].closed


# -- the in-process registry ------------------------------------------------------
class _Recorder(MemoryBackend):
    """A backend class registered in-process; records the conf it got."""

    @classmethod
    def conf_from_url(cls, url):
        conf = super().conf_from_url(url)
        conf.pop("colour", None)   # this backend reads its own URL: drops what it ignores
        return conf


def test_register_backend_is_found_before_entry_points_without_installing_anything():
    from persistence.backends.registry import register_backend, unregister_backend
    register_backend("recorder", _Recorder)
    try:
        assert "recorder" in persistence.available_backends()
        with persistence.backend("recorder://?colour=blue") as be, be.get_connection() as conn:
            assert type(be) is _Recorder and "colour" not in be.conf
            book = make_book()
            conn.save_logbook(book)
            assert conn.get_logbook(book.uuid).name == book.name
        register_backend("recorder", f"{__name__}:_Recorder")   # a dotted target, imported
        assert type(persistence.fetch({"connection": "recorder"})) is _Recorder
    finally:
        unregister_backend("recorder")
    assert "recorder" not in persistence.available_backends()
    with pytest.raises(NotFound, match="'recorder'"):
        persistence.fetch("recorder://")
    with pytest.raises(NotFound):
        unregister_backend("recorder")


@pytest.mark.parametrize("name, target, error", [
    ("Upper", MemoryBackend, ValueError), ("a+b", MemoryBackend, ValueError),
    ("", MemoryBackend, ValueError), ("ok", "no_colon", ValueError), ("ok", dict, TypeError)])
def test_register_backend_rejects_bad_names_and_targets(name, target, error):
    from persistence.backends.registry import register_backend
    with pytest.raises(error):
        register_backend(name, target)


def test_builtin_table_names_what_the_entry_points_name():
    import importlib.metadata

    from persistence.backends.registry import BUILTIN, NAMESPACE
    own = importlib.metadata.distribution("persistence").entry_points.select(group=NAMESPACE)
    assert {ep.name: ep.value for ep in own} == {n: e.target for n, e in BUILTIN.items()}
