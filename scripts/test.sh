#!/usr/bin/env bash
# Set up, then lint, type-check the public API, and run the test suite on the real fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
# The suite tests real media: without them, stop now rather than after the setup (CURATE_FAST_LANE=1
# runs what needs none).
if [ "${CURATE_FAST_LANE:-}" != "1" ]; then
    fixtures="${CURATE_FIXTURES:-../shared/fixtures}"
    pool="${CURATE_POOL:-../shared/pool}"
    for need in "$fixtures/video" "$pool/video"; do
        if [ ! -d "$need" ]; then
            echo "error: no test media at $need: set CURATE_FIXTURES / CURATE_POOL (or CURATE_FAST_LANE=1)" >&2
            exit 4
        fi
    done
fi
bash scripts/setup.sh
bash scripts/setup_labelstudio.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy curate export manifests ingest extractors filters review generator settings
.venv/bin/lint-imports
.venv/bin/python -m pytest "$@"
