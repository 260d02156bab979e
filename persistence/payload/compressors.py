"""Compressors: zstd (fast, good ratio) and zlib (no dependency).

The pipeline compresses a serialized value only from its ``threshold`` on
(small values do not shrink) and keeps the result only when it is smaller.
"""

from __future__ import annotations

import zlib
from typing import Any, ClassVar

from ..exceptions import ConfigurationError, MissingDependency

__all__ = ["ZstdCompressor", "ZlibCompressor"]


def _level(value: Any, low: int, high: int, name: str) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if type(value) is not int or not low <= value <= high:
        raise ConfigurationError(f"the {name} level must be an integer from {low} to {high}, "
                                 f"not {value!r:.60}")
    return value


class ZstdCompressor:
    """Zstandard (``pip install 'persistence[payload]'``); ``level`` 1-22 (default 3)."""

    name: ClassVar[str] = "zstd"

    def __init__(self, level: Any = 3) -> None:
        try:
            import zstandard
        except ImportError as err:
            raise MissingDependency("the zstd compressor needs zstandard: "
                                    "pip install 'persistence[payload]'") from err
        self.level = _level(level, 1, 22, "zstd")
        self._zstd = zstandard
        self._compressor = zstandard.ZstdCompressor(level=self.level, write_content_size=True)

    def compress(self, data: bytes) -> bytes:
        """A zstd frame holding ``data`` (with its size, for one-shot decompression)."""
        return self._compressor.compress(data)

    def decompress(self, data: bytes) -> bytes:
        """The bytes a zstd frame holds."""
        # A fresh decompressor per call: zstandard's objects are not thread-safe.
        return self._zstd.ZstdDecompressor().decompress(data)


class ZlibCompressor:
    """zlib from the standard library; ``level`` 1-9 (default 6)."""

    name: ClassVar[str] = "zlib"

    def __init__(self, level: Any = 6) -> None:
        self.level = _level(level, 1, 9, "zlib")

    def compress(self, data: bytes) -> bytes:
        """A zlib stream holding ``data``."""
        return zlib.compress(data, self.level)

    def decompress(self, data: bytes) -> bytes:
        """The bytes a zlib stream holds."""
        return zlib.decompress(data)
