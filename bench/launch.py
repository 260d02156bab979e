"""Starting measured child processes: ``bench/worker.py`` and the DBOS peer script.

Every measurement runs in a process of its own (fresh interpreter, fresh
store), started here; the child writes one JSON document to a file whose path
it is given, and a child that dies or hangs becomes an ``{"error": …}``
result instead of stopping the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from typing import Any

__all__ = ["worker_command", "run_json", "run_worker"]

HERE = os.path.dirname(os.path.abspath(__file__))


def worker_command(python: str, impl: str, backend: str, conf: dict[str, Any], part: str,
                   n: int, out: str, quick: bool, scale: float = 1.0,
                   rep: int | None = None) -> list[str]:
    """The command line of one ``bench/worker.py`` process."""
    cmd = [python, os.path.join(HERE, "worker.py"), "--impl", impl, "--backend", backend,
           "--conf", json.dumps(conf), "--part", part, "--n", str(n), "--out", out]
    if quick:
        cmd.append("--quick")
    if scale < 1.0:
        cmd += ["--scale", f"{scale:.3f}"]
    if rep is not None:
        cmd += ["--rep", str(rep)]
    return cmd


def out_path(workdir: str, label: str) -> str:
    """A new, unused path for a child's JSON results."""
    handle, path = tempfile.mkstemp(prefix=f"{label}-", suffix=".json", dir=workdir)
    os.close(handle)
    os.unlink(path)
    return path


def read_json(out: str, returncode: int | None, stderr: str) -> dict[str, Any]:
    """The child's results, or an error naming how it ended without them."""
    if not os.path.exists(out):
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        return {"error": f"exited {returncode} without results: {tail[:400]}"}
    with open(out, encoding="utf-8") as fh:
        doc = json.load(fh)
    os.unlink(out)
    return doc


def run_json(cmd: list[str], out: str, timeout: float, workdir: str) -> dict[str, Any]:
    """Run ``cmd`` (which writes ``out``) to completion; its JSON document."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    try:
        done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True,
                              timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    return read_json(out, done.returncode, done.stderr)


def run_worker(python: str, impl: str, backend: str, conf: dict[str, Any], part: str,
               n: int, quick: bool, timeout: float, workdir: str, scale: float = 1.0,
               rep: int | None = None) -> dict[str, Any]:
    """One ``bench/worker.py`` process to completion; its JSON document."""
    out = out_path(workdir, f"{impl}-{backend}-{part}{n}")
    cmd = worker_command(python, impl, backend, conf, part, n, out, quick, scale, rep)
    doc = run_json(cmd, out, timeout, workdir)
    if set(doc) == {"error"}:
        doc["error"] = "worker " + doc["error"]
    return doc
