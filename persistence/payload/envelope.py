"""The stored envelope: how one value was written, next to its bytes.

A value the pipeline transformed is stored, in place of the value, as a JSON
object holding the marker key :data:`MARKER`::

    {"$payload": 1, "serializer": "msgpack", "compression": "zstd",
     "cipher": "aes-gcm", "key": "2026-11", "data": "<base64>"}

``compression``, ``cipher`` and ``key`` appear only when that stage ran.
The bytes are either inline (``data``, base64) or offloaded (``ref``: where
the blob is, its size and sha256).  A value the default pipeline writes is
stored as itself, exactly as before; the only exception is a dict that holds
the marker key itself, which is wrapped (``{"$payload": 1, "value": ...}``)
so that it reads back as it was.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ..exceptions import CorruptRecord

__all__ = ["MARKER", "VERSION", "is_envelope", "escape", "aad", "pack_bytes", "unpack_bytes",
           "check", "refs_of"]

MARKER = "$payload"
VERSION = 1
_KNOWN = frozenset({MARKER, "serializer", "compression", "cipher", "key", "data", "ref",
                    "value"})
_REF_FIELDS = {"url": str, "key": str, "size": int, "sha256": str}


def is_envelope(stored: Any) -> bool:
    """Whether a stored value is an envelope (and not a value stored as itself)."""
    return type(stored) is dict and MARKER in stored


def escape(value: dict) -> dict:
    """The envelope of a dict holding the marker key, stored as itself inside."""
    return {MARKER: VERSION, "value": value}


def aad(envelope: dict) -> bytes:
    """The header a cipher authenticates: a changed stage name or key id fails."""
    return "|".join(("persistence-payload", str(VERSION), envelope["serializer"],
                     envelope.get("compression") or "", envelope["cipher"],
                     envelope["key"])).encode("utf-8")


def pack_bytes(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unpack_bytes(envelope: dict, where: str) -> bytes:
    try:
        return base64.b64decode(envelope["data"], validate=True)
    except (binascii.Error, ValueError, TypeError) as err:
        raise CorruptRecord(f"the stored value in {where} is not valid base64: {err}",
                            location=where) from err


def check(envelope: dict, where: str) -> dict:
    """``envelope`` if it is well formed; CorruptRecord saying what is wrong if not."""
    def bad(what: str) -> CorruptRecord:
        return CorruptRecord(f"the stored value in {where} is not a valid payload envelope: "
                             f"{what}", location=where)
    if envelope.get(MARKER) != VERSION:
        raise bad(f"unknown version {envelope.get(MARKER)!r:.40} (this library reads "
                  f"version {VERSION}; upgrade persistence)")
    unknown = sorted(set(envelope) - _KNOWN)
    if unknown:
        raise bad(f"unknown field(s) {', '.join(map(repr, unknown))}")
    if "value" in envelope:
        if len(envelope) != 2 or type(envelope["value"]) is not dict:
            raise bad("an escaped value is a dict alone")
        return envelope
    for name in ("serializer", "compression", "cipher", "key"):
        if name in envelope and not isinstance(envelope[name], str):
            raise bad(f"{name!r} is not a string")
    if "serializer" not in envelope:
        raise bad("no 'serializer'")
    if ("cipher" in envelope) != ("key" in envelope):
        raise bad("'cipher' and 'key' go together")
    if ("data" in envelope) == ("ref" in envelope):
        raise bad("exactly one of 'data' and 'ref' is expected")
    if "data" in envelope and not isinstance(envelope["data"], str):
        raise bad("'data' is not a string")
    if "ref" in envelope:
        ref = envelope["ref"]
        if type(ref) is not dict or any(type(ref.get(f)) is not t
                                        for f, t in _REF_FIELDS.items()):
            raise bad("'ref' needs url, key (strings), size (an integer) and sha256")
    return envelope


def refs_of(stored: Any) -> list[dict]:
    """The blob references a stored value holds (none, or one)."""
    if type(stored) is dict and type(stored.get("ref")) is dict and MARKER in stored:
        return [stored["ref"]]
    return []
