"""Whole-store operations through the public ``Connection`` only: archive,
copy (``migrate``), the demo, the reference engine and the ``persistence`` command."""
