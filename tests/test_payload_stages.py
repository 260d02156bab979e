"""Each stage of the payload pipeline on its own, its configuration and its errors."""

from __future__ import annotations

import base64
import json
import os
import pickle

import pytest

from persistence.exceptions import (
    ConfigurationError,
    CorruptRecord,
    MissingBlob,
    MissingKey,
    PayloadError,
    TamperedPayload,
    UnserializableValue,
)
from persistence.payload import (
    MARKER,
    BlobStore,
    KeyRing,
    Pipeline,
    available_stages,
    collecting,
    parse_size,
    pipeline_from_conf,
    refs_of,
    register_stage,
    unregister_stage,
)
from persistence.payload.ciphers import AesGcmCipher
from persistence.payload.compressors import ZlibCompressor, ZstdCompressor
from persistence.payload.serializers import JsonSerializer, MsgpackSerializer, PickleSerializer

KEY_A, KEY_B = os.urandom(32), os.urandom(32)
VALUE = {"name": "ünïcode", "n": [1, 2.5, None, True], "nested": {"k": "v" * 50}}


# -- serializers -------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [JsonSerializer, MsgpackSerializer, PickleSerializer])
def test_serializers_round_trip(cls):
    s = cls()
    assert s.loads(s.dumps(VALUE)) == VALUE


def test_json_serializer_writes_what_records_store_today():
    assert JsonSerializer().dumps({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()


def test_msgpack_keeps_bytes_and_integer_keys():
    s = MsgpackSerializer()
    assert s.loads(s.dumps({1: b"\x00\xff"})) == {1: b"\x00\xff"}


# -- compressors -------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [ZstdCompressor, ZlibCompressor])
def test_compressors_round_trip_and_shrink(cls):
    c, data = cls(), b"abc" * 10_000
    packed = c.compress(data)
    assert len(packed) < len(data) // 10 and c.decompress(packed) == data


@pytest.mark.parametrize("cls,bad", [(ZstdCompressor, 23), (ZlibCompressor, 0),
                                     (ZlibCompressor, "x")])
def test_compressor_levels_are_checked(cls, bad):
    with pytest.raises(ConfigurationError, match="level"):
        cls(level=bad)


# -- cipher and keys ---------------------------------------------------------------------
def test_aes_gcm_authenticates_data_and_header():
    c = AesGcmCipher()
    sealed = c.seal(KEY_A, b"secret", b"header")
    assert b"secret" not in sealed and c.open(KEY_A, sealed, b"header") == b"secret"
    for key, data, aad in [(KEY_B, sealed, b"header"), (KEY_A, sealed, b"other"),
                           (KEY_A, sealed[:-1] + bytes([sealed[-1] ^ 1]), b"header")]:
        with pytest.raises(ValueError, match="authentication failed"):
            c.open(key, data, aad)


def test_key_ring_sources_and_current_key(monkeypatch):
    ring = KeyRing({"a": KEY_A, "b": base64.b64encode(KEY_B).decode()})
    assert ring.current == "b" and ring.key("b") == KEY_B
    assert KeyRing({"a": KEY_A, "b": KEY_B}, current="a").current == "a"
    urlsafe = base64.urlsafe_b64encode(KEY_A).decode().rstrip("=")
    monkeypatch.setenv("TEST_KEYS", f"a:{urlsafe}, b:{base64.b64encode(KEY_B).decode()}")
    env_ring = KeyRing.from_env("TEST_KEYS")
    assert env_ring.current == "b" and env_ring.key("a") == KEY_A
    asked = []
    provided = KeyRing(lambda kid: asked.append(kid) or {"k1": KEY_A}.get(kid), current="k1")
    assert provided.key("k1") == KEY_A and provided.key("k1") == KEY_A and asked == ["k1"]
    with pytest.raises(MissingKey, match="'zz'") as err:
        provided.key("zz")
    assert err.value.key_id == "zz"


@pytest.mark.parametrize("keys,current,match", [
    ({}, None, "no encryption key"),
    ({"a": b"short"}, None, "16, 24 or 32 bytes"),
    ({"a": "not base64!"}, None, "not valid base64"),
    ({"a|b": KEY_A}, None, "key id"),
    ({"a": KEY_A}, "b", "not among"),
    (lambda kid: KEY_A, None, "need 'current'"),
])
def test_bad_keys_are_refused_without_showing_them(keys, current, match):
    with pytest.raises(ConfigurationError, match=match) as err:
        KeyRing(keys, current, AesGcmCipher().check_key)
    assert KEY_A.hex() not in str(err.value) and "short" not in str(err.value)


def test_key_ring_repr_and_errors_hold_ids_only():
    ring = KeyRing({"a": KEY_A})
    text = repr(ring) + repr(pipeline_from_conf({"encrypt": {"keys": {"a": KEY_A}}}))
    assert "a" in text and KEY_A.hex() not in text and base64.b64encode(KEY_A).decode() \
        not in text


# -- the pipeline --------------------------------------------------------------------------
FULL = {"serializer": "msgpack", "compress": {"name": "zstd", "threshold": 64},
        "encrypt": {"keys": {"a": KEY_A}}, "offload": {"url": "memory://stages-test",
                                                        "threshold": 512}}


def test_default_pipeline_stores_values_as_themselves():
    p = Pipeline()
    assert p.is_default
    for value in (VALUE, [1, 2], "text", 3, None):
        assert p.encode(value, "results", "atom") is value
        assert p.decode(value, "here") is value


def test_a_dict_holding_the_marker_is_escaped_and_reads_back():
    for p in (Pipeline(), pipeline_from_conf({"compress": "zlib"})):
        value = {MARKER: "mine", "x": 1}
        stored = p.encode(value, "results", "atom")
        assert stored == {MARKER: 1, "value": value}
        assert p.decode(json.loads(json.dumps(stored)), "here") == value


def test_full_pipeline_round_trips_inline_and_offloaded_values():
    p = pipeline_from_conf(FULL)
    small, large = {"k": "v"}, {"blob": os.urandom(2000).hex()}
    s_small, s_large = p.encode(small, "results", "atom"), p.encode(large, "results", "atom")
    assert s_small["cipher"] == "aes-gcm" and s_small["key"] == "a" and "data" in s_small
    assert "ref" in s_large and s_large["ref"]["size"] > 512 and refs_of(s_large)
    for stored, value in ((s_small, small), (s_large, large)):
        assert p.decode(json.loads(json.dumps(stored)), "here") == value


def test_compression_applies_from_its_threshold_and_only_when_smaller():
    p = pipeline_from_conf({"compress": {"name": "zlib", "threshold": "1KiB"}})
    assert p.encode("x" * 100, "results", "atom") == "x" * 100    # below: as itself
    stored = p.encode("x" * 2000, "results", "atom")
    assert stored["compression"] == "zlib" and p.decode(stored, "h") == "x" * 2000
    packed = pipeline_from_conf({"serializer": "msgpack", "compress": "zlib"})
    noise = os.urandom(3000)
    stored = packed.encode(noise, "results", "atom")
    assert "compression" not in stored and packed.decode(stored, "h") == noise  # no gain


def test_unencodable_value_names_the_record_and_the_type():
    for p in (pipeline_from_conf({"serializer": "msgpack"}),
              pipeline_from_conf({"compress": "zlib"})):
        with pytest.raises(UnserializableValue, match=r"TaskDetail 'fetch'.*'set'") as err:
            p.encode({"ok": 1, "bad": [1, {2, 3}]}, "results", "TaskDetail 'fetch'")
        assert err.value.type_name == "set" and err.value.field == "results"
        assert err.value.record == "TaskDetail 'fetch'"


def test_pickle_needs_allow_pickle_to_write_and_to_read():
    with pytest.raises(ConfigurationError, match="allow_pickle"):
        pipeline_from_conf({"serializer": "pickle"})
    p = pipeline_from_conf({"serializer": "pickle", "allow_pickle": "true"})
    stored = p.encode({1, 2}, "results", "atom")
    assert p.decode(stored, "h") == {1, 2}
    with pytest.raises(PayloadError, match="allow_pickle=True"):
        Pipeline().decode(stored, "h")
    assert pickle.loads(base64.b64decode(stored["data"])) == {1, 2}


def test_wrong_or_missing_key_and_tampering_are_typed_errors():
    p = pipeline_from_conf({"encrypt": {"keys": {"a": KEY_A}}})
    stored = p.encode("secret value", "results", "atom")
    with pytest.raises(MissingKey, match="'a'") as err:
        pipeline_from_conf({"encrypt": {"keys": {"b": KEY_B}}}).decode(stored, "atom x")
    assert err.value.key_id == "a"
    with pytest.raises(MissingKey, match="'a'"):
        Pipeline().decode(stored, "atom x")
    with pytest.raises(TamperedPayload, match="'a'") as err:
        pipeline_from_conf({"encrypt": {"keys": {"a": KEY_B}}}).decode(stored, "atom x")
    assert err.value.key_id == "a"
    data = bytearray(base64.b64decode(stored["data"]))
    data[-3] ^= 0x40
    for forged in ({**stored, "data": base64.b64encode(bytes(data)).decode()},
                   {**stored, "serializer": "msgpack"}):
        with pytest.raises(TamperedPayload):
            p.decode(forged, "atom x")


def test_rotation_reads_old_keys_and_writes_under_the_current_one():
    old = pipeline_from_conf({"encrypt": {"keys": {"a": KEY_A}}})
    stored_a = old.encode("one", "results", "atom")
    both = pipeline_from_conf({"encrypt": {"keys": {"a": KEY_A, "b": KEY_B}}})
    stored_b = both.encode("two", "results", "atom")
    assert stored_b["key"] == "b"
    assert both.decode(stored_a, "h") == "one" and both.decode(stored_b, "h") == "two"


@pytest.mark.parametrize("stored,match", [
    ({MARKER: 2, "serializer": "json", "data": ""}, "unknown version"),
    ({MARKER: 1, "serializer": "json"}, "exactly one of 'data' and 'ref'"),
    ({MARKER: 1, "serializer": "json", "data": "", "extra": 1}, "unknown field"),
    ({MARKER: 1, "serializer": "json", "data": "!!!"}, "base64"),
    ({MARKER: 1, "serializer": "json", "ref": {"url": "x"}}, "'ref' needs"),
    ({MARKER: 1, "serializer": "json", "cipher": "aes-gcm", "data": ""}, "go together"),
    ({MARKER: 1, "serializer": "json", "compression": "zlib", "data": "AAAA"}, "decompress"),
])
def test_malformed_envelopes_are_corrupt_records(stored, match):
    with pytest.raises(CorruptRecord, match=match):
        Pipeline().decode(stored, "atom x")


def test_an_unknown_stage_in_a_stored_envelope_is_named():
    with pytest.raises(PayloadError, match="compressor 'lz9'"):
        Pipeline().decode({MARKER: 1, "serializer": "json", "compression": "lz9",
                           "data": ""}, "atom x")


def test_collecting_notes_envelopes_without_keys_or_blobs():
    p = pipeline_from_conf(FULL)
    stored = [p.encode({"blob": "z" * 4000 + os.urandom(600).hex()}, "results", "atom"),
              p.encode("small", "results", "atom"), "plain"]
    reader = Pipeline()       # no keys, no offload configured
    with collecting() as found:
        assert [reader.decode(s, "h") for s in stored] == [None, None, "plain"]
    assert found == stored[:2]


# -- configuration -----------------------------------------------------------------------
def test_sizes():
    assert [parse_size("t", v) for v in (10, "10", "1KiB", "1.5 MB", "2k")] == \
        [10, 10, 1024, 1_500_000, 2048]
    with pytest.raises(ConfigurationError, match="'t'"):
        parse_size("t", "ten")


@pytest.mark.parametrize("conf,match", [
    ({"serializer": "yaml"}, "no serializer named 'yaml'"),
    ({"compress": "zstd", "compress_threshold": "big"}, "compress threshold"),
    ({"compress_threshold": 10}, "needs 'compress'"),
    ({"compress": {"name": "zlib", "threshold": 1}, "compress_threshold": 2}, "once"),
    ({"compress": {"name": "zlib", "speed": 1}}, "does not take"),
    ({"encrypt": "k1:abc"}, "env:VARIABLE"),
    ({"encrypt": {"keys": {"a": KEY_A}, "colour": 1}}, "unknown encrypt option"),
    ({"encrypt": {"env": "X", "keys": {"a": KEY_A}}}, "exactly one place"),
    ({"encrypt": "env:PERSISTENCE_TEST_UNSET_VARIABLE"}, "is not set"),
    ({"offload": {"path": "/x"}}, "'url'"),
    ({"offload": {"url": "memory://x", "ttl": 1}}, "unknown offload option"),
    ({"offload": "memory://x", "offload_grace": -1}, "seconds"),
    ({"offload_threshold": 1}, "need 'offload'"),
])
def test_bad_configuration_names_the_option(conf, match):
    with pytest.raises(ConfigurationError, match=match):
        pipeline_from_conf(conf)


def test_flat_uri_options_configure_the_same_pipeline(monkeypatch):
    monkeypatch.setenv("TEST_KEYS", f"k1:{base64.b64encode(KEY_A).decode()}")
    p = pipeline_from_conf({"serializer": "msgpack", "compress": "zstd",
                            "compress_threshold": "2KiB", "encrypt": "env:TEST_KEYS",
                            "encrypt_current": "k1", "offload": "memory://flat",
                            "offload_threshold": "1MiB", "offload_grace": "60"})
    assert (p.compress_threshold, p.offload_threshold, p.grace, p.keys.current) == \
        (2048, 1 << 20, 60.0, "k1")
    assert p.describe() == ("msgpack + zstd>=2048B + aes-gcm[k1] + offload>=1048576B "
                            "to memory://flat")


def test_stages_register_and_are_listed():
    class Upper:
        name, unsafe = "upper", False

        def dumps(self, value):
            return json.dumps(value).upper().encode()

        def loads(self, data):
            return json.loads(data.decode().lower())

    register_stage("serializer", "upper", Upper)
    try:
        assert "upper" in available_stages("serializer")
        p = pipeline_from_conf({"serializer": "upper"})
        stored = p.encode("abc", "results", "atom")
        assert base64.b64decode(stored["data"]) == b'"ABC"' and p.decode(stored, "h") == "abc"
    finally:
        unregister_stage("serializer", "upper")
    assert {"json", "msgpack", "pickle"} <= set(available_stages("serializer"))
    assert {"zstd", "zlib"} <= set(available_stages("compressor"))


def test_builtin_stages_match_the_entry_points():
    import importlib.metadata

    from persistence.payload.registry import BUILTIN, GROUPS
    for kind, group in GROUPS.items():
        eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=group)}
        ours = {name: entry.target for (k, name), entry in BUILTIN.items() if k == kind}
        assert {n: eps.get(n) for n in ours} == ours


# -- offload -----------------------------------------------------------------------------
def _store_round_trip(store: BlobStore):
    data = os.urandom(5000)
    ref = store.put(data)
    assert ref["key"].startswith(ref["sha256"][:2] + "/" + ref["sha256"] + "-")
    assert store.get(ref, "atom x") == data
    assert store.put(data)["key"] != ref["key"]         # never shared between writes
    assert {k for k, _ in store.blobs()} >= {ref["key"]}
    return ref


def test_offload_to_a_local_directory(tmp_path):
    store = BlobStore(str(tmp_path / "blobs"))
    ref = _store_round_trip(store)
    path = tmp_path / "blobs" / ref["key"]
    path.write_bytes(b"x" + path.read_bytes()[1:])
    with pytest.raises(TamperedPayload, match="does not match"):
        store.get(ref, "atom x")
    assert store.delete([ref["key"], "00/missing"]) == 1
    with pytest.raises(MissingBlob, match="missing"):
        store.get(ref, "atom x")
    with pytest.raises(TamperedPayload, match="escapes"):
        store.get({**ref, "key": "../../etc/passwd"}, "atom x")


def test_offload_to_s3(s3_offload):
    store = BlobStore(s3_offload["url"], s3_offload["options"])
    ref = _store_round_trip(store)
    assert all(mtime is not None for _, mtime in store.blobs())
    store.fs.pipe_file(store._path(ref["key"]), b"forged")
    with pytest.raises(TamperedPayload):
        store.get(ref, "atom x")
    store.delete([ref["key"]])
    with pytest.raises(MissingBlob):
        store.get(ref, "atom x")


def test_pipeline_offloads_to_s3_and_reads_back(s3_offload):
    p = pipeline_from_conf({"compress": "zstd", "offload": {**s3_offload, "threshold": 100}})
    value = {"rows": [os.urandom(16).hex() for _ in range(200)]}
    stored = p.encode(value, "results", "atom")
    assert stored["ref"]["url"] == s3_offload["url"]
    assert p.decode(json.loads(json.dumps(stored)), "h") == value
    assert p.delete_refs(refs_of(stored)) == 1
