"""Encryption keys addressed by id: from the configuration, an environment
variable, or a callable (a KMS, a vault).

Several keys are configured at once so keys can rotate: new values are
written under the *current* key, and every stored value names the key it was
written under, so reads find it by id.  Key bytes never appear in a repr, a
log line or an error message: only key ids do.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ..exceptions import ConfigurationError, MissingKey

__all__ = ["KeyRing", "parse_key", "parse_key_list"]

KeyProvider = Callable[[str], "bytes | str | None"]


def check_key_id(key_id: Any) -> str:
    """``key_id`` if it can name a key (short printable text without ``|`` or ``,``)."""
    if (not isinstance(key_id, str) or not key_id or len(key_id) > 64
            or not key_id.isprintable() or any(c in key_id for c in "|,:")):
        raise ConfigurationError(f"a key id is 1 to 64 printable characters without '|', ',' "
                                 f"or ':', not {key_id!r:.70}")
    return key_id


def parse_key(key_id: str, value: Any) -> bytes:
    """Key bytes from ``bytes`` or base64 text (standard or URL-safe alphabet)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            padded = text + "=" * (-len(text) % 4)
            alphabet = b"-_" if ("-" in text or "_" in text) else None
            return base64.b64decode(padded, altchars=alphabet, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigurationError(f"key {key_id!r} is not valid base64 "
                                     f"(its value is not shown)") from None
    raise ConfigurationError(f"key {key_id!r} must be bytes or base64 text, not "
                             f"{type(value).__name__} (its value is not shown)")


def parse_key_list(text: str, source: str) -> dict[str, bytes]:
    """``"id1:base64,id2:base64"`` (as an environment variable holds keys) -> keys."""
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key_id, sep, value = item.partition(":")
        if not sep:
            raise ConfigurationError(f"{source} must read 'id:base64key,id2:base64key'; an "
                                     f"entry has no ':' (values are not shown)")
        keys[check_key_id(key_id.strip())] = parse_key(key_id.strip(), value)
    if not keys:
        raise ConfigurationError(f"{source} holds no key ('id:base64key,...')")
    return keys


class KeyRing:
    """The keys a pipeline encrypts with (``current``) and decrypts with (any id).

    ``keys`` is a mapping of id -> key (bytes or base64 text), or a callable
    ``provider(key_id) -> key or None`` (asked once per id, then remembered).
    ``current`` names the key new values are written under; with a mapping it
    defaults to the last key listed.  ``check`` (the cipher's key check) is
    applied to every key before use.
    """

    def __init__(self, keys: Mapping[str, Any] | KeyProvider, current: str | None = None,
                 check: Callable[[bytes], str | None] | None = None,
                 source: str = "the configuration") -> None:
        self._check = check
        self._source = source
        self._lock = threading.Lock()
        self._provider: KeyProvider | None = None
        self._keys: dict[str, bytes] = {}
        if callable(keys) and not isinstance(keys, Mapping):
            if current is None:
                raise ConfigurationError("keys from a callable need 'current': the id of the "
                                         "key new values are written under")
            self._provider = keys
        elif isinstance(keys, Mapping):
            if not keys:
                raise ConfigurationError(f"no encryption key in {source}")
            for key_id, value in keys.items():
                self._keys[check_key_id(key_id)] = self._checked(key_id, parse_key(key_id,
                                                                                   value))
            if current is None:
                current = list(self._keys)[-1]
            elif current not in self._keys:
                raise ConfigurationError(f"the current key {current!r} is not among the "
                                         f"configured key ids {sorted(self._keys)}")
        else:
            raise ConfigurationError(f"encryption keys are a mapping of id -> key or a "
                                     f"callable, not {type(keys).__name__}")
        self.current = check_key_id(current)
        if self._provider is not None:
            self.key(self.current)   # fail now, not on the first write

    @classmethod
    def from_env(cls, variable: str, current: str | None = None,
                 check: Callable[[bytes], str | None] | None = None) -> KeyRing:
        """Keys from the environment variable ``variable`` (``id:base64,...``)."""
        if not isinstance(variable, str) or not variable:
            raise ConfigurationError("encrypt env must name an environment variable")
        text = os.environ.get(variable)
        if text is None:
            raise ConfigurationError(f"environment variable {variable} (encryption keys) "
                                     f"is not set")
        source = f"environment variable {variable}"
        return cls(parse_key_list(text, source), current, check, source)

    def _checked(self, key_id: str, key: bytes) -> bytes:
        why = self._check(key) if self._check is not None else None
        if why:
            raise ConfigurationError(f"key {key_id!r}: {why} (its value is not shown)")
        return key

    def key(self, key_id: str) -> bytes:
        """The key called ``key_id``; MissingKey if there is none."""
        found = self._keys.get(key_id)
        if found is not None:
            return found
        if self._provider is None:
            raise MissingKey(f"no key {key_id!r} is configured (known ids: "
                             f"{', '.join(sorted(self._keys))}); add it to {self._source}",
                             key_id=key_id)
        try:
            value = self._provider(key_id)
        except Exception as err:
            raise MissingKey(f"the key provider failed for key {key_id!r}: "
                             f"{type(err).__name__}", key_id=key_id) from None
        if value is None:
            raise MissingKey(f"the key provider has no key {key_id!r}", key_id=key_id)
        key = self._checked(key_id, parse_key(key_id, value))
        with self._lock:
            self._keys[key_id] = key
        return key

    def ids(self) -> list[str]:
        """The ids of the keys known so far (a provider's: those asked for)."""
        return sorted(self._keys)

    def same_key(self, other: KeyRing, key_id: str) -> bool:
        """Whether ``other`` holds the same key under ``key_id`` (keys are compared,
        never shown)."""
        try:
            return self.key(key_id) == other.key(key_id)
        except MissingKey:
            return False

    def __repr__(self) -> str:
        source = "provider" if self._provider is not None else f"{len(self._keys)} keys"
        return f"<KeyRing current={self.current!r} ({source})>"
