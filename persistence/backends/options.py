"""How a backend reads its options: strings from a URI become the declared types.

:attr:`Backend.OPTIONS <persistence.backends.base.Backend.OPTIONS>` names each
option a backend takes and its type; :func:`parse` checks a configuration
against it and :func:`convert` turns one value into its type, or each raises a
:class:`ConfigurationError` saying what was wrong (the value of a secret
option is never shown).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..exceptions import ConfigurationError
from ..payload import PAYLOAD_KEYS

__all__ = ["URL_KEYS", "parse", "convert"]

# Keys that fetch() derives from a URI; a backend that does not use one of
# them does not treat it as an unknown option.
URL_KEYS = frozenset({"connection", "host", "port", "username", "password", "path",
                      "hosts", "driver"})

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_KIND_NAMES = {bool: "a boolean (true/false/1/0)", int: "an integer", float: "a number",
               str: "a string"}


def _is_secret(name: str) -> bool:
    return any(word in name.lower() for word in ("password", "secret", "token", "passwd"))


def parse(backend: str, options: Mapping[str, Callable[[Any], Any]],
          conf: Mapping[str, Any]) -> dict[str, Any]:
    """The options ``conf`` gives, each converted to its type in ``options``;
    a key that is neither an option, one of :data:`URL_KEYS` nor a payload
    option (:data:`~persistence.payload.PAYLOAD_KEYS`, read by the pipeline)
    is reported by name, with the options backend ``backend`` knows."""
    unknown = sorted(k for k in conf
                     if k not in options and k not in URL_KEYS and k not in PAYLOAD_KEYS)
    if unknown:
        known = ", ".join(sorted(options)) or "none"
        raise ConfigurationError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for backend "
            f"{backend}; known options: {known} (and the payload options "
            f"{', '.join(sorted(PAYLOAD_KEYS))})")
    return {name: convert(name, conf[name], kind)
            for name, kind in options.items() if name in conf}


def convert(name: str, value: Any, kind: Callable[[Any], Any]) -> Any:
    """``value`` of option ``name`` as ``kind``: strings (as parsed from a URI) are
    converted, other values must already have the type (``True`` is no int, 123
    no path); strings never hold NUL."""
    if value is None or kind is object:
        return value
    if _is_secret(name):
        try:
            return convert("value", value, kind)
        except ConfigurationError:   # said without the value: it is a secret
            raise ConfigurationError(f"option {name!r} must be {_KIND_NAMES.get(kind, kind)}"
                                     f" (its value is not shown)") from None
    if isinstance(value, str) and "\x00" in value:
        raise ConfigurationError(f"option {name!r} must not contain a NUL character")
    if kind is bool and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ConfigurationError(f"option {name!r} must be a boolean "
                                 f"(true/false/1/0), not {value!r}")
    if kind in (bool, int, float, str):
        allowed = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}[kind]
        if isinstance(value, str) and kind is not str:
            try:
                return kind(value.strip())
            except ValueError:
                raise ConfigurationError(f"option {name!r} must be {_KIND_NAMES[kind]}, "
                                         f"not {value!r}") from None
        if not isinstance(value, allowed) or (kind is not bool and isinstance(value, bool)):
            raise ConfigurationError(f"option {name!r} must be {_KIND_NAMES[kind]}, not "
                                     f"{type(value).__name__} {value!r:.60}")
        return kind(value)
    if isinstance(value, kind if isinstance(kind, type) else ()):
        return value
    try:
        return kind(value)
    except (TypeError, ValueError) as err:
        raise ConfigurationError(f"option {name!r} has an invalid value {value!r}: {err}") from err

