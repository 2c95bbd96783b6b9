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

echo "== ruff"; .venv/bin/ruff check src tests benchmarks evals scripts
echo "== ruff format"; .venv/bin/ruff format --check src tests benchmarks evals scripts
echo "== mypy"; .venv/bin/mypy
echo "== fast tests"; .venv/bin/python -m pytest -m "not slow" "$@"
echo "== slow tests (real embedded model)"; .venv/bin/python -m pytest -m slow "$@"
