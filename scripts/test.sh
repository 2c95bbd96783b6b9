#!/usr/bin/env bash
# Set everything up, then lint, type-check and run every test: fast unit tests, then the slow ones
# that run the real embedded model (and llama-cpp-python's OpenAI-compatible server).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev

echo "== ruff"; .venv/bin/ruff check src tests benchmarks evals
echo "== ruff format"; .venv/bin/ruff format --check src tests benchmarks evals
echo "== mypy"; .venv/bin/mypy
echo "== fast tests"; .venv/bin/python -m pytest -m "not slow" "$@"
echo "== slow tests (real embedded model)"; .venv/bin/python -m pytest -m slow "$@"
