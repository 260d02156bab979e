"""The one place that knows how records are stored as bytes.

Records are JSON objects (UTF-8).  The *values* a record holds — an atom's
results, failure, revert results and revert failure, and every meta value
(injections included) — go through the backend's payload pipeline
(:mod:`persistence.payload`, a :class:`ValueCodec` here) on their way in and
out, so every backend gets serializers, compression, encryption and offload
from this module alone.  Uuids, names, states and the other fields stay as
they are.  With the default pipeline each value is stored as itself, exactly
as before: values must then be JSON-serializable, tuples come back as lists
and non-string dict keys as strings, as with every JSON store.  A value that
cannot be encoded raises :class:`~persistence.exceptions.UnserializableValue`
(a :class:`~persistence.exceptions.SerializationError`) naming the record,
the field and the type, before anything is written; stored bytes that cannot
be decoded raise SerializationError too, naming where they came from.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from .. import telemetry
from ..exceptions import CorruptRecord, InvalidFormat, SerializationError, UnserializableValue
from . import fields
from . import records as models
from .bookkeeping import loaded

__all__ = ["dumps", "dumps_text", "encode_text", "text_encoder", "loads", "logbook_record",
           "flow_record", "atom_record", "load_logbook", "load_flow", "load_atom", "ValueCodec",
           "ATOM_VALUES", "PAYLOAD_MARKER", "seal_value", "seal_meta", "open_values", "describe",
           "holds_envelope"]

#: The key that marks a stored value as a payload envelope (:mod:`persistence.payload`).
PAYLOAD_MARKER = "$payload"
#: The fields of an atom record that hold values (besides its meta values).
ATOM_VALUES = ("results", "failure", "revert_results", "revert_failure")


class ValueCodec(Protocol):
    """What a payload pipeline offers this module (:class:`persistence.payload.Pipeline`)."""

    #: True when values are stored as themselves (JSON, no other stage).
    is_default: bool

    def encode(self, value: Any, field: str, record: str) -> Any:
        """What to store for ``value``: itself, or an envelope."""

    def decode(self, stored: Any, where: str) -> Any:
        """The value ``stored`` holds."""

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True)
_decoder = json.JSONDecoder()
_scan = _decoder.scan_once


def text_encoder(template: json.JSONEncoder) -> Callable[[Any], str]:
    """``template.encode`` without its per-call set-up: the C encoder is built once,
    not on every call, which is most of the cost of encoding a small record.

    It keeps no record of the containers it is in (that is what lets it be
    reused), so a circular value ends in RecursionError; the value is then
    encoded again by ``template`` to raise the standard error.  Where the C
    encoder is missing or not the one this was written against (its output
    differs from ``template``'s on a sample), ``template.encode`` itself.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    strings = (json.encoder.encode_basestring_ascii if template.ensure_ascii
               else json.encoder.encode_basestring)
    sample = {"a": [1, -2.5, float("inf"), float("nan"), None, True, "é\n\"x"], "b": {"c": 1e300}}
    try:
        encoder = make(None, template.default, strings, template.indent,
                       template.key_separator, template.item_separator, template.sort_keys,
                       template.skipkeys, template.allow_nan)
        if "".join(encoder(sample, 0)) != template.encode(sample):
            return template.encode
    except Exception:   # no C encoder, or another signature: the standard path
        return template.encode
    join = "".join

    def encode(value: Any) -> str:
        try:
            return join(encoder(value, 0))
        except RecursionError:   # a circular value, or one nested too deeply
            return template.encode(value)
    return encode


#: ``_encoder.encode``, set up once (:func:`text_encoder`): the stored JSON text of a value.
encode_text = text_encoder(_encoder)


def dumps(value: Any, what: str = "value") -> bytes:
    """Encode ``value`` as JSON bytes; ``what`` names it in the error."""
    return dumps_text(value, what).encode("utf-8")


def dumps_text(value: Any, what: str = "value") -> str:
    """Encode ``value`` as JSON text (what :func:`dumps` encodes to UTF-8); ``what``
    names it in the error."""
    try:
        return encode_text(value)
    except (TypeError, ValueError, RecursionError) as err:
        raise SerializationError(
            f"cannot store {what}: {err} (stored values must be JSON-serializable: "
            f"dict, list, str, int, float, bool, None)") from err


def loads(data: bytes | str, where: str = "record") -> Any:
    """Decode JSON bytes read from ``where``; corrupt data raises SerializationError.

    With msgspec installed (``persistence[fast]``) its decoder goes first: it
    returns the same values and refuses what it reads differently (NaN,
    Infinity, lone surrogates, numbers beyond 64 bits...), which the standard
    library then decodes (or rejects) as it always did.
    """
    if _fast_decode is not None:
        try:
            return _fast_decode(data)
        except _FAST_REFUSED:
            pass
    try:
        if type(data) is bytes:
            data = data.decode("utf-8")
        elif isinstance(data, (bytearray, memoryview)):
            data = bytes(data).decode("utf-8")
        if type(data) is str:
            # What this library writes (no whitespace around the value) in one call of
            # the scanner; anything else, errors included, through decode() as before.
            try:
                value, end = _scan(data, 0)
            except (StopIteration, ValueError):
                end = -1
            if end == len(data):
                return value
        return _decoder.decode(data)
    except (UnicodeDecodeError, ValueError, TypeError) as err:
        raise SerializationError(f"stored data in {where} is corrupt or truncated: {err}") from err


def _fast_decoder() -> tuple[Any, tuple[type[BaseException], ...]]:
    """msgspec's JSON decoder and what it raises when it refuses input; (None, ()) without it."""
    try:
        import msgspec
    except ImportError:
        return None, ()
    return msgspec.json.Decoder().decode, (msgspec.MsgspecError, RecursionError, TypeError)


_fast_decode, _FAST_REFUSED = _fast_decoder()


def describe(detail: models._Record) -> str:
    """How errors name a record: ``TaskDetail 'fetch' (uuid)``."""
    return f"{type(detail).__name__} {detail.name!r} ({detail.uuid})"


_describe = describe


# -- values through the payload pipeline --------------------------------------------
def _escaped(value: Any) -> Any:
    """A value as the default pipeline stores it: itself, unless it is a dict that
    holds the marker key (then wrapped, so it is not read as an envelope)."""
    if type(value) is dict and PAYLOAD_MARKER in value:
        return {PAYLOAD_MARKER: 1, "value": value}
    return value


def seal_value(codec: ValueCodec | None, value: Any, field: str,
               detail: models._Record) -> Any:
    """What to store for ``value`` (field ``field`` of ``detail``)."""
    if codec is None or codec.is_default:
        return _escaped(value)
    return None if value is None else codec.encode(value, field, describe(detail))


def seal_meta(codec: ValueCodec | None, meta: dict[str, Any],
              detail: models._Record) -> dict[str, Any]:
    """A record's meta as stored: its keys as they are, each value sealed."""
    if not meta:
        return meta
    if codec is None or codec.is_default:
        for value in meta.values():
            if type(value) is dict and PAYLOAD_MARKER in value:
                return {key: _escaped(v) for key, v in meta.items()}
        return meta
    owner = describe(detail)
    return {key: None if v is None else codec.encode(v, f"meta[{key!r}]", owner)
            for key, v in meta.items()}


def _seal(record: dict[str, Any], codec: ValueCodec | None, detail: models._Record,
          names: tuple[str, ...] = ()) -> dict[str, Any]:
    if codec is None or codec.is_default:
        # The default path, inlined (it runs on every write): values stay as they
        # are, but for a dict holding the marker key.
        for name in names:
            value = record[name]
            if type(value) is dict and PAYLOAD_MARKER in value:
                record[name] = _escaped(value)
        meta = record["meta"]
        if meta:
            record["meta"] = seal_meta(codec, meta, detail)
        return record
    for name in names:
        record[name] = seal_value(codec, record[name], name, detail)
    record["meta"] = seal_meta(codec, record["meta"], detail)
    return record


def _open(codec: ValueCodec | None, stored: dict, where: str) -> Any:
    if codec is not None:
        return codec.decode(stored, where)
    if len(stored) == 2 and type(stored.get("value")) is dict:
        return stored["value"]
    raise SerializationError(f"the value in {where} was written through a payload pipeline "
                             f"and must be read through one (a backend's)")


def open_values(record: dict[str, Any], codec: ValueCodec | None, where: str,
                names: tuple[str, ...] = ATOM_VALUES) -> dict[str, Any]:
    """``record`` with every stored value (``names`` and meta values) decoded, in place."""
    for name in names:
        value = record.get(name)
        if type(value) is dict and PAYLOAD_MARKER in value:
            record[name] = _open(codec, value, f"{where}, {name}")
    meta = record.get("meta")
    if type(meta) is dict:
        for key, value in meta.items():
            if type(value) is dict and PAYLOAD_MARKER in value:
                meta[key] = _open(codec, value, f"{where}, meta[{key!r}]")
    return record


def logbook_record(lb: models.LogBook, revision: int | None = None,
                   codec: ValueCodec | None = None) -> dict[str, Any]:
    """The stored form of a logbook (meta values through ``codec``)."""
    record = lb.to_dict(marshal_time=True)
    record["revision"] = revision
    return _seal(record, codec, lb)


def flow_record(fd: models.FlowDetail, parent_uuid: str | None,
                revision: int | None = None, codec: ValueCodec | None = None) -> dict[str, Any]:
    """The stored form of a flow detail (meta values through ``codec``)."""
    record = fd.to_dict()
    record["parent_uuid"] = parent_uuid
    record["revision"] = revision
    return _seal(record, codec, fd)


def atom_record(ad: models.AtomDetail, parent_uuid: str | None,
                revision: int | None = None, codec: ValueCodec | None = None) -> dict[str, Any]:
    """The stored form of an atom detail (its values through ``codec``)."""
    record = ad.to_dict()
    record["type"] = models.atom_detail_type(ad)
    record["parent_uuid"] = parent_uuid
    record["revision"] = revision
    return _seal(record, codec, ad, ATOM_VALUES)


def unserializable(record: dict[str, Any], detail: models._Record,
                   err: BaseException) -> UnserializableValue:
    """The error for a record JSON cannot encode, naming the field and the type."""
    what, culprit = "a value", None
    candidates = [(n, v) for n, v in record.items() if n != "meta"]
    candidates += [(f"meta[{k!r}]", v) for k, v in (record.get("meta") or {}).items()]
    for name, value in candidates:
        try:
            _encoder.encode(value)
        except (TypeError, ValueError, RecursionError):
            what, culprit = name, _offender(value)
            break
    type_name = culprit.__qualname__ if culprit is not None else None
    shown = f"the offending type is {type_name!r}; " if type_name else ""
    return UnserializableValue(
        f"cannot store {what} of {describe(detail)}: {err} ({shown}stored values must be "
        f"JSON-serializable: dict, list, str, int, float, bool, None; or configure another "
        f"serializer)", record=describe(detail), field=what if culprit else None,
        type_name=type_name)


def _offender(value: Any, depth: int = 0) -> type:
    """The type of the first part of ``value`` JSON cannot encode."""
    if depth < 50:
        parts = ([p for kv in value.items() for p in kv] if isinstance(value, dict)
                 else value if isinstance(value, (list, tuple)) else ())
        for part in parts:
            try:
                _encoder.encode(part)
            except (TypeError, ValueError, RecursionError):
                return _offender(part, depth + 1)
    return type(value)


def encode_record(record: dict[str, Any], detail: models._Record) -> bytes:
    """The bytes of a record dict (its values already sealed)."""
    fields.stored_name(detail)
    try:
        data = encode_text(record).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as err:
        raise unserializable(record, detail, err) from err
    telemetry.add_bytes(len(data))
    return data


def _load(build, record: Any, where: str):
    try:
        obj = build(record)
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as err:
        raise CorruptRecord(f"stored data in {where} is not a valid record: {err}",
                            location=where) from err
    obj._mark_saved(record.get("revision"))
    return obj


def holds_envelope(data: bytes | str) -> bool:
    """Whether stored text may hold a payload envelope (a value to open): this
    library writes the marker key as it is, so text without it holds none."""
    if type(data) is bytes:
        return _MARKER_BYTES in data
    if isinstance(data, str):
        return PAYLOAD_MARKER in data
    try:
        return _MARKER_BYTES in bytes(data)   # bytearray, memoryview...
    except TypeError:
        return True                           # not text: let the decoder say so


_MARKER_BYTES = PAYLOAD_MARKER.encode("ascii")


def _load_stored(cls: Any, record: dict[str, Any], where: str, codec: ValueCodec | None,
                 names: tuple[str, ...], token: object | None, sealed: bool,
                 state: Any = None) -> Any:
    """``cls.from_stored`` of a stored record (a dict), its values opened unless
    ``sealed`` is False, stamped as read from the store ``token`` names (None: none)."""
    if sealed:
        open_values(record, codec, where, names)
    try:
        return cls.from_stored(record, loaded(token, record.get("revision"),
                                              state if token is not None else None))
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as err:
        raise CorruptRecord(f"stored data in {where} is not a valid record: {err}",
                            location=where) from err


def load_logbook(record: dict[str, Any], where: str = "logbook",
                 codec: ValueCodec | None = None, *, token: object | None = None,
                 sealed: bool = True) -> models.LogBook:
    """A logbook from its stored form (meta values through ``codec``); ``token``
    names the store it was read from, ``sealed=False`` says the stored text holds
    no envelope (:func:`holds_envelope`), so no value is opened."""
    if type(record) is not dict:
        return _load(models.LogBook.from_dict, record, where)
    return _load_stored(models.LogBook, record, where, codec, (), token, sealed)


def load_flow(record: dict[str, Any], where: str = "flow detail",
              codec: ValueCodec | None = None, *, token: object | None = None,
              sealed: bool = True) -> models.FlowDetail:
    """A flow detail from its stored form (meta values through ``codec``); ``token``
    and ``sealed`` as for :func:`load_logbook`."""
    if type(record) is not dict:
        return _load(models.FlowDetail.from_dict, record, where)
    return _load_stored(models.FlowDetail, record, where, codec, (), token, sealed,
                        record.get("state"))


def load_atom(record: dict[str, Any], where: str = "atom detail",
              codec: ValueCodec | None = None, *, token: object | None = None,
              sealed: bool = True) -> models.AtomDetail:
    """An atom detail from its stored form (its values through ``codec``); ``token``
    and ``sealed`` as for :func:`load_logbook`."""
    if type(record) is not dict:
        return _load(_atom_from_dict, record, where)
    kind = record.get("type")
    cls = _ATOM_CLASSES.get(kind) if type(kind) is str else None
    if cls is None:   # the error says why (after the values, as every load opens them first)
        return _load(_atom_from_dict, open_values(record, codec, where) if sealed else record,
                     where)
    return _load_stored(cls, record, where, codec, ATOM_VALUES, token, sealed,
                        record.get("state"))


def _atom_from_dict(rec: Any) -> models.AtomDetail:
    kind = rec.get("type")
    if kind not in models.ATOM_TYPES:
        raise InvalidFormat(f"'type' must be one of {', '.join(models.ATOM_TYPES)}, "
                            f"not {kind!r:.60}")
    return models.atom_detail_class(kind).from_dict(rec)


_ATOM_CLASSES = {kind: models.atom_detail_class(kind) for kind in models.ATOM_TYPES}
