#!/usr/bin/env bash
# Run every test of persistence on a fresh machine: creates .venv, installs the
# package with all extras, makes sure every service the tests use is installed
# and running (scripts/setup.d/*.sh, idempotent), lints, then runs pytest.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k memory -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[all,test]' 2>&1 | grep -v -E '^WARNING: (Location|Running pip)' || true
.venv/bin/python -c 'import persistence, sqlalchemy, kazoo' >/dev/null 2>&1 || \
    .venv/bin/python -m pip install -e '.[all,test]'

for setup in scripts/setup.d/*.sh; do
    [ -e "$setup" ] || continue
    echo "== $(basename "$setup")"
    bash "$setup"
done

echo "== ruff"
.venv/bin/ruff check persistence tests bench examples
echo "== pytest"
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python -m pytest "$@"
