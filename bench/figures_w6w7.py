"""W6 and W7 figures from a run's raw results, and the issue's targets for them.

W7: per backend the median over the rounds of our per-atom time in each
durability mode, of the one-commit floor measured in the same rounds, their
ratio (× floor), and DBOS Transact's median per step on PostgreSQL and sqlite
with its ratio to ours (DBOS ÷ ours: above 1 we are faster).  W6: per backend
the median aggregate atoms/s at each number of flows and the scaling ratio
(16 flows ÷ 1 flow); for the multi-process stores the aggregate and every
error that escaped.
"""

from __future__ import annotations

from typing import Any

from .figures import get, ratio
from .workloads import median

__all__ = ["w7_figures", "dbos_figures", "w6_figures", "w6w7_targets", "W7_FLOOR_LIMITS",
           "W7_DBOS_LIMITS", "W6_SCALING_LIMIT"]

# Per atom (default mode) at most this many times the one-commit floor.
W7_FLOOR_LIMITS = {"postgresql": 1.3, "mysql": 1.3, "zookeeper": 1.3, "sqlite": 5.0}
# At least this many times faster per atom than DBOS per step.
W7_DBOS_LIMITS = {"postgresql": 5.0, "sqlite": 20.0}
# Aggregate atoms/s at 16 flows at least this many times one flow's.
W6_SCALING_LIMIT = 8.0
W6_SCALED = ("postgresql", "mysql", "zookeeper")


def w7_figures(doc: dict[str, Any], backend: str) -> dict[str, Any]:
    """Medians over the rounds for one backend (``unavailable``/``errors`` say why not)."""
    entry = get(doc, "w7", "backends", backend) or {}
    out: dict[str, Any] = {"unavailable": entry.get("unavailable"), "modes": {},
                           "floor_s": None, "floor_what": None, "rounds": 0, "errors": []}
    rounds = []
    for r in entry.get("rounds") or []:
        w7 = get(r, "results", "W7")
        if w7 is None:
            out["errors"].append(r.get("error") or r.get("unavailable") or "no results")
            continue
        rounds.append(w7)
        out["errors"] += [f"{k}: {v['error']}" for k, v in w7.items()
                          if isinstance(v, dict) and "error" in v]
    out["rounds"] = len(rounds)
    floors = [get(w, "floor", "per_op_s") for w in rounds]
    out["floor_s"] = median([f for f in floors if f is not None])
    out["floor_what"] = next((get(w, "floor", "what") for w in rounds
                              if get(w, "floor", "what")), None)
    out["floor_spread"] = _spread(floors)
    # The same write recording its history entry, raw (what history itself costs).
    logged = [get(w, "floor_history", "per_op_s") for w in rounds]
    out["floor_history_s"] = median([f for f in logged if f is not None])
    out["floor_history_what"] = next((get(w, "floor_history", "what") for w in rounds
                                      if get(w, "floor_history", "what")), None)
    out["floor_history_spread"] = _spread(logged)
    for mode in next((w.get("modes") for w in rounds), None) or []:
        values = [get(w, mode, "per_atom_s") for w in rounds]
        per = median([v for v in values if v is not None])
        out["modes"][mode] = {"per_atom_s": per, "x_floor": ratio(per, out["floor_s"]),
                              "x_floor_history": ratio(per, out["floor_history_s"]),
                              "spread": _spread(values),
                              "rounds": sum(v is not None for v in values)}
    return out


def _spread(values: list[float | None]) -> tuple[float, float] | None:
    values = [v for v in values if v is not None]
    return (min(values), max(values)) if values else None


def dbos_figures(doc: dict[str, Any], database: str) -> dict[str, Any]:
    """DBOS's median per step on ``database`` (``unavailable``/``errors`` say why not)."""
    peer = get(doc, "w7", "dbos") or {}
    entry = get(peer, "databases", database) or {}
    values, errors = [], []
    for r in entry.get("rounds") or []:
        per = get(r, "results", "per_step_s")
        if per is None:
            errors.append(r.get("error") or "no results")
        else:
            values.append(per)
    return {"unavailable": entry.get("unavailable") or (peer.get("unavailable")
                                                        if not entry else None),
            "per_step_s": median(values), "spread": _spread(values), "rounds": len(values),
            "errors": errors, "version": peer.get("version"),
            "launch_s": median([get(r, "results", "launch_s") for r in entry.get("rounds") or []
                                if get(r, "results", "launch_s") is not None])}


def w6_figures(doc: dict[str, Any], backend: str) -> dict[str, Any]:
    """Threads: atoms/s per level and the 16 ÷ 1 scaling; processes: the aggregate."""
    w6 = get(doc, "w6") or {}
    if backend in (w6.get("threads") or {}):
        entry = w6["threads"][backend]
        levels = get(entry, "results", "W6") or {}
        per = {n: get(levels, n, "atoms_per_s") for n in levels}
        first, last = (levels and min(levels, key=int)), (levels and max(levels, key=int))
        errors: dict[str, int] = {}
        for level in levels.values():
            for line, n in (level.get("error_lines") or {}).items():
                errors[line] = errors.get(line, 0) + n
        return {"kind": "threads", "unavailable": entry.get("unavailable"),
                "error": entry.get("error") or get(entry, "results", "error"),
                "atoms_per_s": per, "levels": sorted(levels, key=int),
                "scaling": ratio(per.get(last), per.get(first)) if levels else None,
                "reps": {n: levels[n].get("reps") for n in levels},
                "ran": {n: min((r.get("flows", 0) for r in levels[n].get("runs") or []),
                               default=0) for n in levels},
                "errors": sum(level.get("errors", 0) for level in levels.values()),
                "lock_errors": sum(level.get("lock_errors", 0) for level in levels.values()),
                "error_lines": errors}
    entry = (w6.get("processes") or {}).get(backend)
    if entry is None:
        return {"kind": None, "unavailable": "not run"}
    return {"kind": "processes", "unavailable": entry.get("unavailable"),
            "error": "; ".join(entry.get("failures") or []) or None,
            "atoms_per_s": entry.get("atoms_per_s"), "reps": entry.get("reps"),
            "processes": entry.get("processes"), "flows_per_process":
            entry.get("flows_per_process"), "errors": entry.get("errors", 0),
            "lock_errors": entry.get("lock_errors", 0),
            "error_lines": entry.get("error_lines") or {}}


def _row(target: str, backend: str, value: float | None, limit: float, shown: str,
         lower: bool = True, note: str = "") -> dict[str, Any]:
    if value is None:
        status = "not measured"
    else:
        status = "met" if (value <= limit if lower else value >= limit) else "not met"
    return {"target": target, "backend": backend, "value": value, "limit": limit,
            "shown": shown, "status": status, "note": note}


def _why(*parts: Any) -> str:
    return "; ".join(str(p) for p in parts if p)[:300]


def w6w7_targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's W6/W7 targets (rows as :func:`bench.figures.targets` makes them)."""
    rows: list[dict[str, Any]] = []
    backends = list(get(doc, "w7", "backends") or {})
    for b, limit in W7_FLOOR_LIMITS.items():
        if b not in backends:
            continue
        f = w7_figures(doc, b)
        mode = get(f, "modes", "default") or {}
        rows.append(_row(f"W7 per atom ≤ {limit:g}× one-commit floor", b,
                         mode.get("x_floor"), limit, "×floor",
                         note=_why(f["unavailable"], *f["errors"]) or _us_note(
                             mode.get("per_atom_s"), f["floor_s"], f["floor_history_s"])))
    for b, limit in W7_DBOS_LIMITS.items():
        if b not in backends:
            continue
        f, peer = w7_figures(doc, b), dbos_figures(doc, b)
        ours = get(f, "modes", "default", "per_atom_s")
        rows.append(_row(f"W7 per atom ≥ {limit:g}× faster than DBOS per step", b,
                         ratio(peer["per_step_s"], ours), limit, "×faster", lower=False,
                         note=_why(peer["unavailable"], *peer["errors"],
                                   f["unavailable"], *f["errors"])
                         or f"DBOS {_us(peer['per_step_s'])}/step, ours {_us(ours)}/atom"))
    threads = get(doc, "w6", "threads") or {}
    for b in W6_SCALED:
        if b not in threads:
            continue
        f = w6_figures(doc, b)
        rows.append(_row(f"W6 16 flows ≥ {W6_SCALING_LIMIT:g}× one flow's atoms/s", b,
                         f["scaling"], W6_SCALING_LIMIT, "×", lower=False,
                         note=_why(f["unavailable"], f.get("error"), _errors_note(f))))
    for b in get(doc, "w6", "processes") or {}:
        f = w6_figures(doc, b)
        measured = f["atoms_per_s"] is not None and not f["unavailable"]
        row = _row("W6 4 processes × 4 flows: no error escapes", b,
                   float(f["errors"]) if measured else None, 0.0, "errors",
                   note=_why(f["unavailable"], f.get("error"), _errors_note(f))
                   or f"{f['atoms_per_s']:.0f} atoms/s aggregate")
        rows.append(row)
    return rows


def _errors_note(f: dict[str, Any]) -> str:
    if not f.get("errors"):
        return ""
    first = "; ".join(f"{n}× {line[:120]}" for line, n in list(f["error_lines"].items())[:2])
    return (f"{f['errors']} errors ({f['lock_errors']} lock errors), see W6 below: "
            f"{first}")


def _us(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-4 else f"{seconds * 1e6:,.0f} µs"


def _us_note(ours: float | None, floor: float | None, logged: float | None = None) -> str:
    if ours is None:
        return ""
    note = f"{_us(ours)}/atom, floor {_us(floor)}"
    if logged is not None:
        note += (f"; the floor recording a history entry {_us(logged)} "
                 f"(ours {ratio(ours, logged):.2f}× that)")
    return note
