#!/usr/bin/env bash
# Set everything up, then summarise a real example paper with the embedded model (offline, no key).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/keyfindings summarize "${1:-examples/paper.xml}" --format markdown
