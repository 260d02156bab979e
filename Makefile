# Benchmarks live in bench/ (see bench/README.md); tests run via scripts/test.sh.
PYTHON ?= python3
BENCH_ARGS ?=

.PHONY: bench bench-quick bench-checkpoint

## Full run: every available backend, floors and TaskFlow 6.5.0; writes bench/RESULTS.md
bench:
	$(PYTHON) -m bench --compare taskflow --report bench/RESULTS.md $(BENCH_ARGS)

## Smoke run (tiny sizes, figures meaningless): bench/results/report.md
bench-quick:
	$(PYTHON) -m bench --quick $(BENCH_ARGS)

## W7 (per-atom checkpoint vs one commit and DBOS) and W6 (concurrent flows) only
bench-checkpoint:
	$(PYTHON) -m bench --only w7,w6 $(BENCH_ARGS)
