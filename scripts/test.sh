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
echo "== installing into .venv"
# A venv starts with the pip of its Python (23.2 here), whose resolver gives up on
# the S3 extra's botocore pins (ResolutionImpossible); a current pip resolves them.
if ! .venv/bin/python -m pip install -q --upgrade 'pip>=25' > .venv/install.log 2>&1 ||
   ! .venv/bin/python -m pip install -q -e '.[all,test]' >> .venv/install.log 2>&1; then
    cat .venv/install.log
    echo "installing persistence and its test dependencies failed" >&2
    exit 1
fi

for setup in scripts/setup.d/*.sh; do
    [ -e "$setup" ] || continue
    echo "== $(basename "$setup")"
    bash "$setup"
done

echo "== ruff"
.venv/bin/ruff check persistence tests $(ls -d bench examples 2>/dev/null)
echo "== import-linter (layers, independence, no cycles: see doc/architecture.rst)"
.venv/bin/lint-imports
echo "== pytest"
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python -m pytest "$@"
