"""Records larger than one znode: a small header in the record's znode, parts below it.

A record's znode holds either the record itself, nothing (a node being
written or deleted, which readers treat as absent), or a header::

    b"\\x00zk-chunks:" + {"gen": "<id>", "parts": n, "size": bytes, "crc": crc32}

whose parts live at ``<record>/.chunks/<gen>-<i>``.  A new generation's parts
are written before the header that names them and the old generation's are
deleted after it, so a reader holding a header finds its parts unless a
newer header replaced it meanwhile (then it reads again).  Names starting
with ``.`` cannot be uuids (the core refuses them), so parts never collide
with the links a flow or logbook keeps as children.
"""

from __future__ import annotations

import json
import uuid
import zlib
from typing import Any

from ...exceptions import SerializationError

__all__ = ["CHUNKS", "is_header", "make_header", "parse_header", "split", "part_paths",
           "join_parts", "new_generation"]

CHUNKS = ".chunks"
_MARK = b"\x00zk-chunks:"


def new_generation() -> str:
    return uuid.uuid4().hex[:16]


def is_header(data: bytes) -> bool:
    return data[:1] == b"\x00"


def make_header(gen: str, parts: int, data: bytes) -> bytes:
    body = {"gen": gen, "parts": parts, "size": len(data), "crc": zlib.crc32(data)}
    return _MARK + json.dumps(body, separators=(",", ":")).encode("ascii")


def parse_header(data: bytes, where: str) -> dict[str, Any]:
    if not data.startswith(_MARK):
        raise SerializationError(f"stored data in {where} is neither a record nor a "
                                 f"chunk header this version understands")
    try:
        head = json.loads(data[len(_MARK):])
        if not (isinstance(head["gen"], str) and isinstance(head["parts"], int)
                and isinstance(head["size"], int) and isinstance(head["crc"], int)):
            raise TypeError("bad field types")
    except (ValueError, KeyError, TypeError) as err:
        raise SerializationError(f"chunk header in {where} is corrupt: {err}") from err
    return head


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def part_paths(path: str, head: dict[str, Any]) -> list[str]:
    return [f"{path}/{CHUNKS}/{head['gen']}-{i}" for i in range(head["parts"])]


def join_parts(parts: list[bytes], head: dict[str, Any]) -> bytes | None:
    """The record the parts make up, or None if they do not match the header."""
    data = b"".join(parts)
    if len(data) != head["size"] or zlib.crc32(data) != head["crc"]:
        return None
    return data
