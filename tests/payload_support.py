"""Helpers of the payload tests: a pipeline conf, a second backend on a fixture's
store with that conf, and the raw bytes a store holds (to look for plaintext)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import persistence

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))


def full_pipeline(tmp_path: Any, **overrides: Any) -> dict[str, Any]:
    """msgpack + zstd + AES-GCM + offload at a tiny threshold (a local directory)."""
    conf = {"serializer": "msgpack", "compress": {"name": "zstd", "threshold": 16},
            "encrypt": {"keys": {"a": KEY_A}},
            "offload": {"url": str(tmp_path / "blobs"), "threshold": 256}}
    conf.update(overrides)
    return conf


@contextlib.contextmanager
def with_pipeline(backend: persistence.Backend, extra: dict[str, Any]
                  ) -> Iterator[persistence.Backend]:
    """A backend on ``backend``'s store (or a fresh one of its kind) configured with
    ``extra`` payload options."""
    with persistence.backend({**backend.conf, **extra}) as be:
        yield be


def raw_bytes(be: persistence.Backend) -> bytes:
    """Everything the store holds, as bytes: files, rows, znodes, fake-filesystem nodes."""
    parts: list[bytes] = []

    def add(value: Any) -> None:
        if value is None:
            return
        if isinstance(value, (bytes, bytearray, memoryview)):
            parts.append(bytes(value))
        else:
            parts.append(str(value).encode("utf-8"))

    if hasattr(be, "engine"):
        import sqlalchemy as sa
        with be.engine.connect() as conn:
            for table in sa.inspect(conn).get_table_names():
                for row in conn.execute(sa.text(f"SELECT * FROM {table}")):
                    for value in row:
                        add(value)
    elif type(be).__name__ == "MemoryBackend":
        for path in be.memory:
            add(be.memory.get(path))
    elif type(be).__name__ == "DirBackend":
        for root, _dirs, files in os.walk(be.path):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    parts.append(f.read())
    else:   # ZooKeeper
        client = be.client
        todo = [be.path]
        while todo:
            path = todo.pop()
            data, _ = client.get(path)
            add(data)
            todo.extend(f"{path.rstrip('/')}/{child}" for child in client.get_children(path))
    return b"\n".join(parts)
