"""The pipeline: value -> serialize -> compress -> encrypt -> offload, and back.

One :class:`Pipeline` per backend transforms each stored value (results,
failures, revert results and failures, meta values, injected values); the
stored-format module (:mod:`persistence.models.encoding`) calls it for every
value of every record, so every backend gets it.  What a pipeline writes is
an envelope (:mod:`.envelope`) naming each stage that ran, so reads never
depend on the current settings: a value written under older settings reads
back as long as its serializer, compressor and key are available.

The default pipeline (JSON, nothing else) stores each value as itself,
exactly as before.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from ..exceptions import (
    ConfigurationError,
    CorruptRecord,
    MissingKey,
    PayloadError,
    TamperedPayload,
    UnserializableValue,
)
from . import envelope as env
from .keys import KeyRing
from .offload import BlobStore, display_url
from .registry import load_stage
from .stages import Cipher, Compressor, Serializer

__all__ = ["Pipeline", "collecting"]

LOG = logging.getLogger(__name__)

#: While set (by :func:`collecting`), envelopes are noted here, not opened.
_COLLECTING: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "persistence_payload_collecting", default=None)


@contextlib.contextmanager
def collecting() -> Iterator[list[dict]]:
    """Within the block (this thread or task), reads note each envelope they meet
    in the yielded list and load ``None`` in its place: nothing is decrypted or
    fetched, no key is needed.  For whole-store scans (sweep, rekey); what is
    loaded in the block must never be written back."""
    found: list[dict] = []
    token = _COLLECTING.set(found)
    try:
        yield found
    finally:
        _COLLECTING.reset(token)


def _offender(value: Any, serializer: Serializer, depth: int = 0) -> type:
    """The type of the first part of ``value`` that ``serializer`` cannot encode."""
    if depth < 50:
        parts: Iterable[Any] = ()
        if isinstance(value, dict):
            parts = [p for kv in value.items() for p in kv]
        elif isinstance(value, (list, tuple)):
            parts = value
        for part in parts:
            try:
                serializer.dumps(part)
            except Exception:
                return _offender(part, serializer, depth + 1)
    return type(value)


class Pipeline:
    """The stages one backend writes values with, and everything needed to read them.

    Build one from a backend configuration with
    :func:`persistence.payload.pipeline_from_conf`; ``Pipeline()`` is the
    default (JSON only).
    """

    def __init__(self, serializer: Serializer | None = None,
                 compressor: Compressor | None = None, compress_threshold: int = 1024,
                 cipher: Cipher | None = None, keys: KeyRing | None = None,
                 offload: BlobStore | None = None, offload_threshold: int = 256 * 1024,
                 grace: float = 3600.0, allow_pickle: bool = False,
                 read_from: tuple[str, ...] = ()) -> None:
        if (cipher is None) != (keys is None):
            raise ConfigurationError("encryption needs both a cipher and keys")
        self.allow_pickle = allow_pickle
        self.serializer = (serializer if serializer is not None
                           else load_stage("serializer", "json")())
        if self.serializer.unsafe and not allow_pickle:
            raise ConfigurationError(f"the {self.serializer.name} serializer runs code found "
                                     f"in the store when reading: set allow_pickle=True only "
                                     f"if nobody else can write to the store")
        self.compressor = compressor
        self.compress_threshold = compress_threshold
        self.cipher = cipher
        self.keys = keys
        self.offload = offload
        self.offload_threshold = offload_threshold
        #: Seconds a blob must exist before a sweep may remove it (see backends.blobs).
        self.grace = grace
        self._raw_json = self.serializer.name == "json"
        #: True when values are stored as themselves (JSON, no other stage).
        self.is_default = (self._raw_json and compressor is None and cipher is None
                           and offload is None)
        # Configured stages read what they wrote; others are built by name on first use.
        self._readers: dict[tuple[str, str], Any] = {
            (kind, stage.name): stage for kind, stage in (
                ("serializer", self.serializer), ("compressor", compressor),
                ("cipher", cipher)) if stage is not None}
        # The only places blobs are read from or deleted in: the offload URL and the
        # earlier ones configured as ``read_from``.  A reference naming any other URL
        # is refused: whoever can write a record must not make readers fetch (or
        # delete) whatever URL they like.
        self._stores: dict[str, BlobStore] = {} if offload is None else {offload.url: offload}
        for url in read_from:
            store = BlobStore(url)
            self._stores.setdefault(store.url, store)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Pipeline {self.describe()}>"

    def describe(self) -> str:
        """The stages, for messages and the CLI (key ids, never keys)."""
        parts = [self.serializer.name]
        if self.compressor is not None:
            parts.append(f"{self.compressor.name}>={self.compress_threshold}B")
        if self.cipher is not None:
            parts.append(f"{self.cipher.name}[{self.keys.current}]")
        if self.offload is not None:
            parts.append(f"offload>={self.offload_threshold}B to {self.offload.display}")
        return " + ".join(parts)

    def inline(self) -> Pipeline:
        """This pipeline without offload: every value inline (archives carry their
        values whole).  Reads still fetch blobs other records reference."""
        if self.offload is None:
            return self
        twin = Pipeline(self.serializer, self.compressor, self.compress_threshold, self.cipher,
                        self.keys, None, self.offload_threshold, self.grace, self.allow_pickle)
        twin._stores = self._stores
        return twin

    # -- stages by name (for reading what other settings wrote) -----------------------
    def _stage(self, kind: str, name: str) -> Any:
        found = self._readers.get((kind, name))
        if found is None:
            found = load_stage(kind, name)()
            with self._lock:
                self._readers[(kind, name)] = found
        return found

    def _reader(self, kind: str, name: str, where: str) -> Any:
        try:
            return self._stage(kind, name)
        except ConfigurationError as err:
            raise PayloadError(f"the value in {where} was written with {kind} {name!r}, "
                               f"which is not available: {err}") from err

    def blob_store(self, url: str, where: str) -> BlobStore:
        """The store a reference's ``url`` names: the offload URL or one listed in
        ``read_from``; any other is refused (PayloadError saying how to allow it)."""
        store = self._stores.get(url.rstrip("/") or url)
        if store is None:
            raise PayloadError(
                f"the value in {where} refers to a blob at {display_url(url)}, which is "
                f"neither this backend's offload URL nor one of its 'offload_read_from' "
                f"URLs: refused (a stored reference must not choose where readers fetch "
                f"from). If blobs were written there under earlier settings, add that URL "
                f"to offload_read_from")
        return store

    # -- writing -----------------------------------------------------------------------
    def encode(self, value: Any, field: str, record: str) -> Any:
        """What to store for ``value`` (field ``field`` of ``record``, as named in errors):
        the value itself when no stage transforms it, else its envelope."""
        if self.is_default or value is None:
            if type(value) is dict and env.MARKER in value:
                return env.escape(value)
            return value
        try:
            data = self.serializer.dumps(value)
        except (TypeError, ValueError, OverflowError, RecursionError) as err:
            culprit = _offender(value, self.serializer)
            raise UnserializableValue(
                f"cannot store {field} of {record}: the {self.serializer.name} serializer "
                f"cannot encode a value of type {culprit.__qualname__!r} ({err})",
                record=record, field=field, type_name=culprit.__qualname__) from err
        out: dict[str, Any] = {env.MARKER: env.VERSION, "serializer": self.serializer.name}
        if self.compressor is not None and len(data) >= self.compress_threshold:
            packed = self.compressor.compress(data)
            if len(packed) < len(data):
                data = packed
                out["compression"] = self.compressor.name
        if self.cipher is not None:
            out["cipher"], out["key"] = self.cipher.name, self.keys.current
            data = self.cipher.seal(self.keys.key(self.keys.current), data, env.aad(out))
        if self.offload is not None and len(data) >= self.offload_threshold:
            out["ref"] = self.offload.put(data)
        elif self._raw_json and len(out) == 2:
            # JSON that no later stage changed: stored as itself, readable as before.
            return env.escape(value) if type(value) is dict and env.MARKER in value else value
        else:
            out["data"] = env.pack_bytes(data)
        return out

    # -- reading -----------------------------------------------------------------------
    def decode(self, stored: Any, where: str) -> Any:
        """The value ``stored`` holds (``where``: the record and field, for errors)."""
        if type(stored) is not dict or env.MARKER not in stored:
            return stored
        return self.open(stored, where)

    def open(self, envelope: dict, where: str) -> Any:
        """The value an envelope holds: fetched, checked, decrypted, decompressed, loaded."""
        env.check(envelope, where)
        if "value" in envelope:
            return envelope["value"]
        found = _COLLECTING.get()
        if found is not None:
            found.append(envelope)
            return None
        if "ref" in envelope:
            data = self.blob_store(envelope["ref"]["url"], where).get(envelope["ref"], where)
        else:
            data = env.unpack_bytes(envelope, where)
        if "cipher" in envelope:
            data = self._decrypt(envelope, data, where)
        if "compression" in envelope:
            compressor = self._reader("compressor", envelope["compression"], where)
            try:
                data = compressor.decompress(data)
            except Exception as err:
                raise CorruptRecord(f"the stored value in {where} does not decompress "
                                    f"({envelope['compression']}): {type(err).__name__}: "
                                    f"{err}", location=where) from err
        serializer = self._reader("serializer", envelope["serializer"], where)
        if serializer.unsafe and not self.allow_pickle:
            raise PayloadError(f"the value in {where} was written with {serializer.name}, "
                               f"which runs code found in the store: configure "
                               f"allow_pickle=True to read it (only for stores nobody else "
                               f"can write to)")
        try:
            return serializer.loads(data)
        except Exception as err:
            raise CorruptRecord(f"the stored value in {where} is not valid "
                                f"{serializer.name}: {type(err).__name__}: {err}",
                                location=where) from err

    def _decrypt(self, envelope: dict, data: bytes, where: str) -> bytes:
        key_id = envelope["key"]
        if self.keys is None:
            raise MissingKey(f"the value in {where} is encrypted under key {key_id!r} and no "
                             f"encryption keys are configured", key_id=key_id)
        try:
            key = self.keys.key(key_id)
        except MissingKey as err:
            raise MissingKey(f"cannot read the value in {where}: {err}",
                             key_id=key_id) from None
        cipher = self._reader("cipher", envelope["cipher"], where)
        try:
            return cipher.open(key, data, env.aad(envelope))
        except ValueError:
            raise TamperedPayload(f"the value in {where} does not authenticate under key "
                                  f"{key_id!r}: the key is wrong or the stored bytes were "
                                  f"modified; refused", key_id=key_id, location=where) from None

    # -- blobs -------------------------------------------------------------------------
    def delete_refs(self, refs: Iterable[dict]) -> int:
        """Remove the blobs ``refs`` name (grouped by store); how many went."""
        by_url: dict[str, list[str]] = {}
        for ref in refs:
            by_url.setdefault(ref["url"], []).append(ref["key"])
        gone = 0
        for url, keys in by_url.items():
            store = self._stores.get(url.rstrip("/") or url)
            if store is None:   # never delete where this backend does not offload
                LOG.warning("left %d blob(s) at %s alone: not an offload URL of this "
                            "backend", len(keys), display_url(url))
                continue
            gone += store.delete(keys)
        return gone

