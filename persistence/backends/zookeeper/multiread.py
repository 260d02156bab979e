"""Many znode reads in few round trips.

ZooKeeper 3.6+ answers a *multiRead* request (opcode 22): a list of
getData/getChildren operations executed in one request, each with its own
result (a missing node fails only its own operation).  kazoo has no API for
it, so :class:`MultiRead` is a kazoo request object; kazoo's connection
serializes, sends and matches it like its own requests.  Reading 10,000
atoms this way costs a handful of requests instead of 10,000, and parsing in
one tight loop is far cheaper than kazoo's per-request bookkeeping.

Servers older than 3.6 do not know the opcode: the backend option
``multi_read=false`` (or an ``UnimplementedError`` from the server) switches
to pipelining ordinary ``get_async``/``get_children_async`` calls instead.
"""

from __future__ import annotations

import struct
from typing import Any

from kazoo.exceptions import EXCEPTIONS, ZookeeperError
from kazoo.protocol.states import ZnodeStat

__all__ = ["GET_DATA", "GET_CHILDREN", "MultiRead", "batches"]

GET_DATA = 4
GET_CHILDREN = 8
_ERROR = -1

_header = struct.Struct("!iBi")  # type, done, err
_int = struct.Struct("!i")
_stat = struct.Struct("!qqqqiiiqiiq")

# Requests must stay below the server's jute.maxbuffer (1 MiB by default);
# the count limit keeps single responses moderate and lets batches pipeline.
_MAX_OPS = 2000
_MAX_BYTES = 512 * 1024


def _error(code: int) -> ZookeeperError:
    klass = EXCEPTIONS[code] if code in EXCEPTIONS else ZookeeperError
    return klass()


class MultiRead:
    """A kazoo request reading ``ops`` (``(GET_DATA|GET_CHILDREN, full_path)``) at once.

    The response is a list, one entry per op: ``(data, ZnodeStat)`` for
    GET_DATA, a list of child names for GET_CHILDREN, or the kazoo exception
    instance of a failed op (e.g. ``NoNodeError``).
    """

    type = 22
    __slots__ = ("ops",)

    def __init__(self, ops: list[tuple[int, str]]) -> None:
        self.ops = ops

    def __repr__(self) -> str:
        return f"MultiRead({len(self.ops)} ops)"

    def serialize(self) -> bytearray:
        out = bytearray()
        for kind, path in self.ops:
            encoded = path.encode("utf-8")
            out += _header.pack(kind, False, -1)
            out += _int.pack(len(encoded))
            out += encoded
            out.append(0)  # no watch
        out += _header.pack(-1, True, -1)
        return out

    @staticmethod
    def deserialize(buf: bytes, offset: int) -> list[Any]:
        results: list[Any] = []
        header, read_int, read_stat = _header.unpack_from, _int.unpack_from, _stat.unpack_from
        while True:
            kind, done, err = header(buf, offset)
            offset += _header.size
            if done:
                return results
            if kind == GET_DATA:
                length = read_int(buf, offset)[0]
                offset += 4
                if length < 0:
                    data = b""
                else:
                    data = bytes(buf[offset:offset + length])
                    offset += length
                results.append((data, ZnodeStat._make(read_stat(buf, offset))))
                offset += _stat.size
            elif kind == GET_CHILDREN:
                count = read_int(buf, offset)[0]
                offset += 4
                names = []
                for _ in range(max(count, 0)):
                    length = read_int(buf, offset)[0]
                    offset += 4
                    names.append(bytes(buf[offset:offset + length]).decode("utf-8"))
                    offset += length
                results.append(names)
            elif kind == _ERROR:
                results.append(_error(read_int(buf, offset)[0]))
                offset += 4
            else:
                raise ValueError(f"unexpected operation type {kind} in a multiRead response")


def batches(ops: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """Split ``ops`` into request-sized batches, order kept."""
    out: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    size = 0
    for op in ops:
        op_size = 18 + len(op[1])
        if current and (len(current) >= _MAX_OPS or size + op_size > _MAX_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(op)
        size += op_size
    if current:
        out.append(current)
    return out
