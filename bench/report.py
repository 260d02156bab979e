"""Markdown rendering of one run: header, availability, targets, key ratios, details."""

from __future__ import annotations

from typing import Any

from . import report_w6w7
from .figures import backend_figures, floor, get, ratio, targets
from .figures_w6w7 import w6w7_targets
from .markdown import mb, t, x
from .markdown import table as _table

__all__ = ["render"]


def _header(doc: dict[str, Any]) -> list[str]:
    meta = doc["meta"]
    m = meta["machine"]
    tf_version = next((get(r, "main", "version") for r in (get(doc, "runs", "taskflow")
                                                           or {}).values()
                       if get(r, "main", "version")), None)
    w7_rounds = [r for b in (get(doc, "w7", "backends") or {}).values()
                 for r in b.get("rounds") or []]
    p_version = next((get(r, "main", "version") for r in (get(doc, "runs", "persistence")
                                                          or {}).values()
                      if get(r, "main", "version")),
                     next((r["version"] for r in w7_rounds if r.get("version")), "?"))
    tf_drivers = next((get(r, "main", "drivers") for r in (get(doc, "runs", "taskflow")
                                                           or {}).values()
                       if get(r, "main", "drivers")), {})
    drivers = ", ".join(f"{k} {v}" for k, v in sorted(meta["drivers"].items()))
    servers = ", ".join(f"{k} {v}" for k, v in sorted(meta.get("server_versions", {}).items()))
    lines = ["# persistence benchmark report", "",
             f"- **Date**: {meta['date']}  ",
             f"- **Command**: `{meta['command']}` — ran in {meta['elapsed_s']:.0f} s  ",
             f"- **Machine**: {m['cpus']} CPUs ({m['cpu']}), {m['memory_gib']} GiB RAM, "
             f"{m['os']}  ",
             f"- **persistence** {p_version} (git {meta['git']}), Python {meta['python']}; "
             f"drivers: {drivers}  ",
             f"- **TaskFlow**: {tf_version or 'not compared'}"
             + (f" (drivers: {', '.join(f'{k} {v}' for k, v in sorted(tf_drivers.items()))})"
                if tf_drivers else "") + "  ",
             f"- **Servers**: {servers or 'none'}  ",
             f"- **Load average** (1/5/15 min) at start: {_load(meta, 'start')}, at end: "
             f"{_load(meta, 'end')} on {m['cpus']} CPUs — anything above ~1 means other "
             f"work shared the machine and CPU-bound figures are inflated  ",
             f"- **Repetitions**: up to {meta['sizes']['reps']} (fewer where a phase's time "
             f"budget ran out: see the reps columns); every figure is their median"
             + (" — **QUICK MODE: tiny sizes, figures are not meaningful**"
                if meta["quick"] else ""), ""]
    return lines


def _load(meta: dict[str, Any], when: str) -> str:
    value = get(meta, "load_average", when)
    return " ".join(value) if value else "not recorded"


def _availability(doc: dict[str, Any]) -> list[str]:
    impls = list(doc["runs"])
    rows = []
    for b, reason in doc["availability"].items():
        cells = [b, f"not available ({reason})" if reason else "up"]
        for impl in impls:
            run = doc["runs"][impl].get(b, {})
            why = run.get("unavailable") or get(run, "main", "error")
            cells.append(f"not available ({why})" if run.get("unavailable")
                         else f"error ({why})" if why else "measured")
        rows.append(cells)
    return ["## Availability", ""] + _table(["backend", "service"] + impls, rows)


def _main_ran(doc: dict[str, Any]) -> bool:
    return "main" in (get(doc, "meta", "phases") or ("main",))


def _targets(doc: dict[str, Any]) -> list[str]:
    rows = [report_w6w7.target_cells(row) for row in w6w7_targets(doc)]
    for row in targets(doc) if _main_ran(doc) else []:
        if row["value"] is None:
            shown = "–"
        elif row["shown"] in ("×floor", "×", "×faster"):
            shown = f"{x(row['value'])}{' faster' if row['shown'] == '×faster' else ''}"
        elif row["shown"] == "ms":
            shown = f"{row['value']:.2f} ms"
        elif row["shown"] == "writes/atom":
            shown = f"{row['value']:.3f} writes/atom"
        else:
            shown = f"{row['value']:.2f} {row['shown']}"
        status = {"met": "**met**", "not met": "**not met**"}.get(row["status"], row["status"])
        rows.append([row["target"], row["backend"], shown, status, row["note"]])
    return (["## Targets", "",
             "Each figure is a median of the repetitions; `×floor` is the per-item time "
             "divided by the raw driver floor measured in the same run (see *Floors*).", ""]
            + _table(["target", "backend", "measured", "status", "note"], rows))


def _key_ratios(doc: dict[str, Any]) -> list[str]:
    sizes = [str(n) for n in doc["meta"]["sizes"]["w5_sizes"]]
    big = sizes[-1]
    rows = []
    for b in doc["availability"]:
        f = backend_figures(doc, "persistence", b)
        if f["unavailable"]:
            rows.append([b] + ["n/a"] * 7)
            continue
        w4a, w4b = get(f, "W4", "always") or {}, get(f, "W4", "batch") or {}
        rows.append([
            b,
            x(ratio(f["W1_rec_s"], floor(doc, b, "bulk"))),
            x(ratio(f["W2_s"], floor(doc, b, "update"))),
            x(ratio(f["W3_one_rec_s"], floor(doc, b, "select"))),
            "–" if w4a.get("writes_per_atom") is None else f"{w4a['writes_per_atom']:.3f}",
            x(ratio(w4b.get("per_item_s"), floor(doc, b, "bulk"))),
            t(get(f, "W5", big, "flow_s")),
            x(ratio(get(f, "W5", big, "load_atom_s"), floor(doc, b, "select")))])
    header = ["backend", "W1 ×bulk", "W2 ×update", "W3 load/rec ×select",
              "W4 always writes/atom", "W4 batch/atom ×bulk", f"W5 flow update @{big}",
              f"W5 load/atom @{big} ×select"]
    return ["## Key ratios (persistence against the raw floors)", ""] + _table(header, rows)


def _vs_taskflow(doc: dict[str, Any]) -> list[str]:
    if "taskflow" not in doc["runs"]:
        return ["## Against TaskFlow", "", "Not compared (run with `--compare taskflow`).", ""]
    big = str(doc["meta"]["sizes"]["w5_sizes"][-1])
    rows = []
    for b in doc["availability"]:
        p, tf = (backend_figures(doc, impl, b) for impl in ("persistence", "taskflow"))
        if p["unavailable"] or tf["unavailable"]:
            why = p["unavailable"] and "persistence" or "TaskFlow"
            rows.append([b] + [f"n/a ({why})"] + ["–"] * 8)
            continue
        pairs = [(p["W1_s"], tf["W1_s"]), (p["W2_s"], tf["W2_s"]),
                 (p["W3_one_s"], tf["W3_one_s"]), (p["W3_many_s"], tf["W3_many_s"]),
                 (get(p, "W4", "always", "median_s"), get(tf, "W4", "always", "median_s")),
                 (get(p, "W5", big, "save_s"), get(tf, "W5", big, "save_s")),
                 (get(p, "W5", big, "load_s"), get(tf, "W5", big, "load_s")),
                 (get(p, "W5", big, "flow_s"), get(tf, "W5", big, "flow_s")),
                 (get(p, "W5", big, "rss_delta_mb"), get(tf, "W5", big, "rss_delta_mb"))]
        cells = []
        for ours, theirs in pairs:
            r = ratio(ours, theirs)
            cells.append(x(r) if r is not None else ("TF failed" if ours and theirs is None
                                                      else "–"))
        rows.append([b] + cells)
    header = ["backend", "W1 save", "W2 update", "W3 get_logbook", "W3 get_logbooks",
              "W4 always", f"W5 save @{big}", f"W5 load @{big}", f"W5 flow update @{big}",
              f"W5 RSS growth @{big}"]
    return (["## Against TaskFlow 6.5.0 (persistence ÷ TaskFlow: below 1× persistence is "
             "faster/smaller)", ""] + _table(header, rows))


def _floors(doc: dict[str, Any]) -> list[str]:
    rows = []
    for b, fl in doc["floors"].items():
        if "error" in fl:
            rows.append([b, f"error: {fl['error']}", "", "", ""])
            continue
        what = "; ".join(get(fl, k, "what") for k in ("update", "bulk", "select")
                         if get(fl, k, "what"))
        extra = ""
        if "select_pipelined" in fl:
            extra = f" (pipelined get: {t(get(fl, 'select_pipelined', 'per_item_s'))})"
        if "settings" in fl:
            extra = f" — {fl['settings']['source']}"
        reps = get(fl, "update", "reps") or []
        spread = f" ({t(min(reps))} – {t(max(reps))})" if reps else ""
        rows.append([b, t(get(fl, "update", "per_item_s")) + spread,
                     t(get(fl, "bulk", "per_item_s")), t(get(fl, "select", "per_item_s")) + extra,
                     what])
    return (["## Floors (raw driver cost per item, same run)", "",
             "Median of the repetitions, (fastest – slowest repetition) for updates; each "
             "backend's floors are measured just before its workloads.", ""]
            + _table(["floor", "update", "bulk insert / record", "select / record", "what"],
                     rows))


def _details(doc: dict[str, Any], b: str) -> list[str]:
    impls = [i for i in doc["runs"] if not get(doc, "runs", i, b, "unavailable")]
    if not impls:
        return []
    fs = {i: backend_figures(doc, i, b) for i in impls}
    up, bulk, sel = (floor(doc, b, k) for k in ("update", "bulk", "select"))
    both = "taskflow" in fs and "persistence" in fs
    head = (["figure"] + list(impls) + ["persistence ×floor"] + (["p/TF"] if both else [])
            + ["reps"])

    def row(label: str, rep_key: str, key: Any, per: Any, base: float | None) -> list[str]:
        vals = {i: key(fs[i]) for i in impls}
        cells = [label] + [t(vals[i]) for i in impls]
        cells.append(x(ratio(per(fs["persistence"]) if "persistence" in fs else None, base)))
        if both:
            cells.append(x(ratio(vals.get("persistence"), vals.get("taskflow"))))
        cells.append("/".join(str(fs[i]["reps"].get(rep_key) or "–") for i in impls))
        return cells

    rows = [
        row("W1 save_logbook (whole book)", "W1", lambda f: f["W1_s"],
            lambda f: f["W1_rec_s"], bulk),
        row("W2 one update_atom_details", "W2", lambda f: f["W2_s"], lambda f: f["W2_s"], up),
        row("W3 get_logbook (whole book)", "W3_one", lambda f: f["W3_one_s"],
            lambda f: f["W3_one_rec_s"], sel),
        row("W3 get_logbooks (all books)", "W3_many", lambda f: f["W3_many_s"],
            lambda f: f["W3_many_rec_s"], sel)]
    for policy in ("always", "batch", "never"):
        if any(get(f, "W4", policy) for f in fs.values()):
            rows.append(row(f"W4 Storage loop, {policy}", f"W4_{policy}",
                            lambda f, p=policy: get(f, "W4", p, "median_s"),
                            lambda f, p=policy: get(f, "W4", p, "per_item_s"), bulk))
    out = [f"### {b}", ""]
    scales = {i: get(doc, "runs", i, b, "main", "scale") for i in impls}
    if any(s is not None and s < 1 for s in scales.values()):
        out += ["Run behind schedule: repetition budgets scaled by "
                + ", ".join(f"{i} {s:.2f}" for i, s in scales.items() if s) + ".", ""]
    out += _table(head, rows)
    w4 = []
    for i in impls:
        for policy, v in (fs[i]["W4"] or {}).items():
            if isinstance(v, dict) and "writes_per_atom" in v:
                w4.append(f"{i}/{policy}: {v['writes_per_atom']:.3f} writes/atom "
                          f"({', '.join(f'{k} {n}' for k, n in v['calls'].items() if n)}), "
                          f"{v['persisted']}/{v['atoms']} atoms persisted")
            elif policy == "unavailable":
                w4.append(f"{i}: W4 not available ({v})")
    if w4:
        out += ["W4 writes: " + "; ".join(w4), ""]
    rows5 = []
    for n in (str(s) for s in doc["meta"]["sizes"]["w5_sizes"]):
        for i in impls:
            w = fs[i]["W5"].get(n, {})
            few = ", ".join(f"{k} {n}" for k, n in (w.get("reps") or {}).items()
                            if n and n < doc["meta"]["sizes"]["reps"])
            note = "; ".join(filter(None, [
                w.get("error"), w.get("save_error") and f"save failed: {w['save_error']}",
                few and f"reps: {few}",
                w.get("chunked_fill_s") and f"filled in chunks in {t(w['chunked_fill_s'])}",
                w.get("flow_error") and f"flow update failed: {w['flow_error']}"]))
            rows5.append([n, i, t(w.get("save_s")), t(w.get("p50_s")), t(w.get("p99_s")),
                          t(w.get("load_s")),
                          x(ratio(w.get("load_atom_s"), sel)) if i == "persistence" else "",
                          t(w.get("flow_s")), mb(w.get("rss_mb")), mb(w.get("rss_delta_mb")),
                          note])
    out += _table(["W5 atoms", "impl", "save", "update p50", "update p99", "load",
                   "load/atom ×select", "flow-state update", "peak RSS", "RSS growth", "note"],
                  rows5)
    errors = [f"{i}: {k}: {v}" for i in impls for k, v in fs[i]["errors"].items()]
    if errors:
        out += ["Errors: " + "; ".join(errors), ""]
    return out


NOTES = [
    "Disk-bound figures (dir, sqlite outside WAL, PostgreSQL/MariaDB commits, ZooKeeper "
    "writes) wait for fsync, whose latency on this shared VM varies several-fold from "
    "second to second: see the spread of the update floors. Ratios within ~±30 % of a "
    "limit are within noise; compare runs, not single figures.",
    "Durability differs: persistence's dir backend fsyncs every record and directory; "
    "TaskFlow's dir backend never fsyncs. TaskFlow's sqlite runs with the default rollback "
    "journal (synchronous=FULL) and a new sqlite connection per operation (NullPool); the "
    "sqlite floor uses the persistence backend's own settings.",
    "TaskFlow's ZooKeeper backend is configured with check_compatible=false: its version "
    "check needs the 'envi' four-letter word, which ZooKeeper 3.8 refuses by default.",
    "W4 writes count write calls (round trips), not records. W5 'RSS growth' is peak RSS "
    "(VmHWM) minus the RSS before the book was built.",
]


def render(doc: dict[str, Any]) -> str:
    lines = _header(doc) + _availability(doc) + _targets(doc)
    lines += report_w6w7.w7_section(doc) + report_w6w7.w6_section(doc)
    if _main_ran(doc):
        lines += _key_ratios(doc) + _vs_taskflow(doc) + _floors(doc)
        lines += ["## Notes", ""] + [f"- {note}" for note in NOTES] + [""]
        lines += ["## Details per backend", ""]
        for b in doc["availability"]:
            lines += _details(doc, b)
    else:
        lines += [f"Phases run: {', '.join(doc['meta']['phases'])} (floors and W1–W5 "
                  f"not measured in this run).", ""]
    lines += ["---", "How to read this report: see `bench/README.md`.", ""]
    return "\n".join(lines)
