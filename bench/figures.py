"""From raw results to the figures the report shows: per-backend numbers, ratios, targets.

Every figure is a median over the repetitions; a ratio "× floor" divides a
per-item time by the same backend's raw floor for that kind of operation
(update, bulk insert, select); "p/TF" divides persistence's time by
TaskFlow's (below 1: persistence is faster).
"""

from __future__ import annotations

from typing import Any

__all__ = ["get", "ratio", "backend_figures", "targets", "FLAT_LIMIT"]

# "Flat" flow-state update: at the largest W5 size at most this many times the
# time at the smallest.
FLAT_LIMIT = 2.0


def get(data: Any, *keys: Any) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def _w5_sizes(doc: dict[str, Any]) -> list[str]:
    return [str(n) for n in get(doc, "meta", "sizes", "w5_sizes") or ()]


def backend_figures(doc: dict[str, Any], impl: str, backend: str) -> dict[str, Any]:
    """Flat dict of the figures of one implementation on one backend."""
    run = get(doc, "runs", impl, backend) or {}
    main = get(run, "main", "results") or {}
    f: dict[str, Any] = {"unavailable": run.get("unavailable"),
                         "error": get(run, "main", "error")}
    f["W1_s"], f["W1_records"] = get(main, "W1", "median_s"), get(main, "W1", "items")
    f["W1_rec_s"] = get(main, "W1", "per_item_s")
    f["W2_s"] = get(main, "W2", "per_item_s")
    f["W3_one_s"], f["W3_one_rec_s"] = get(main, "W3_one", "median_s"), get(main, "W3_one",
                                                                             "per_item_s")
    f["W3_many_s"], f["W3_many_rec_s"] = get(main, "W3_many", "median_s"), get(
        main, "W3_many", "per_item_s")
    f["W4"] = get(main, "W4") or {}
    f["reps"] = {k: v.get("reps") for k, v in main.items() if isinstance(v, dict)}
    f["reps"].update({f"W4_{k}": v.get("reps") for k, v in f["W4"].items()
                      if isinstance(v, dict)})
    f["errors"] = {k: v["error"] for k, v in main.items()
                   if isinstance(v, dict) and "error" in v}
    f["W5"] = {}
    for n in _w5_sizes(doc):
        part = get(run, "w5", n) or {}
        w5 = get(part, "results", "W5") or {}
        f["W5"][n] = {
            "save_s": get(w5, "save", "median_s"), "save_atom_s": get(w5, "save", "per_item_s"),
            "save_error": w5.get("save_error"), "chunked_fill_s": w5.get("chunked_fill_s"),
            "p50_s": get(w5, "update", "p50_s"), "p99_s": get(w5, "update", "p99_s"),
            "load_s": get(w5, "load", "median_s"), "load_atom_s": get(w5, "load", "per_item_s"),
            "atoms_loaded": get(w5, "load", "atoms_loaded"),
            "flow_s": get(w5, "flow_update", "median_s"),
            "flow_error": w5.get("flow_update_error"),
            "rss_mb": get(w5, "rss", "peak_mb"), "rss_delta_mb": get(w5, "rss", "delta_mb"),
            "reps": {k: get(w5, k, "reps") for k in ("save", "update", "load", "flow_update")},
            "error": w5.get("error") or part.get("error") or part.get("unavailable")}
    return f


def floor(doc: dict[str, Any], backend: str, kind: str) -> float | None:
    return get(doc, "floors", backend, kind, "per_item_s")


def _status(value: float | None, limit: float, lower_is_better: bool = True) -> str:
    if value is None:
        return "not measured"
    ok = value <= limit if lower_is_better else value >= limit
    return "met" if ok else "not met"


def _row(target: str, backend: str, value: float | None, limit: float, shown: str,
         lower: bool = True, note: str = "") -> dict[str, Any]:
    return {"target": target, "backend": backend, "value": value, "limit": limit,
            "shown": shown, "status": _status(value, limit, lower), "note": note}


def targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each met / not met / not measured, with the figure behind it."""
    rows: list[dict[str, Any]] = []
    backends = list(get(doc, "availability") or {})
    p = {b: backend_figures(doc, "persistence", b) for b in backends}
    tf = {b: backend_figures(doc, "taskflow", b) for b in backends}
    sizes = _w5_sizes(doc)
    small, big = (sizes[0], sizes[-1]) if sizes else (None, None)

    def why(b: str) -> str:
        return p[b]["unavailable"] or p[b]["error"] or p[b]["errors"].get("W2") or ""

    for b in ("sqlite", "postgresql", "mysql", "zookeeper"):
        if b in p:
            r = ratio(p[b]["W2_s"], floor(doc, b, "update"))
            rows.append(_row("W2 update ≤ 1.3× its floor", b, r, 1.3, "×floor", note=why(b)))
    if "memory" in p:
        r = ratio(p["memory"]["W2_s"], floor(doc, "memory", "update")
                  or floor(doc, "json", "update"))
        rows.append(_row("W2 update ≤ 3× json.dumps", "memory", r, 3.0, "×floor"))

    for b in ("sqlite", "postgresql"):
        if b not in p:
            continue
        always = get(p[b], "W4", "always") or {}
        note = get(p[b], "W4", "unavailable") or p[b]["errors"].get("W4") or why(b)
        calls = always.get("calls") or {}
        rows.append(_row("W4 always: ≤ 2 backend writes per atom", b,
                         always.get("writes_per_atom"), 2.0, "writes/atom",
                         note=note or (f"{sum(calls.values())} writes for "
                                       f"{always.get('atoms')} atoms: " + ", ".join(
                                           f"{k} {n}" for k, n in calls.items() if n))))
        speedup = ratio(get(tf[b], "W4", "always", "median_s"), always.get("median_s"))
        rows.append(_row("W4 always: ≥ 5× faster than TaskFlow", b, speedup, 5.0, "×faster",
                         lower=False, note=note or _tf_note(tf[b])))
        batch = get(p[b], "W4", "batch", "per_item_s")
        rows.append(_row("W4 batch: ≤ 2× bulk-insert floor per atom", b,
                         ratio(batch, floor(doc, b, "bulk")), 2.0, "×floor", note=note))

    for b in backends:
        w5 = p[b]["W5"]
        if small and big and small != big:
            flat = ratio(get(w5, big, "flow_s"), get(w5, small, "flow_s"))
            steps = " → ".join(_ms(get(w5, n, "flow_s")) for n in sizes)
            rows.append(_row(f"W5 flow-state update flat {small} → {big} atoms "
                             f"(≤ {FLAT_LIMIT:g}×)", b, flat, FLAT_LIMIT, "×",
                             note=get(w5, big, "flow_error") or why(b) or steps))
        if b == "postgresql" and big:
            flow = get(w5, big, "flow_s")
            rows.append(_row(f"W5 flow-state update < 10 ms at {big} atoms", b,
                             flow * 1000 if flow is not None else None, 10.0, "ms"))
        if big:
            load = ratio(get(w5, big, "load_atom_s"), floor(doc, b, "select"))
            rows.append(_row(f"W5 load per atom ≤ 2× select floor ({big} atoms)", b, load,
                             2.0, "×floor", note=get(w5, big, "error") or why(b)))
    if "zookeeper" in p and big:
        zk, zt = p["zookeeper"]["W5"].get(big, {}), tf["zookeeper"]["W5"].get(big, {})
        saved = zk.get("save_s") is not None and not zk.get("save_error")
        loaded = zk.get("atoms_loaded") == int(big)
        rows.append({"target": f"ZooKeeper saves and loads {big} atoms", "backend": "zookeeper",
                     "value": None, "limit": None, "shown": "",
                     "status": "met" if saved and loaded else (
                         "not measured" if zk.get("save_s") is None and not zk.get("save_error")
                         and not zk.get("error") else "not met"),
                     "note": zk.get("save_error") or zk.get("error") or
                     f"saved in {_s(zk.get('save_s'))}, loaded {zk.get('atoms_loaded')} atoms"})
        tf_fail = zt.get("save_error")
        rows.append({"target": f"(TaskFlow fails to save {big} atoms on ZooKeeper)",
                     "backend": "zookeeper", "value": None, "limit": None, "shown": "",
                     "status": ("confirmed" if tf_fail else "not measured"
                                if zt.get("save_s") is None else "TaskFlow saved them"),
                     "note": tf_fail or _tf_note(tf["zookeeper"])})
        speedup = ratio(zt.get("load_s"), zk.get("load_s"))
        rows.append(_row(f"ZooKeeper load of {big} atoms ≥ 10× faster than TaskFlow",
                         "zookeeper", speedup, 10.0, "×faster", lower=False,
                         note="TaskFlow's store filled in chunks" if zt.get("chunked_fill_s")
                         else _tf_note(tf["zookeeper"])))
    for b in backends:
        r = ratio(p[b]["W1_rec_s"], floor(doc, b, "bulk"))
        rows.append(_row("W1 save_logbook ≤ 3× bulk-insert floor", b, r, 3.0, "×floor",
                         note=why(b) or p[b]["errors"].get("W1") or ""))
    return rows


def _tf_note(f: dict[str, Any]) -> str:
    return f"TaskFlow: {f['unavailable']}" if f.get("unavailable") else ""


def _ms(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds * 1000:.2f} ms"


def _s(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds:.2f} s"
