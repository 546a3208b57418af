#!/usr/bin/env bash
# Prints a Python interpreter of version MIN..MAX (default: 3.12 or newer), or explains why there is none and fails.
# Usage: find_python.sh [MIN [MAX]], e.g. `find_python.sh 3.13 3.13` for LocalStack's own venv.
# Packaging: Chalice gives every Lambda function the runtime of the Python that runs `chalice package`, and
# Stepflow needs python3.12 or newer. Order: $DEPLOY_PYTHON, python3.12/3.13/3.14 on PATH, pyenv's versions, python3.
set -euo pipefail

MIN="${1:-3.12}"
MAX="${2:-}"
ok() {
  "$1" -c "import sys; v = sys.version_info[:2]; lo = tuple(map(int, '$MIN'.split('.'))); \
hi = tuple(map(int, '${MAX:-9.99}'.split('.'))); sys.exit(0 if lo <= v <= hi else 1)" >/dev/null 2>&1
}
wanted="Python $MIN${MAX:+ to $MAX}"
[ -z "$MAX" ] && wanted="Python $MIN or newer"

if [ -n "${DEPLOY_PYTHON:-}" ] && [ "$MIN" = "3.12" ] && [ -z "$MAX" ]; then
  if ok "$DEPLOY_PYTHON"; then echo "$DEPLOY_PYTHON"; exit 0; fi
  echo "DEPLOY_PYTHON=$DEPLOY_PYTHON is not a $wanted" >&2
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
cat >&2 <<MSG
No $wanted found (looked at python3.12/3.13/3.14 on PATH, ~/.pyenv/versions/3.12*+ and python3).
Install one (e.g. \`pyenv install $MIN\`, or your OS's python$MIN package).
MSG
if [ "$MIN" = "3.12" ] && [ -z "$MAX" ]; then
  cat >&2 <<'MSG'
Packaging needs one: Chalice makes the Lambda runtime the packaging Python's version. Or point DEPLOY_PYTHON at it:
  make package DEPLOY_PYTHON=/path/to/python3.12
MSG
fi
exit 1
