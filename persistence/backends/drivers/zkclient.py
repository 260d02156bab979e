"""Keep credentials out of kazoo's log lines.

At DEBUG kazoo logs every request it sends, the digest ``Auth`` request
(``user:password``) included, and at its BLATHER level the session password.
A filter on kazoo's logger replaces both before any handler sees the record,
whoever configured logging.
"""

from __future__ import annotations

import logging

__all__ = ["install"]

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
