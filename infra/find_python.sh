#!/usr/bin/env bash
# Prints a Python 3.12+ interpreter to package with, or explains why there is none and fails.
# Chalice gives every Lambda function the runtime of the Python that runs `chalice package`, and Stepflow
# needs python3.12 or newer. Order: $DEPLOY_PYTHON, python3.12/3.13/3.14 on PATH, pyenv's versions, python3.
set -euo pipefail

ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 12) else 1)' >/dev/null 2>&1; }

if [ -n "${DEPLOY_PYTHON:-}" ]; then
  if ok "$DEPLOY_PYTHON"; then echo "$DEPLOY_PYTHON"; exit 0; fi
  echo "DEPLOY_PYTHON=$DEPLOY_PYTHON is not a Python 3.12 or newer" >&2
  exit 1
fi
candidates=()
for version in 3.12 3.13 3.14; do
  if command -v "python$version" >/dev/null 2>&1; then candidates+=("$(command -v "python$version")"); fi
done
shopt -s nullglob
for root in "${PYENV_ROOT:-$HOME/.pyenv}" /root/.pyenv; do
  for dir in "$root"/versions/3.1[2-9]*; do
    if [ -x "$dir/bin/python3" ]; then candidates+=("$dir/bin/python3"); fi
  done
done
candidates+=(python3)
for candidate in "${candidates[@]}"; do
  if ok "$candidate"; then echo "$candidate"; exit 0; fi
done
cat >&2 <<'MSG'
No Python 3.12 or newer found (looked at $DEPLOY_PYTHON, python3.12/3.13/3.14 on PATH, ~/.pyenv/versions/3.12*+
and python3). Packaging needs one: Chalice makes the Lambda runtime the packaging Python's version.
Install one (e.g. `pyenv install 3.12`, or your OS's python3.12 package) or point DEPLOY_PYTHON at it:
  make package DEPLOY_PYTHON=/path/to/python3.12
MSG
exit 1
