"""Formatting for the markdown report: durations, ratios, sizes, tables."""

from __future__ import annotations

__all__ = ["t", "x", "mb", "table"]


def t(seconds: float | None) -> str:
    """A duration in a readable unit."""
    if seconds is None:
        return "–"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def x(value: float | None) -> str:
    """A ratio, as ``1.23×``."""
    if value is None:
        return "–"
    return f"{value:.2f}×" if value < 100 else f"{value:.0f}×"


def mb(value: float | None) -> str:
    """A size in megabytes."""
    return "–" if value is None else f"{value:.0f} MB"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table (pipes in cells escaped), followed by a blank line."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return out + [""]
