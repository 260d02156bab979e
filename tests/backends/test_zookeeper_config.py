"""ZooKeeper backend configuration: URI and dict forms, a caller's client, bad conf, dead hosts."""

from __future__ import annotations

import threading
import uuid

import pytest

import persistence
from persistence import states
from persistence.exceptions import ConfigurationError, StorageFailure
from tests.fixtures import _zkserver

kazoo = pytest.importorskip("kazoo")

from kazoo.client import KazooClient  # noqa: E402
from kazoo.security import make_digest_acl  # noqa: E402


def _round_trip(be: persistence.Backend) -> None:
    book = persistence.LogBook("book")
    fd = persistence.FlowDetail("flow", str(uuid.uuid4()))
    ad = persistence.TaskDetail("task", str(uuid.uuid4()))
    fd.add(ad)
    book.add(fd)
    with be.get_connection() as conn:
        conn.upgrade()
        conn.save_logbook(book)
        ad.put(states.SUCCESS, {"answer": 42})
        conn.update_atom_details(ad)
    with be.get_connection() as conn:
        got = conn.get_logbook(book.uuid)
        assert got.find(fd.uuid).find(ad.uuid).results == {"answer": 42}


# -- parsing (no server needed) -------------------------------------------------
def test_uri_gives_hosts_path_and_options():
    be = persistence.fetch("zookeeper://127.0.0.1:2181,127.0.0.1:2182/base/path?timeout=3"
                           "&chunk_size=1000&max_request_bytes=9000&multi_read=false")
    assert be.hosts == "127.0.0.1:2181,127.0.0.1:2182"
    assert be.path == "/base/path"
    assert (be.timeout, be.chunk_size, be.max_request_bytes, be.multi_read) == \
        (3.0, 1000, 9000, False)


@pytest.mark.parametrize("uri,hosts", [
    ("zookeeper://[::1]:2181,[::1]:2182/x", "[::1]:2181,[::1]:2182"),
    ("zookeeper://[::1]/x", "[::1]:2181"),
    ("zookeeper://zk1,[fe80::1]:2182/x", "zk1:2181,[fe80::1]:2182"),
    ("taskflow+zookeeper://[::1]:2181,[::1]:2182/x", "[::1]:2181,[::1]:2182"),
    ("taskflow+zookeeper://[::1]:2183/x", "[::1]:2183"),
])
def test_an_ensemble_s_hosts_become_a_list_kazoo_reads(uri, hosts):
    """IPv6 hosts keep their brackets: ``::1:2181`` is a bad hostname to kazoo."""
    from kazoo.hosts import collect_hosts

    be = persistence.fetch(uri)          # nothing connects before get_connection()
    try:
        assert be.hosts == hosts
        assert [h for h, _ in collect_hosts(be.hosts)[0]][0] in ("::1", "zk1")
    finally:
        be.close()


def test_dict_form_and_defaults():
    be = persistence.fetch({"connection": "zookeeper"})
    assert (be.hosts, be.path, be.timeout) == ("127.0.0.1:2181", "/taskflow", 10.0)
    assert (be.chunk_size, be.max_request_bytes, be.multi_read) == (512 * 1024, 1_000_000, True)
    be = persistence.fetch({"connection": "zookeeper", "hosts": ["zk1:2181", ("zk2", 2182)],
                            "path": "/a//b/", "timeout": "2.5"})
    assert (be.hosts, be.path, be.timeout) == ("zk1:2181,zk2:2182", "/a/b", 2.5)
    be = persistence.fetch("zookeeper://zk1/x")
    assert be.hosts == "zk1:2181"
    be = persistence.fetch("zookeeper://[::1]:2190/x")
    assert be.hosts == "[::1]:2190"


@pytest.mark.parametrize("conf, words", [
    ({"colour": "blue"}, ["colour"]),
    ({"path": "relative/path"}, ["absolute", "relative/path"]),
    ({"path": "/a/../b"}, ["'..'"]),
    ({"timeout": 0}, ["timeout"]),
    ({"timeout": "soon"}, ["timeout", "soon"]),
    ({"chunk_size": 999_000}, ["chunk_size", "max_request_bytes"]),
    ({"chunk_size": 0}, ["chunk_size"]),
    ({"hosts": 2181}, ["hosts"]),
    ({"hosts": "a:1,,b:2"}, ["hosts"]),
    ({"password": "s3cret"}, ["username"]),
    ({"multi_read": "maybe"}, ["multi_read"]),
])
def test_bad_configuration_is_a_configuration_error(conf, words):
    with pytest.raises(ConfigurationError) as info:
        persistence.fetch({"connection": "zookeeper", **conf})
    for word in words:
        assert word in str(info.value)
    assert "s3cret" not in str(info.value)


def test_a_client_that_is_not_kazoo_is_refused():
    with pytest.raises(TypeError):
        persistence.fetch({"connection": "zookeeper"}, client=object())


def test_unreachable_ensemble_fails_within_the_timeout_naming_the_hosts():
    ports = _zkserver.free_ports(2)  # nothing listens there
    hosts = ",".join(f"127.0.0.1:{p}" for p in ports)
    before = threading.active_count()
    be = persistence.fetch(f"zookeeper://{hosts}/x?timeout=1")
    with pytest.raises(StorageFailure) as info:
        be.get_connection()
    assert hosts in str(info.value)
    with pytest.raises(StorageFailure):
        with persistence.backend({"connection": "zookeeper", "hosts": hosts, "timeout": 0.5}):
            pass
    be.close()
    # The failed clients were stopped, not left reconnecting in the background.
    assert threading.active_count() <= before + 1


# -- against the session's server -------------------------------------------------
def test_uri_form_against_a_server(zookeeper_hosts, zookeeper_admin):
    root = f"/persistence-tests/{uuid.uuid4().hex}"
    try:
        with persistence.backend(f"zookeeper://{zookeeper_hosts}{root}?timeout=5") as be:
            _round_trip(be)
        assert sorted(zookeeper_admin.get_children(root)) == \
            ["atom_details", "books", "flow_details", "snapshot_data", "snapshots"]
    finally:
        _zkserver.purge(zookeeper_admin, root)


def test_pipelined_reads_without_multiread(zookeeper_backend_factory):
    _round_trip(zookeeper_backend_factory(multi_read=False))


def test_callers_client_is_used_and_left_open(zookeeper_hosts, zookeeper_admin):
    root = f"/persistence-tests/{uuid.uuid4().hex}"
    zookeeper_admin.ensure_path(root + "/chroot")
    client = KazooClient(hosts=f"{zookeeper_hosts}{root}/chroot")  # a chrooted client too
    client.start(timeout=10)
    try:
        with persistence.backend({"connection": "zookeeper", "path": "/mine"},
                                 client=client) as be:
            assert be.client is client
            _round_trip(be)
        assert client.connected
        assert zookeeper_admin.exists(f"{root}/chroot/mine/books")
        assert client.get_children("/mine/books")
    finally:
        client.stop()
        client.close()
        _zkserver.purge(zookeeper_admin, root)


def test_credentials_protect_the_records(zookeeper_hosts, zookeeper_admin):
    root = f"/persistence-tests/{uuid.uuid4().hex}"
    zookeeper_admin.create(root, acl=[make_digest_acl("owner", "s3cret", all=True)],
                           makepath=True)
    # the admin client must be able to purge the tree afterwards
    zookeeper_admin.add_auth("digest", "owner:s3cret")
    try:
        conf = {"connection": f"zookeeper://owner:s3cret@{zookeeper_hosts}{root}/store",
                "timeout": 5}
        with persistence.backend(conf) as be:
            _round_trip(be)
        stranger = persistence.fetch({"connection": "zookeeper", "hosts": zookeeper_hosts,
                                      "path": f"{root}/store", "timeout": 5})
        try:
            with pytest.raises(StorageFailure) as info:
                with stranger.get_connection() as conn:
                    list(conn.get_logbooks())
            assert "s3cret" not in str(info.value)
        finally:
            stranger.close()
    finally:
        _zkserver.purge(zookeeper_admin, root)
