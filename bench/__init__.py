"""Benchmark harness for persistence: every backend against raw driver floors
and against TaskFlow 6.5.0.  Run ``python -m bench --help`` (or ``make bench``);
see bench/README.md for how to read the report."""
