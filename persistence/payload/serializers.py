"""Serializers: JSON (the default, readable by any tool), msgpack, pickle.

Each turns a value into bytes for the later stages.  JSON writes exactly
what the record format stores today (UTF-8, ``NaN`` allowed, tuples as
lists); msgpack is smaller and faster and keeps bytes and integer keys;
pickle stores any Python object and is refused unless the pipeline has
``allow_pickle=True`` — reading a pickle runs code chosen by whoever can
write to the store.
"""

from __future__ import annotations

import json
import pickle
from typing import Any, ClassVar

from ..exceptions import MissingDependency

__all__ = ["JsonSerializer", "MsgpackSerializer", "PickleSerializer"]

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True)
_decoder = json.JSONDecoder()


class JsonSerializer:
    """UTF-8 JSON, as every record is stored."""

    name: ClassVar[str] = "json"
    unsafe: ClassVar[bool] = False

    def dumps(self, value: Any) -> bytes:
        """JSON bytes of ``value``."""
        return _encoder.encode(value).encode("utf-8")

    def loads(self, data: bytes) -> Any:
        """The value JSON bytes hold."""
        return _decoder.decode(bytes(data).decode("utf-8"))


class MsgpackSerializer:
    """MessagePack (``pip install 'persistence[payload]'``): compact and fast."""

    name: ClassVar[str] = "msgpack"
    unsafe: ClassVar[bool] = False

    def __init__(self) -> None:
        try:
            import msgpack
        except ImportError as err:
            raise MissingDependency("the msgpack serializer needs msgpack: "
                                    "pip install 'persistence[payload]'") from err
        self._packb = msgpack.packb
        self._unpackb = msgpack.unpackb

    def dumps(self, value: Any) -> bytes:
        """msgpack bytes of ``value`` (tuples become lists)."""
        return self._packb(value, use_bin_type=True)

    def loads(self, data: bytes) -> Any:
        """The value msgpack bytes hold (map keys of any type)."""
        return self._unpackb(data, raw=False, strict_map_key=False)


class PickleSerializer:
    """Python's pickle: any picklable object.  Unsafe with a store others can
    write to; the pipeline uses it only with ``allow_pickle=True``."""

    name: ClassVar[str] = "pickle"
    unsafe: ClassVar[bool] = True

    def dumps(self, value: Any) -> bytes:
        """Pickle bytes of ``value`` (protocol 5)."""
        try:
            return pickle.dumps(value, protocol=5)
        except (pickle.PicklingError, AttributeError) as err:
            raise TypeError(str(err)) from err

    def loads(self, data: bytes) -> Any:
        """The object pickle bytes hold (runs code the bytes name: trusted stores only)."""
        return pickle.loads(data)  # noqa: S301 - guarded by allow_pickle
