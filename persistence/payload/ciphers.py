"""AES-GCM: authenticated encryption of stored values.

Each value gets a fresh random 96-bit nonce, stored before the ciphertext;
the 128-bit tag after it authenticates the ciphertext and the envelope's
header (serializer, compression, key id: the ``aad``), so neither can be
changed unnoticed.  Keys are 128, 192 or 256 bits.
"""

from __future__ import annotations

import os
from typing import ClassVar

from ..exceptions import MissingDependency

__all__ = ["AesGcmCipher", "NONCE_SIZE"]

NONCE_SIZE = 12


class AesGcmCipher:
    """AES-GCM from ``cryptography`` (``pip install 'persistence[payload]'``)."""

    name: ClassVar[str] = "aes-gcm"

    def __init__(self) -> None:
        try:
            from cryptography.exceptions import InvalidTag
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError as err:
            raise MissingDependency("encryption needs cryptography: "
                                    "pip install 'persistence[payload]'") from err
        self._aesgcm = AESGCM
        self._invalid_tag = InvalidTag

    def check_key(self, key: bytes) -> str | None:
        """None for a 16, 24 or 32 byte key; else why it does not fit."""
        if not isinstance(key, bytes) or len(key) not in (16, 24, 32):
            size = len(key) if isinstance(key, bytes) else type(key).__name__
            return f"an AES-GCM key is 16, 24 or 32 bytes, not {size}"
        return None

    def seal(self, key: bytes, data: bytes, aad: bytes) -> bytes:
        """nonce + ciphertext + tag."""
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aesgcm(key).encrypt(nonce, data, aad)

    def open(self, key: bytes, data: bytes, aad: bytes) -> bytes:
        """The plaintext; ValueError when the tag does not verify."""
        if len(data) < NONCE_SIZE + 16:
            raise ValueError("ciphertext is shorter than a nonce and a tag")
        try:
            return self._aesgcm(key).decrypt(data[:NONCE_SIZE], data[NONCE_SIZE:], aad)
        except self._invalid_tag:
            raise ValueError("authentication failed") from None
