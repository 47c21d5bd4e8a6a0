#!/usr/bin/env bash
# Label Studio in its own virtual environment (.venv-labelstudio): its pins clash with the
# pipeline's (pyarrow). `curate review serve` and the review tests start it from there.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

LABEL_STUDIO_VERSION=1.23.2
PYTHON=${PYTHON:-python3}
if [ ! -x .venv-labelstudio/bin/python ]; then
  "$PYTHON" -m venv .venv-labelstudio
fi
.venv-labelstudio/bin/python -m pip install --quiet --disable-pip-version-check "label-studio==$LABEL_STUDIO_VERSION"
