"""``python -m bench.payload``: what each payload stage costs per value.

For values of 1 KB, 100 KB and 10 MB (JSON-like rows: ids, names, floats,
tags, so compression has something to do) it times each stage alone, write
and read: serializing (json, msgpack, pickle), compressing (zstd, zlib),
encrypting (AES-GCM), offloading (a local directory, ``memory://``), and the
whole non-default pipeline (msgpack + zstd + AES-GCM + offload).  Then the
default pipeline against the path without one (``bare``: the stored-format
module's pipeline hooks swapped for no-ops, as the code was before): encoding
and decoding an atom record, and ``Storage.save`` on the memory backend.

Prints a table (best of ``--repeat`` rounds; µs per value below 1 ms, else
ms) and, with ``--json``, the figures.  ``--quick``: small budgets (a smoke run).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

SIZES = {"1KB": 1_000, "100KB": 100_000, "10MB": 10_000_000}


def make_value(size: int) -> dict[str, Any]:
    """A JSON-like value whose JSON form is about ``size`` bytes."""
    row = {"id": 0, "name": "item-000000", "score": 0.5, "tags": ["alpha", "beta"],
           "note": "x" * 16}
    per_row = len(json.dumps(row, separators=(",", ":"))) + 1
    rows = [{"id": i, "name": f"item-{i:06d}", "score": i * 0.37, "tags": ["alpha", "beta"],
             "note": os.urandom(8).hex()} for i in range(max(1, size // per_row))]
    return {"rows": rows}


def best(fn: Callable[[], Any], budget: float, repeat: int) -> float:
    """Best seconds per call of ``fn`` over ``repeat`` rounds of about ``budget`` s."""
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    n = max(1, int(budget / once))
    result = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        result = min(result, (time.perf_counter() - start) / n)
    return result


def stage_figures(budget: float, repeat: int, sizes: list[str]) -> dict[str, dict[str, Any]]:
    """{stage: {size: (write s, read s)}} for every stage alone and the whole pipeline."""
    from persistence.payload import pipeline_from_conf
    from persistence.payload.offload import BlobStore

    key = os.urandom(32)
    tmp = tempfile.TemporaryDirectory(prefix="bench-payload-")
    stores = {"offload dir": BlobStore(os.path.join(tmp.name, "blobs")),
              "offload memory://": BlobStore("memory://bench-payload")}
    full = pipeline_from_conf({"serializer": "msgpack", "compress": "zstd",
                               "encrypt": {"keys": {"k": key}},
                               "offload": {"url": os.path.join(tmp.name, "full"),
                                           "threshold": 65536}})
    out: dict[str, dict[str, Any]] = {}
    for label in sizes:
        stages = _one_size(make_value(SIZES[label]), key, stores, full, budget, repeat)
        for name, pair in stages.items():
            out.setdefault(name, {})[label] = pair
    tmp.cleanup()
    return out


def _one_size(value: Any, key: bytes, stores: dict[str, Any], full: Any, budget: float,
              repeat: int) -> dict[str, tuple[float, float]]:
    """(write s, read s) of every stage for one value."""
    from persistence.payload.ciphers import AesGcmCipher
    from persistence.payload.compressors import ZlibCompressor, ZstdCompressor
    from persistence.payload.serializers import JsonSerializer, MsgpackSerializer, PickleSerializer

    aad, data = b"header", JsonSerializer().dumps(value)
    out: dict[str, tuple[float, float]] = {}

    def pair(name: str, write: Callable[[], Any], read: Callable[[], Any]) -> None:
        out[name] = (best(write, budget, repeat), best(read, budget, repeat))

    for ser in (JsonSerializer(), MsgpackSerializer(), PickleSerializer()):
        pair(f"serialize {ser.name}", functools.partial(ser.dumps, value),
             functools.partial(ser.loads, ser.dumps(value)))
    for comp in (ZstdCompressor(), ZlibCompressor()):
        pair(f"compress {comp.name}", functools.partial(comp.compress, data),
             functools.partial(comp.decompress, comp.compress(data)))
    cipher = AesGcmCipher()
    pair("encrypt aes-gcm", functools.partial(cipher.seal, key, data, aad),
         functools.partial(cipher.open, key, cipher.seal(key, data, aad), aad))
    for name, store in stores.items():
        written: list[dict] = []
        pair(name, lambda s=store, w=written: w.append(s.put(data)),
             functools.partial(store.get, store.put(data), "bench"))
        store.delete([r["key"] for r in written])
    pair("whole pipeline", functools.partial(full.encode, value, "results", "bench"),
         functools.partial(full.decode, full.encode(value, "results", "bench"), "bench"))
    return out


@contextlib.contextmanager
def _bare() -> Iterator[None]:
    """The stored-format module with its pipeline hooks swapped for no-ops: the path
    values took before the pipeline existed (what ``bare`` measures)."""
    from persistence.models import encoding

    saved = encoding._seal, encoding.open_values
    encoding._seal = lambda record, codec, detail, names=(): record
    encoding.open_values = lambda record, codec, where, names=(): record
    try:
        yield
    finally:
        encoding._seal, encoding.open_values = saved


def default_figures(budget: float, repeat: int) -> dict[str, float]:
    """The path without a pipeline (``bare``) against the default pipeline (seconds
    per operation), measured alternately so drift hits both alike."""
    import persistence
    from persistence.atom import Task
    from persistence.models import FlowDetail, LogBook, TaskDetail, encoding
    from persistence.payload import DEFAULT
    from persistence.storage import Storage

    ad = TaskDetail("t", "u-1")
    ad.results = {"rows": [1, 2, 3], "name": "value"}
    ad.meta["progress"] = 1.0
    data = encoding.encode_record(encoding.atom_record(ad, "f-1", 1, DEFAULT), ad)

    def write() -> bytes:
        return encoding.encode_record(encoding.atom_record(ad, "f-1", 1, DEFAULT), ad)

    def read() -> Any:
        return encoding.load_atom(encoding.loads(data), "bench", DEFAULT)

    be = persistence.fetch("memory://")
    book, flow = LogBook("bench"), FlowDetail("bench")
    book.add(flow)
    with be.get_connection() as conn:
        conn.save_logbook(book)
    storage = Storage(flow, be)
    storage.ensure_atoms([Task("t", provides="v")])
    save = functools.partial(_save_next, storage, iter(range(10**9)))
    figures: dict[str, float] = {}
    for _ in range(repeat):
        for label in ("bare", "default pipeline"):
            with _bare() if label == "bare" else contextlib.nullcontext():
                for what, fn in (("atom record encode", write), ("atom record decode", read),
                                 ("Storage.save memory://", save)):
                    key = f"{what}, {label}"
                    figures[key] = min(figures.get(key, float("inf")), best(fn, budget, 1))
    storage.close()
    be.close()
    return figures


def _save_next(storage: Any, counter: Any) -> None:
    storage.save("t", next(counter))


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e6:9.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:9.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.payload")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small budgets")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    budget = 0.01 if args.quick else 0.3
    repeat = 1 if args.quick else args.repeat
    sizes = ["1KB", "100KB"] if args.quick else list(SIZES)
    stages = stage_figures(budget, repeat, sizes)
    defaults = default_figures(budget, repeat)
    if args.json:
        print(json.dumps({"stages": stages, "default": defaults, "repeat": repeat}))
        return 0
    print(f"Per value, write / read, best of {repeat}")
    print(f"  {'stage':<22}" + "".join(f"{s:>28}" for s in sizes))
    for stage, by_size in stages.items():
        cells = "".join(f"{_fmt(by_size[s][0])} /{_fmt(by_size[s][1])}" for s in sizes)
        print(f"  {stage:<22}{cells}")
    print("Default pipeline against today's path")
    for what, seconds in defaults.items():
        print(f"  {what:<48}{_fmt(seconds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
