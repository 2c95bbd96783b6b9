#!/usr/bin/env bash
# Set everything up, then lint, type-check and run every test: fast unit tests, then the slow ones
# that run the real embedded model (and llama-cpp-python's OpenAI-compatible server).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev

# The demo-page test drives Debian's Chromium (Playwright never downloads a browser here).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== installing chromium for the demo-page test"
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

# The same test checks the page with axe-core, from npm into .cache/npm (never at test time).
if [ ! -f .cache/npm/node_modules/axe-core/axe.min.js ]; then
  if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "== installing npm for axe-core"
    apt-get update -qq && apt-get install -y -qq npm >/dev/null
  fi
  echo "== installing axe-core"
  npm install --no-save --no-audit --no-fund --prefix .cache/npm axe-core@4 >/dev/null
fi

echo "== ruff"; .venv/bin/ruff check src tests benchmarks evals scripts
echo "== ruff format"; .venv/bin/ruff format --check src tests benchmarks evals scripts
echo "== mypy"; .venv/bin/mypy
echo "== fast tests"; .venv/bin/python -m pytest -m "not slow" "$@"
echo "== slow tests (real embedded model)"; .venv/bin/python -m pytest -m slow "$@"
