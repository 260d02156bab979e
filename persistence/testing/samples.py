"""Sample records and values for the contract suite: awkward on purpose.

Values here exercise what a store tends to get wrong: unicode outside the
BMP, control characters, deep nesting, falsy values of every type, big
integers, failures with cause chains and long retry histories.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from ..models import states
from ..models.failure import Failure
from ..models.records import FlowDetail, LogBook, RetryDetail, TaskDetail

__all__ = ["SampleError", "make_failure", "new_uuid", "make_book", "UNICODE_RESULT",
           "FALSY_RESULTS", "fixed_time"]


class SampleError(ValueError):
    """A user-defined exception type, so failures carry a module-qualified name."""


def new_uuid() -> str:
    return str(uuid.uuid4())


def fixed_time() -> datetime.datetime:
    return datetime.datetime(2021, 3, 4, 5, 6, 7, 891011, tzinfo=datetime.timezone.utc)


def _raise_root(message: str) -> None:
    raise KeyError(message)


def _raise_chained(message: str, cause_message: str) -> None:
    try:
        _raise_root(cause_message)
    except KeyError as err:
        raise SampleError(message) from err


def make_failure(message: str = "boom ✗", cause_message: str = "root cause") -> Failure:
    """A Failure of :class:`SampleError` caused by a KeyError (a two-level chain)."""
    try:
        _raise_chained(message, cause_message)
    except SampleError as err:
        return Failure.from_exception(err)
    raise AssertionError("unreachable")


UNICODE_RESULT: dict[str, Any] = {
    "naïve café": "日本語のテキスト ✓ 🙂",
    "nested": {"list": [1, 2.5, -3, None, True, False, "ß"], "empty": {}, "empty_list": [],
               "deep": [[[{"k": ["v", {"w": [0]}]}]]]},
    "big": 2 ** 62, "negative": -(2 ** 53), "float": 0.1, "tiny": 1e-300,
    "escapes": 'quote" backslash\\ newline\n tab\t nul\x00 bell\x07',
    "emoji_key_🙂": "🙂",
}

# Each must come back with the same type: 0 is not False, "" is not None.
FALSY_RESULTS: list[Any] = [0, 0.0, False, "", [], {}, None]


def make_book(flows: int = 2, atoms: int = 3, name: str = "book") -> LogBook:
    """A logbook of ``flows`` flows of ``atoms`` atoms (the last a retry when atoms > 1)."""
    book = LogBook(name)
    book.meta.update({"owner": "contract", "ünïcode": ["✓"]})
    for f in range(flows):
        fd = FlowDetail(f"flow-{f}", new_uuid())
        fd.state = states.RUNNING
        fd.meta["index"] = f
        for a in range(atoms):
            if a == atoms - 1 and atoms > 1:
                ad: TaskDetail | RetryDetail = RetryDetail(f"retry-{f}-{a}", new_uuid())
                ad.put(states.SUCCESS, {"attempt": 1})
            else:
                ad = TaskDetail(f"task-{f}-{a}", new_uuid())
                ad.put(states.SUCCESS, {"flow": f, "atom": a})
            fd.add(ad)
        book.add(fd)
    return book
