"""What the ``persistence`` command prints: lines, tables, trees, JSON and progress.

``rich`` (the ``cli`` extra) draws tables, trees and progress bars when it is
installed; plain text is the fallback.  Colour appears only on a terminal
(rich's own detection, which also honours ``NO_COLOR``).  Progress goes to
stderr, so ``--json`` output on stdout stays machine-readable: a bar with
counts and rate on a terminal, a plain line every tenth of the work (or
every few seconds) otherwise.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

try:
    import rich.console
    import rich.markup
    import rich.progress
    import rich.table
    import rich.tree
except ImportError:  # the cli extra is not installed: plain text
    rich = None

__all__ = ["Output", "Node", "escape"]

#: How often plain progress lines appear at most when the work is slow (seconds).
PLAIN_INTERVAL = 5.0

#: Line width when stdout is not a terminal: wide enough that nothing wraps.
PIPE_WIDTH = 100_000

# (label, children): a tree to print; labels may hold rich markup.
Node = tuple[str, list]


def isatty(stream: Any) -> bool:
    """Whether ``stream`` is a terminal (False for anything that cannot say)."""
    return bool(getattr(stream, "isatty", lambda: False)())


class Output:
    """Lines, tables and trees on ``stream``; errors and progress on ``err``."""

    def __init__(self, stream: TextIO | None = None, use_rich: bool | None = None,
                 err: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.rich = (rich is not None) if use_rich is None else (use_rich and rich is not None)
        self._console = None
        if self.rich:
            # Not a terminal (a file, a pipe): no width to respect, so never wrap a field
            # (a uuid cut in two cannot be grepped or pasted).
            width = None if isatty(self.stream) else PIPE_WIDTH
            self._console = rich.console.Console(file=self.stream, highlight=False,
                                                 soft_wrap=True, width=width)

    def line(self, text: str = "") -> None:
        if self._console is not None:
            self._console.print(text, markup=False)
        else:
            print(text, file=self.stream, flush=True)

    def markup(self, text: str) -> None:
        """A line with rich markup (``[red]…[/]``); plain text without rich."""
        if self._console is not None:
            self._console.print(text)
        else:
            print(_strip(text), file=self.stream, flush=True)

    def json(self, value: Any) -> None:
        print(json.dumps(value, indent=2, ensure_ascii=False, default=str), file=self.stream,
              flush=True)

    def error(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        cells = [[str(c) for c in row] for row in rows]
        if self._console is not None:
            table = rich.table.Table(title=title, title_justify="left")
            # Only the widest column wraps, so short ones stay on one line.
            widest = max(range(len(columns)),
                         key=lambda i: max((len(row[i]) for row in cells), default=0))
            for i, name in enumerate(columns):
                table.add_column(name, overflow="fold", no_wrap=i != widest)
            for row in cells:
                table.add_row(*row)
            self._console.print(table)
            return
        widths = [max([len(name)] + [len(row[i]) for row in cells])
                  for i, name in enumerate(columns)]

        def fmt(values: Sequence[str]) -> str:
            return "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()
        self.line(title)
        self.line(fmt(columns))
        self.line(fmt(["-" * w for w in widths]))
        for row in cells:
            self.line(fmt(row))

    def tree(self, root: Node) -> None:
        """Print ``(label, children)`` nested; labels may hold rich markup."""
        if self._console is not None:
            def build(parent: Any, node: Node) -> None:
                for child in node[1]:
                    build(parent.add(child[0]), child)
            top = rich.tree.Tree(root[0])
            build(top, root)
            self._console.print(top, soft_wrap=False)
            return

        def walk(node: Node, depth: int) -> None:
            self.line("  " * depth + _strip(node[0]))
            for child in node[1]:
                walk(child, depth + 1)
        walk(root, 0)

    @contextlib.contextmanager
    def progress(self, noun: str) -> Iterator[Callable[[str, int, int], None]]:
        """A ``progress(stage, done, total)`` callback for the duration of the block."""
        if self.rich and isatty(self.err):
            with _RichProgress(self.err, noun) as callback:
                yield callback
        else:
            yield _PlainProgress(self.err, noun)


_TAG = re.compile(r"(?<!\\)\[/?[a-z][a-z ]*\]|(?<!\\)\[/\]")


def _strip(text: str) -> str:
    """Markup removed: what a label says without rich."""
    if rich is not None:
        return rich.markup.render(text).plain
    return _TAG.sub("", text).replace("\\[", "[")


def escape(text: str) -> str:
    """``text`` safe inside a markup label (square brackets shown as they are)."""
    if rich is not None:
        return rich.markup.escape(text)
    return text.replace("[", "\\[")


class _PlainProgress:
    """``stage: done/total noun (pct), rate/s`` every tenth of the work or few seconds."""

    def __init__(self, err: TextIO, noun: str) -> None:
        self.err, self.noun = err, noun
        self.stage: str | None = None
        self.started = self.last_time = self.last_call = time.monotonic()
        self.last_done = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != self.stage:  # a stage starts where the previous one ended
            self.stage, self.started, self.last_time, self.last_done = \
                stage, self.last_call, self.last_call, 0
        self.last_call = now
        step = max(1, total // 10)
        if done < total and done - self.last_done < step and now - self.last_time < \
                PLAIN_INTERVAL:
            return
        self.last_done, self.last_time = done, now
        elapsed = max(now - self.started, 1e-9)
        pct = f" ({100 * done // total}%)" if total else ""
        print(f"{stage}: {done:,}/{total:,} {self.noun}{pct}, {done / elapsed:,.0f}/s",
              file=self.err, flush=True)


class _RichProgress:
    """A rich progress bar per stage: description, bar, M/N, percent, rate, elapsed."""

    def __init__(self, err: TextIO, noun: str) -> None:
        self.noun = noun
        console = rich.console.Console(file=err)
        self.bar = rich.progress.Progress(
            rich.progress.TextColumn("{task.description}"), rich.progress.BarColumn(),
            rich.progress.MofNCompleteColumn(), rich.progress.TaskProgressColumn(),
            rich.progress.TextColumn("{task.fields[rate]}"),
            rich.progress.TimeElapsedColumn(), console=console)
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _RichProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.bar.__exit__(*exc_info)

    def __call__(self, stage: str, done: int, total: int) -> None:
        task = self.tasks.get(stage)
        if task is None:
            task = self.tasks[stage] = self.bar.add_task(f"{stage} {self.noun}", total=total,
                                                         rate="")
        speed = self.bar.tasks[task].speed
        rate = f"{speed:,.0f}/s" if speed else ""
        self.bar.update(task, completed=done, total=total, rate=rate)
