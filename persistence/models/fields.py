"""Checks of the fields of a record's dict form, before a model is built from it.

``from_dict`` of every model reads its input through these, so malformed input
(hand-written, from another program, or a corrupt stored record) raises
:class:`~persistence.exceptions.InvalidFormat` naming the field and what was
expected, never a bare ``KeyError``/``TypeError`` and never a half-built record.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Mapping
from typing import Any

from ..exceptions import InvalidFormat

__all__ = ["stored_name", "record", "text", "optional_text", "state", "mapping", "timestamp",
           "sequence"]

_MISSING = object()


def _kind(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def record(data: Any, what: str) -> Mapping[str, Any]:
    """``data`` itself if it is a mapping (the dict form of ``what``)."""
    if not isinstance(data, Mapping):
        raise InvalidFormat(f"{what} must be a dict, not {_kind(data)}")
    return data


def text(data: Mapping[str, Any], key: str, what: str, *, non_empty: bool = False) -> str:
    """A required string field."""
    value = data.get(key, _MISSING)
    if value is _MISSING:
        raise InvalidFormat(f"{what} has no {key!r} field")
    if not isinstance(value, str) or (non_empty and not value):
        need = "a non-empty string" if non_empty else "a string"
        raise InvalidFormat(f"{what}: {key!r} must be {need}, not {_kind(value)} {value!r:.60}")
    return value


def optional_text(data: Mapping[str, Any], key: str, what: str, default: Any = None) -> Any:
    """A string field that may be missing or None (then ``default``)."""
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidFormat(f"{what}: {key!r} must be a string or None, not "
                            f"{_kind(value)} {value!r:.60}")
    return value


def state(data: Mapping[str, Any], key: str, what: str, allowed: Collection[str],
          default: Any = None) -> Any:
    """A state (or intention) field: None/missing (``default``) or one of ``allowed``."""
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, str) or value not in allowed:
        raise InvalidFormat(f"{what}: {key!r} must be one of {', '.join(sorted(allowed))} "
                            f"or None, not {value!r:.60}")
    return value


def mapping(data: Mapping[str, Any], key: str, what: str) -> dict[str, Any]:
    """A dict field (``meta``); missing or None gives an empty dict."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidFormat(f"{what}: {key!r} must be a dict or None, not {_kind(value)}")
    return dict(value)


def sequence(data: Mapping[str, Any], key: str, what: str) -> list | tuple | None:
    """A list field that may be missing or None."""
    value = data.get(key)
    if value is not None and not isinstance(value, (list, tuple)):
        raise InvalidFormat(f"{what}: {key!r} must be a list or None, not {_kind(value)}")
    return value


def timestamp(data: Mapping[str, Any], key: str, what: str) -> datetime.datetime | None:
    """A time field: None, a datetime or an ISO 8601 string."""
    value = data.get(key)
    if value is None or isinstance(value, datetime.datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.datetime.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidFormat(f"{what}: {key!r} must be an ISO 8601 time, a datetime or None, "
                        f"not {_kind(value)} {value!r:.60}")


def stored_name(detail: Any) -> str:
    """The name of a record about to be saved: a string without NUL on every backend
    (PostgreSQL cannot store NUL; one rule keeps stores interchangeable)."""
    name = detail.name
    if type(name) is not str or "\x00" in name:
        why = "contains a NUL character" if isinstance(name, str) else \
            f"is {_kind(name)}, not a string"
        raise InvalidFormat(f"cannot store {type(detail).__name__} {detail.uuid}: its name "
                            f"{why} ({name!r:.60})")
    return name
