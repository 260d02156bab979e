"""Offload: values above a threshold go to an fsspec URL, the record keeps a reference.

A blob's key is derived from its content — ``<sha256[:2]>/<sha256>-<write id>``
under the configured URL — and carries a random write id, so that no two
writes ever share a blob.  That is what makes removing blobs safe: a blob
no record references at some moment is never referenced again (see
:mod:`persistence.backends.blobs` for the sweep and its proof).  The
reference stored in the record (``url``, ``key``, ``size``, ``sha256``) is
checked on every read: a blob that differs is refused.

Local directories are written through a temporary file, fsync and rename,
so a crash never leaves a half-written blob under a referenced key.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..exceptions import (
    ConfigurationError,
    MissingBlob,
    MissingDependency,
    PayloadError,
    TamperedPayload,
)

__all__ = ["BlobStore", "display_url"]


def display_url(url: str) -> str:
    """``url`` without a ``user:password@`` part (fit for messages)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"


def _mtime(info: Mapping[str, Any]) -> float | None:
    """Seconds since the epoch a listed blob was last written (as the store reports it)."""
    for name in ("mtime", "LastModified", "last_modified", "created", "updated", "ctime"):
        value = info.get(name)
        if isinstance(value, datetime.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=datetime.timezone.utc)
            return value.timestamp()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return _mtime({"mtime": parsed})
    return None


class BlobStore:
    """Blobs under one fsspec ``url`` (``options``: the filesystem's storage options)."""

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        if not isinstance(url, str) or not url.strip():
            raise ConfigurationError("offload needs a URL (a directory, s3://bucket/prefix, "
                                     "memory://name, any fsspec URL)")
        if options is not None and not isinstance(options, Mapping):
            raise ConfigurationError("offload options must be a mapping of fsspec storage "
                                     "options")
        self.url = url.rstrip("/") or url
        self.display = display_url(self.url)
        self._options = dict(options or {})
        self._fs: Any = None
        self._root = ""

    def __repr__(self) -> str:
        return f"<BlobStore {self.display!r}>"

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (built on first use)."""
        if self._fs is None:
            try:
                import fsspec
            except ImportError as err:
                raise MissingDependency("offload needs fsspec: pip install "
                                        "'persistence[payload]'") from err
            try:
                self._fs, self._root = fsspec.core.url_to_fs(self.url, **self._options)
            except ImportError as err:
                raise MissingDependency(f"offload to {self.display} needs the fsspec "
                                        f"implementation of its protocol ({err}); for s3:// "
                                        f"pip install s3fs") from err
            except (ValueError, TypeError) as err:
                raise ConfigurationError(f"cannot use offload URL {self.display}: "
                                         f"{type(err).__name__}") from None
        return self._fs

    def _path(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise TamperedPayload(f"blob key {key!r:.80} escapes {self.display}",
                                  location=self.display)
        self.fs  # noqa: B018 - sets _root
        return f"{self._root.rstrip('/')}/{key}"

    def _local(self) -> bool:
        return "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple)
                          else (self.fs.protocol,))

    def _fail(self, what: str, err: BaseException) -> PayloadError:
        return PayloadError(f"failed to {what} in {self.display}: {type(err).__name__}: "
                            f"{display_url(str(err))[:300]}")

    # -- the three operations a pipeline needs ---------------------------------------
    def put(self, data: bytes) -> dict[str, Any]:
        """Write ``data`` under a new content-derived key; return its reference."""
        digest = hashlib.sha256(data).hexdigest()
        key = f"{digest[:2]}/{digest}-{secrets.token_hex(8)}"
        path = self._path(key)
        try:
            if self._local():
                self._put_local(path, data)
            else:
                self.fs.pipe_file(path, data)
        except PayloadError:
            raise
        except Exception as err:
            raise self._fail(f"write blob {key}", err) from err
        return {"url": self.url, "key": key, "size": len(data), "sha256": digest}

    @staticmethod
    def _put_local(path: str, data: bytes) -> None:
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        tmp = f"{path}.tmp-{secrets.token_hex(4)}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def get(self, ref: Mapping[str, Any], where: str) -> bytes:
        """The blob ``ref`` names, checked against its size and sha256."""
        location = f"{self.display}/{ref['key']}"
        path = self._path(ref["key"])
        try:
            data = self.fs.cat_file(path)
        except FileNotFoundError:
            raise MissingBlob(f"the blob of the value in {where} is missing: {location} "
                              f"(deleted, or the offload URL moved)", location=location) \
                from None
        except Exception as err:
            raise self._fail(f"read blob {ref['key']} (value in {where})", err) from err
        if len(data) != ref["size"] or hashlib.sha256(data).hexdigest() != ref["sha256"]:
            raise TamperedPayload(f"the blob of the value in {where} ({location}) does not "
                                  f"match its reference (size or sha256 differ): refused",
                                  location=location)
        return data

    def delete(self, keys: Iterable[str]) -> int:
        """Remove the blobs called ``keys`` (absent ones are skipped); how many went."""
        gone = 0
        for key in keys:
            try:
                self.fs.rm_file(self._path(key))
                gone += 1
            except FileNotFoundError:
                continue
            except Exception as err:
                raise self._fail(f"delete blob {key}", err) from err
        return gone

    def blobs(self) -> Iterator[tuple[str, float | None]]:
        """(key, last-written time) of every blob under the URL (temporary files of
        an interrupted local write included: they are never referenced)."""
        self.fs  # noqa: B018
        root = self._root.rstrip("/")
        try:
            if not self.fs.exists(root):
                return
            found = self.fs.find(root, detail=True)
        except Exception as err:
            raise self._fail("list blobs", err) from err
        for path, info in found.items():
            name = path[len(root) + 1:] if path.startswith(root + "/") else path
            if info.get("type", "file") != "file":
                continue
            yield name, _mtime(info)
