"""Stage names -> stage classes: serializers, compressors and ciphers.

Looked up as backends are (:mod:`persistence.backends.registry`): stages
registered in this process (:func:`register_stage`), then the built-in table
:data:`BUILTIN` (name -> target and the extra that installs its dependency),
then the entry points of installed distributions, one group per kind
(:data:`GROUPS`).  An unknown name, a missing dependency and a bad option
each raise their own error.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
from collections.abc import Mapping
from typing import Any

from stevedore import driver
from stevedore.exception import NoMatches

from ..exceptions import ConfigurationError, MissingDependency

__all__ = ["GROUPS", "BUILTIN", "StageEntry", "register_stage", "unregister_stage",
           "load_stage", "available_stages"]

#: Kind of stage -> its entry-point group.
GROUPS: Mapping[str, str] = {
    "serializer": "persistence.serializers",
    "compressor": "persistence.compressors",
    "cipher": "persistence.ciphers",
}


@dataclasses.dataclass(frozen=True)
class StageEntry:
    """Where a stage class lives (``"module:Class"``) and the extra of
    ``persistence`` that installs its dependency (None: nothing to install)."""

    target: str
    extra: str | None = None


_P = "persistence.payload"
#: The stages shipped with persistence (pyproject's entry points name the same).
BUILTIN: Mapping[tuple[str, str], StageEntry] = {
    ("serializer", "json"): StageEntry(f"{_P}.serializers:JsonSerializer"),
    ("serializer", "msgpack"): StageEntry(f"{_P}.serializers:MsgpackSerializer", "payload"),
    ("serializer", "pickle"): StageEntry(f"{_P}.serializers:PickleSerializer"),
    ("compressor", "zstd"): StageEntry(f"{_P}.compressors:ZstdCompressor", "payload"),
    ("compressor", "zlib"): StageEntry(f"{_P}.compressors:ZlibCompressor"),
    ("cipher", "aes-gcm"): StageEntry(f"{_P}.ciphers:AesGcmCipher", "payload"),
}
_REGISTERED: dict[tuple[str, str], str | type] = {}


def _check_kind(kind: str) -> str:
    if kind not in GROUPS:
        raise ValueError(f"a stage kind is one of {', '.join(GROUPS)}, not {kind!r}")
    return GROUPS[kind]


def register_stage(kind: str, name: str, target: str | type) -> None:
    """Make ``name`` a ``kind`` of stage in this process (before built-ins and
    entry points): ``target`` is the class or its ``"module:Class"`` path."""
    _check_kind(kind)
    if not isinstance(name, str) or not name or not name.isprintable() or "|" in name:
        raise ValueError(f"a stage name is a non-empty printable string without '|', "
                         f"not {name!r}")
    if isinstance(target, str) and ":" not in target:
        raise ValueError(f"target {target!r} must read 'module:Class'")
    _REGISTERED[(kind, name)] = target


def unregister_stage(kind: str, name: str) -> None:
    """Forget a :func:`register_stage` registration (KeyError if there is none)."""
    del _REGISTERED[(kind, name)]


def available_stages(kind: str) -> list[str]:
    """Names of the ``kind`` stages this process can load."""
    group = _check_kind(kind)
    names = {ep.name for ep in importlib.metadata.entry_points(group=group)}
    names.update(n for k, n in BUILTIN if k == kind)
    names.update(n for k, n in _REGISTERED if k == kind)
    return sorted(names)


def _import(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _reraise(manager: Any, entrypoint: Any, err: BaseException) -> None:
    raise err


def _find(kind: str, name: str) -> type:
    registered = _REGISTERED.get((kind, name))
    if registered is not None:
        return _import(registered) if isinstance(registered, str) else registered
    builtin = BUILTIN.get((kind, name))
    if builtin is not None:
        return _import(builtin.target)
    group = GROUPS[kind]
    try:
        return driver.DriverManager(group, name, invoke_on_load=False,
                                    on_load_failure_callback=_reraise).driver
    except NoMatches:
        raise ConfigurationError(f"no {kind} named {name!r} in entry-point group {group!r}; "
                                 f"available: {', '.join(available_stages(kind))}") from None


def load_stage(kind: str, name: Any) -> type:
    """The class of the ``kind`` stage called ``name``.

    ConfigurationError for an unknown name, MissingDependency (with the
    extra to install) when its module cannot be imported.
    """
    _check_kind(kind)
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"a {kind} is named by a string, not {type(name).__name__} "
                                 f"{name!r:.60}")
    try:
        return _find(kind, name)
    except (ConfigurationError, MissingDependency):
        raise
    except ImportError as err:
        entry = BUILTIN.get((kind, name))
        hint = (f"pip install 'persistence[{entry.extra}]'" if entry and entry.extra
                else "install the distribution that provides it")
        raise MissingDependency(f"{kind} {name!r} cannot be loaded: {err}; {hint}") from err
    except AttributeError as err:
        raise MissingDependency(f"{kind} {name!r} is registered but its target does not "
                                f"exist ({err}); reinstall the distribution that provides "
                                f"it") from err
