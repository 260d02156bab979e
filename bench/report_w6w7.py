"""Markdown sections for W7 (per-atom checkpoint against the floor and DBOS) and W6
(concurrent flows), each with its targets met / not met."""

from __future__ import annotations

from typing import Any

from .figures import get, ratio
from .figures_w6w7 import dbos_figures, w6_figures, w6w7_targets, w7_figures
from .markdown import t, table, x

__all__ = ["w7_section", "w6_section", "target_cells"]


def target_cells(row: dict[str, Any]) -> list[str]:
    """One targets-table row: target, backend, measured, status, note."""
    if row["value"] is None:
        shown = "–"
    elif row["shown"] == "errors":
        shown = f"{row['value']:.0f} errors"
    elif row["shown"] == "×faster":
        shown = f"{x(row['value'])} faster"
    else:
        shown = x(row["value"])
    status = {"met": "**met**", "not met": "**not met**"}.get(row["status"], row["status"])
    return [row["target"], row["backend"], shown, status, row["note"]]


def _targets(doc: dict[str, Any], prefix: str) -> list[str]:
    rows = [target_cells(r) for r in w6w7_targets(doc) if r["target"].startswith(prefix)]
    if not rows:
        return []
    return table(["target", "backend", "measured", "status", "note"], rows)


def _with_spread(value: float | None, spread: Any) -> str:
    if value is None:
        return "–"
    if spread and spread[0] != spread[1]:
        return f"{t(value)} ({t(spread[0])} – {t(spread[1])})"
    return t(value)


def w7_section(doc: dict[str, Any]) -> list[str]:
    """W7: per atom, ours in each durability mode, the one-commit floor, DBOS per step."""
    w7 = doc.get("w7")
    if not w7:
        return []
    backends = list(w7.get("backends") or {})
    figs = {b: w7_figures(doc, b) for b in backends}
    modes = sorted({m for f in figs.values() for m in f["modes"]},
                   key=lambda m: (m != "default", m))
    peer_version = get(w7, "dbos", "version") or "3.4.0"
    head = (["backend"] + [h for m in modes for h in (f"ours, {m}", "× floor")]
            + ["one-commit floor", "floor + history entry", "ours default × that",
               f"DBOS {peer_version} per step", "DBOS ÷ ours", "rounds"])
    rows = []
    for b in backends:
        f = figs[b]
        if f["unavailable"] or not f["rounds"]:
            why = f["unavailable"] or "; ".join(f["errors"]) or "no round completed"
            rows.append([b, f"not available ({why})"] + ["–"] * (len(head) - 2))
            continue
        cells = [b]
        for m in modes:
            mode = f["modes"].get(m) or {}
            cells += [_with_spread(mode.get("per_atom_s"), mode.get("spread")),
                      x(mode.get("x_floor"))]
        cells.append(_with_spread(f["floor_s"], f["floor_spread"]))
        cells += [_with_spread(f["floor_history_s"], f["floor_history_spread"]),
                  x(get(f, "modes", "default", "x_floor_history"))]
        peer = dbos_figures(doc, b) if b in (get(w7, "dbos", "databases") or {}) else None
        ours = get(f, "modes", "default", "per_atom_s")
        if peer is None:
            cells += ["–", "–"]
        elif peer["per_step_s"] is None:
            why = peer["unavailable"] or "; ".join(peer["errors"]) or "not measured"
            cells += [f"not measured ({why[:160]})", "–"]
        else:
            cells += [_with_spread(peer["per_step_s"], peer["spread"]),
                      x(ratio(peer["per_step_s"], ours))]
        cells.append(str(f["rounds"]))
        rows.append(cells)
    out = ["## W7: per-atom checkpoint against one commit and against DBOS Transact", "",
           f"Per atom: `set_atom_state(name, RUNNING)` then `save(name, result)` through "
           f"`Storage` (policy `always`), timed over {w7['atoms']} atoms after "
           f"{w7['warmup']} untimed ones, each round on a fresh store; the median of the "
           f"rounds, (fastest – slowest round) beside it.  The one-commit floor is one "
           f"durable write of an atom record through the raw driver in the same process "
           f"and round; DBOS is one step of a {w7['atoms']}-step workflow (each step "
           f"returns a small dict) on a fresh system database, launch excluded.  Rounds "
           f"interleave ours, the floor and DBOS, in an order that rotates.", ""]
    if "at_most_once" not in modes:
        out += ["This revision's `Storage` takes no `at_most_once` keyword: only the "
                "default durability mode is measured.", ""]
    else:
        out += ["Modes: `default` = at-least-once (RUNNING need not be durable before "
                "the atom runs); `at_most_once` = `Storage(..., at_most_once=True)`, "
                "RUNNING durable before the call returns.", ""]
    out += table(head, rows)
    floor_kinds = "; ".join(f"{b}: {figs[b]['floor_what']}" for b in backends
                            if figs[b]["floor_what"])
    logged_kinds = "; ".join(f"{b}: {figs[b]['floor_history_what']}" for b in backends
                             if figs[b]["floor_history_what"])
    if floor_kinds:
        out += [f"Floors: {floor_kinds}.", ""]
    if logged_kinds:
        out += ["Floors recording a history entry with each write, as our backends do "
                "by default (a row in an indexed history table in the same transaction, "
                f"or a sequential node in the same multi): {logged_kinds}.", ""]
    if w7.get("stopped"):
        out += [f"Stopped {w7['stopped']}.", ""]
    errors = [f"{b}: {e}" for b in backends for e in figs[b]["errors"]]
    if errors:
        out += ["Errors: " + "; ".join(errors), ""]
    out += ["DBOS runs with its defaults apart from the system database URL, a pool of 4 "
            "and log level WARNING; on sqlite that is its default rollback journal "
            "(synchronous=FULL), while our sqlite backend runs WAL with "
            "synchronous=NORMAL (its floor uses the same settings).", ""]
    return out + _targets(doc, "W7")


def w6_section(doc: dict[str, Any]) -> list[str]:
    """W6: 1…16 flows as threads on one backend object; processes sharing one store."""
    w6 = doc.get("w6")
    if not w6:
        return []
    levels = [str(n) for n in w6.get("levels") or ()]
    out = ["## W6: concurrent flows", "",
           f"Each flow has its own `Storage` (policy `always`) and checkpoints atoms "
           f"(RUNNING, then `save`) in a loop for a {w6['window_s']:g} s window, up to "
           f"{w6['reps']} windows per level, the levels interleaved; aggregate atoms/s "
           f"is every flow's atoms over the time to the last flow's last atom (median "
           f"of the windows).  Threads: every flow a thread of one process, all on one "
           f"backend object fetched once.", ""]
    rows = []
    for b in w6.get("threads") or {}:
        f = w6_figures(doc, b)
        if f["unavailable"] or f.get("error"):
            rows.append([b, f"not available ({f['unavailable'] or f['error']})"]
                        + ["–"] * (len(levels) + 2))
            continue
        rows.append([b] + [_rate(f["atoms_per_s"].get(n)) + _short(f["ran"].get(n), n)
                           for n in levels] + [x(f["scaling"]), _errors(f),
                                               str(min(f["reps"].values(), default=0))])
    if rows:
        if w6.get("pool_timeout_s"):
            out += [f"PostgreSQL and MariaDB run with `pool_timeout={w6['pool_timeout_s']:g}` "
                    f"(the pool's size is the backend's default), so that a flow the pool "
                    f"cannot serve fails within seconds (counted below) instead of "
                    f"stalling the run.", ""]
        head = (["backend"] + [f"{n} flow{'s' if n != '1' else ''}" for n in levels]
                + [f"{levels[-1]} ÷ {levels[0]}" if levels else "scaling",
                   "errors (lock errors)", "windows"])
        out += table(head, rows)
    rows = []
    for b in w6.get("processes") or {}:
        f = w6_figures(doc, b)
        if f["unavailable"]:
            rows.append([b, f"not available ({f['unavailable']})", "–", "–", "–"])
            continue
        rows.append([b, f"{f['processes']} × {f['flows_per_process']}",
                     _rate(f["atoms_per_s"]), _errors(f), f.get("error") or ""])
    if rows:
        out += ["Processes: each process fetches its own backend on the one store and "
                "runs its flows as threads; all start on one signal.", ""]
        out += table(["store", "processes × flows", "aggregate atoms/s",
                      "errors escaped (lock errors)", "failures"], rows)
    lines = []
    for kind in ("threads", "processes"):
        for b in w6.get(kind) or {}:
            for line, n in w6_figures(doc, b).get("error_lines", {}).items():
                lines.append(f"- {b}: {n}× `{line}`")
    if lines:
        out += ["Errors that escaped (first line, verbatim):", ""] + lines + [""]
    return out + _targets(doc, "W6")


def _short(ran: int | None, level: str) -> str:
    """A note when fewer flows ran than the level asked for (the others failed to start)."""
    return f" (only {ran} ran)" if ran is not None and ran < int(level) else ""


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _errors(f: dict[str, Any]) -> str:
    return f"{f['errors']} ({f['lock_errors']})"
