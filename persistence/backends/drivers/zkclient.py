"""Setting up a kazoo client: the host list it reads, and credentials kept out of its logs.

A host list is ``host:port,host:port``, an IPv6 address in brackets (kazoo
reads ``::1:2181`` as a bad hostname).

At DEBUG kazoo logs every request it sends, the digest ``Auth`` request
(``user:password``) included, and at its BLATHER level the session password.
A filter on kazoo's logger replaces both before any handler sees the record,
whoever configured logging.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

__all__ = ["DEFAULT_PORT", "host_port", "host_list", "install"]

#: The port of a host given without one.
DEFAULT_PORT = 2181


def host_port(host: str, port: int | None) -> str:
    """``host:port`` as kazoo reads it (IPv6 in brackets, DEFAULT_PORT if none is given)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port or DEFAULT_PORT}"


def host_list(hosts: Iterable[tuple[str, int | None]]) -> str:
    """The kazoo host list of (host, port) pairs, e.g. a parsed URI's hosts."""
    return ",".join(host_port(host, port) for host, port in hosts)


_LOGGER = "kazoo.client"   # what KazooClient and its connection log through by default
_MASK = "***"


class _Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args:
            record.args = tuple(_redact(arg) for arg in args)
            if str(record.msg).startswith("Session created") and len(args) > 1:
                record.args = (record.args[0], _MASK, *record.args[2:])
        return True


def _redact(arg: object) -> object:
    auth = getattr(arg, "auth", None)
    if isinstance(auth, str) and hasattr(arg, "scheme") and hasattr(arg, "_replace"):
        user, has_secret, _ = auth.partition(":")
        return arg._replace(auth=f"{user}:{_MASK}" if has_secret else _MASK)
    return arg


_FILTER = _Redact()


def install(logger: logging.Logger | None = None) -> None:
    """Add the filter to ``logger`` (kazoo's own by default); adding it twice is harmless."""
    target = logger or logging.getLogger(_LOGGER)
    if _FILTER not in target.filters:
        target.addFilter(_FILTER)
