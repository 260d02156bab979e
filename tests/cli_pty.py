"""The ``persistence`` command run on a pseudo-terminal, as a user at a terminal runs it:
what depends on a terminal (the purge prompt, progress bars, colour) only shows there."""

from __future__ import annotations

import dataclasses
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

from persistence.tools.cli.common import ENV_URI

#: What a stream is when it is not on the terminal.
_OFF_TERMINAL = {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE,
                 "stderr": subprocess.DEVNULL}


@dataclasses.dataclass
class TerminalRun:
    """How the command ended and what it printed."""

    returncode: int
    terminal: str    # everything written to the terminal, escape sequences included
    stdout: bytes    # stdout when it was a pipe (b"" when it was on the terminal)


def run_on_a_terminal(args: Sequence[str], *, on_terminal: Sequence[str] = ("stdin", "stdout"),
                      answer: bytes | None = None, env: Mapping[str, str | None] | None = None,
                      timeout: float = 60) -> TerminalRun:
    """``python -m persistence ARGS`` with the streams named in ``on_terminal`` on a pty.

    The others are ``/dev/null``, or a pipe for stdout.  ``answer`` is typed once
    a ``[y/N]`` prompt shows.  ``env`` adds to the environment (a None value
    removes that variable); ``$PERSISTENCE_URI`` is never passed on.
    """
    full_env = {k: v for k, v in os.environ.items() if k != ENV_URI}
    for name, value in (env or {}).items():
        if value is None:
            full_env.pop(name, None)
        else:
            full_env[name] = value
    master, slave = pty.openpty()
    streams = {name: slave if name in on_terminal else other
               for name, other in _OFF_TERMINAL.items()}
    proc = subprocess.Popen([sys.executable, "-m", "persistence", *args], env=full_env,
                            **streams)
    os.close(slave)
    piped = proc.stdout.fileno() if proc.stdout is not None else None
    output = {master: b""} if piped is None else {master: b"", piped: b""}
    readers, deadline = list(output), time.monotonic() + timeout
    try:
        while readers and time.monotonic() < deadline:
            ready, _, _ = select.select(readers, [], [], 1)
            if not ready and proc.poll() is not None:
                break
            for fd in ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:   # the child closed the terminal
                    chunk = b""
                if not chunk:
                    readers.remove(fd)
                    continue
                output[fd] += chunk
                if fd == master and answer is not None and b"[y/N]" in output[master]:
                    os.write(master, answer)
                    answer = None
        returncode = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        os.close(master)
    return TerminalRun(returncode, output[master].decode("utf-8", "replace"),
                       output.get(piped, b""))
