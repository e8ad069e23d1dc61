#!/usr/bin/env bash
# The numpy-only parts run where torch is not installed: the core, stamp sync and window tests
# in a virtualenv with numpy and OpenCV but no torch (kept in .venv-notorch, reused).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv-notorch"
if [[ ! -x "$VENV/bin/python" ]]; then
  "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    numpy opencv-python-headless pytest pytest-timeout pyyaml 2>&1 \
    | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
  touch "$VENV/COLCON_IGNORE"  # keep colcon from crawling it
fi
if "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
  echo "check_without_torch: $VENV has torch; remove it and rerun" >&2
  exit 1
fi
cd "$REPO"
PYTHONPATH="$REPO" "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
  test/core test/pipeline/test_sync.py test/pipeline/test_window.py test/pipeline/test_extent.py
