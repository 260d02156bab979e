"""Test helpers that ship with the package, so third-party backends can prove themselves.

:class:`persistence.testing.contract.BackendContract` is the shared contract
suite every backend runs (see that module for how to use it).  Importing this
package needs pytest.
"""

import pytest

# Let pytest rewrite the suite's asserts (readable failure diffs) even though
# it lives in an installed package rather than in a test directory.
pytest.register_assert_rewrite(*(f"{__name__}.{m}" for m in (
    "contract", "samples", "_support", "_roundtrip", "_api", "_integrity", "_claims",
    "_history", "_listings", "_storage")))

from .contract import BackendContract  # noqa: E402

__all__ = ["BackendContract"]
