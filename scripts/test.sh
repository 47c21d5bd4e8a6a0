#!/usr/bin/env bash
# Set up, then lint, type-check the public API, and run the test suite on the real fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_labelstudio.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy curate export manifests ingest extractors filters review generator settings
.venv/bin/lint-imports
.venv/bin/python -m pytest "$@"
