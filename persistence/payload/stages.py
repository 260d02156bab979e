"""What a pipeline stage is: the three small interfaces a plugin implements.

A stage class is found by name (:mod:`.registry`) and built with the options
the configuration gives it as keyword arguments.  Stages are stateless apart
from their options, so one instance serves every thread.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

__all__ = ["Serializer", "Compressor", "Cipher"]


@runtime_checkable
class Serializer(Protocol):
    """Turns a value into bytes and back."""

    #: The name stored in each envelope (the registry name).
    name: ClassVar[str]
    #: Whether reading untrusted bytes with it can run code (pickle): such a
    #: serializer is used only with ``allow_pickle=True``.
    unsafe: ClassVar[bool]

    def dumps(self, value: Any) -> bytes:
        """The bytes of ``value``; TypeError/ValueError/OverflowError if it cannot."""

    def loads(self, data: bytes) -> Any:
        """The value ``data`` holds; ValueError (or another error) if it is corrupt."""


@runtime_checkable
class Compressor(Protocol):
    """Makes bytes smaller and restores them."""

    name: ClassVar[str]

    def compress(self, data: bytes) -> bytes:
        """``data`` compressed."""

    def decompress(self, data: bytes) -> bytes:
        """The bytes :meth:`compress` was given; an error if ``data`` is corrupt."""


@runtime_checkable
class Cipher(Protocol):
    """Authenticated encryption under a key handed in by the pipeline."""

    name: ClassVar[str]

    def check_key(self, key: bytes) -> str | None:
        """None if ``key`` fits this cipher, else why not (without the key)."""

    def seal(self, key: bytes, data: bytes, aad: bytes) -> bytes:
        """``data`` encrypted and authenticated together with ``aad``."""

    def open(self, key: bytes, data: bytes, aad: bytes) -> bytes:
        """The plaintext of :meth:`seal`'s output; ValueError if it does not
        authenticate (wrong key, modified bytes or ``aad``)."""
