"""A backend configuration's payload options -> a :class:`~.pipeline.Pipeline`.

The options sit beside the backend's own, in the conf dict or the URI's
query string; every option is used or reported by name::

    {"connection": "postgresql://...",
     "serializer": "msgpack",                       # json (default), msgpack, pickle
     "allow_pickle": False,
     "compress": {"name": "zstd", "threshold": "1KiB", "level": 3},   # or "zstd"
     "encrypt": {"keys": {"2026-10": KEY_A, "2026-11": KEY_B}, "current": "2026-11"},
     "offload": {"url": "s3://bucket/prefix", "threshold": "256KiB",
                 "grace": 3600, "options": {...}}}                    # or the URL

In a URI: ``?serializer=msgpack&compress=zstd&compress_threshold=1KiB
&encrypt=env:FLOW_KEYS&encrypt_current=2026-11
&offload=s3://bucket/prefix&offload_threshold=256KiB&offload_grace=3600``.
Keys come from the conf (``keys``: id -> bytes or base64), an environment
variable (``env``: ``id:base64,id2:base64``; the current key is the last
listed unless ``current`` says otherwise) or a callable (``keys``:
``provider(key_id) -> key``, with ``current``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..exceptions import ConfigurationError
from .keys import KeyRing
from .offload import BlobStore
from .pipeline import Pipeline
from .registry import load_stage

__all__ = ["PAYLOAD_KEYS", "pipeline_from_conf", "parse_size"]

#: Configuration keys the pipeline takes (every backend accepts them).
PAYLOAD_KEYS = frozenset({"serializer", "allow_pickle", "compress", "compress_threshold",
                          "encrypt", "encrypt_env", "encrypt_current", "offload",
                          "offload_threshold", "offload_grace", "offload_read_from"})

_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3,
          "kib": 1024, "mib": 1024 ** 2, "gib": 1024 ** 3, "k": 1024, "m": 1024 ** 2}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def parse_size(name: str, value: Any) -> int:
    """Bytes from an integer or text such as ``"256KiB"``, ``"1MB"``, ``"4096"``."""
    if type(value) is int and value >= 0:
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if unit is None:
        raise ConfigurationError(f"option {name!r} must be a size in bytes (an integer, or "
                                 f"text like '256KiB', '1MB'), not {value!r:.60}")
    return int(float(match.group(1)) * unit)


def _seconds(name: str, value: Any) -> float:
    try:
        seconds = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        seconds = -1.0
    if seconds < 0:
        raise ConfigurationError(f"option {name!r} must be a number of seconds >= 0, "
                                 f"not {value!r:.60}")
    return seconds


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigurationError(f"option {name!r} must be a boolean (true/false/1/0), "
                             f"not {value!r:.60}")


def _named(option: str, value: Any, known: set[str]) -> tuple[str, dict[str, Any]]:
    """(name, the rest) of an option given as a name or a dict with ``name``."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        rest = {k: v for k, v in value.items() if k != "name"}
        return value["name"], rest
    raise ConfigurationError(f"option {option!r} must be a name or a dict with 'name' "
                             f"(and {', '.join(sorted(known)) or 'its stage options'}), "
                             f"not {value!r:.60}")


def _one(conf: Mapping[str, Any], option: str, nested: Any, flat: str) -> Any:
    if nested is not None and flat in conf:
        raise ConfigurationError(f"give the {option} {flat.partition('_')[2]} once: "
                                 f"either in {option!r} or as {flat!r}")
    return nested if nested is not None else conf.get(flat)


def _stage(kind: str, option: str, name: str, options: dict[str, Any]) -> Any:
    cls = load_stage(kind, name)
    try:
        return cls(**options)
    except TypeError as err:
        raise ConfigurationError(f"{option} {name!r} does not take option(s) "
                                 f"{', '.join(map(repr, sorted(options)))}: {err}") from None


def _keyring(conf: Mapping[str, Any], cipher: Any) -> KeyRing:
    spec = conf.get("encrypt")
    if isinstance(spec, str):
        if not spec.startswith("env:"):
            raise ConfigurationError("option 'encrypt' as text reads 'env:VARIABLE' (keys are "
                                     "never put in a URI); in a dict give 'keys' or 'env'")
        spec = {"env": spec[4:]}
    elif spec is None:
        spec = {}
    elif not isinstance(spec, Mapping):
        raise ConfigurationError(f"option 'encrypt' must be a dict ('keys' or 'env', "
                                 f"'current', 'cipher') or 'env:VARIABLE', not "
                                 f"{type(spec).__name__}")
    unknown = sorted(set(spec) - {"keys", "env", "current", "cipher"})
    if unknown:
        raise ConfigurationError(f"unknown encrypt option(s) {', '.join(map(repr, unknown))}; "
                                 f"known: keys, env, current, cipher")
    env_var = _one(conf, "encrypt", spec.get("env"), "encrypt_env")
    current = _one(conf, "encrypt", spec.get("current"), "encrypt_current")
    if (env_var is None) == ("keys" not in spec):
        raise ConfigurationError("encryption needs its keys from exactly one place: "
                                 "'keys' (a mapping or a callable) or 'env' (a variable)")
    if env_var is not None:
        return KeyRing.from_env(env_var, current, cipher.check_key)
    return KeyRing(spec["keys"], current, cipher.check_key)


def _read_from(conf: Mapping[str, Any]) -> tuple[str, ...]:
    """Other offload URLs whose blobs may be read (``offload_read_from``, or
    ``read_from`` in the offload dict): where earlier settings put them."""
    spec = conf.get("offload")
    value = _one(conf, "offload", spec.get("read_from") if isinstance(spec, Mapping)
                 else None, "offload_read_from")
    if value is None:
        return ()
    urls = [value] if isinstance(value, str) else value
    if not isinstance(urls, (list, tuple)) or not all(isinstance(u, str) and u.strip()
                                                      for u in urls):
        raise ConfigurationError("option 'offload_read_from' must be a URL or a list of "
                                 "URLs (earlier offload URLs whose blobs may be read)")
    return tuple(urls)


def _offload(conf: Mapping[str, Any]) -> tuple[BlobStore, int, float]:
    spec = conf["offload"]
    if isinstance(spec, str):
        spec = {"url": spec}
    if not isinstance(spec, Mapping) or not isinstance(spec.get("url"), str):
        raise ConfigurationError("option 'offload' must be a URL or a dict with 'url' "
                                 "(and 'threshold', 'grace', 'options', 'read_from')")
    unknown = sorted(set(spec) - {"url", "threshold", "grace", "options", "read_from"})
    if unknown:
        raise ConfigurationError(f"unknown offload option(s) {', '.join(map(repr, unknown))}; "
                                 f"known: url, threshold, grace, options, read_from")
    threshold = _one(conf, "offload", spec.get("threshold"), "offload_threshold")
    grace = _one(conf, "offload", spec.get("grace"), "offload_grace")
    return (BlobStore(spec["url"], spec.get("options")),
            parse_size("offload threshold", threshold if threshold is not None else 262144),
            _seconds("offload grace", grace if grace is not None else 3600))


def pipeline_from_conf(conf: Mapping[str, Any]) -> Pipeline:
    """The pipeline the payload options of a backend ``conf`` describe (other keys
    are ignored); ConfigurationError naming the option that is wrong."""
    if not any(key in conf for key in PAYLOAD_KEYS):
        return Pipeline()
    allow_pickle = _bool("allow_pickle", conf.get("allow_pickle", False))
    serializer = None
    if conf.get("serializer") is not None:
        name, options = _named("serializer", conf["serializer"], set())
        serializer = _stage("serializer", "serializer", name, options)
    compressor, compress_threshold = None, 1024
    if conf.get("compress") is not None:
        name, options = _named("compress", conf["compress"], {"threshold", "level"})
        threshold = _one(conf, "compress", options.pop("threshold", None), "compress_threshold")
        compressor = _stage("compressor", "compress", name, options)
        if threshold is not None:
            compress_threshold = parse_size("compress threshold", threshold)
    elif "compress_threshold" in conf:
        raise ConfigurationError("option 'compress_threshold' needs 'compress' (zstd, zlib)")
    cipher = keys = None
    if conf.get("encrypt") is not None or "encrypt_env" in conf:
        spec = conf.get("encrypt")
        name = spec.get("cipher", "aes-gcm") if isinstance(spec, Mapping) else "aes-gcm"
        cipher = _stage("cipher", "encrypt", name, {})
        keys = _keyring(conf, cipher)
    elif "encrypt_current" in conf:
        raise ConfigurationError("option 'encrypt_current' needs 'encrypt'")
    offload, offload_threshold, grace = None, 262144, 3600.0
    if conf.get("offload") is not None:
        offload, offload_threshold, grace = _offload(conf)
    elif "offload_threshold" in conf or "offload_grace" in conf:
        raise ConfigurationError("options 'offload_threshold' and 'offload_grace' need "
                                 "'offload' (a URL)")
    return Pipeline(serializer, compressor, compress_threshold, cipher, keys, offload,
                    offload_threshold, grace, allow_pickle, _read_from(conf))
