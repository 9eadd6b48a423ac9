#!/usr/bin/env bash
# Regenerate the lock files requirements/py3.X.txt: the full tested set (extras included) that
# `make` installs on Python 3.X. uv resolves for a target Python without needing that interpreter;
# the pins already in a lock file are kept (uv's preferences), so only what changed in
# pyproject.toml moves; pass --upgrade to move everything to the newest versions in range.
# Usage: requirements/lock.sh [--upgrade]   (needs uv: pip install uv)
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-uv}
for minor in 3.11 3.12 3.13; do
  extras=$(make -s --no-print-directory print-extras PYTHON="python$minor")
  args=()
  for extra in ${extras//,/ }; do args+=(--extra "$extra"); done
  # The CPU build of torch 2.13.0 lies on these machines in /opt/wheels (pip's find-links).
  links=()
  [[ -d /opt/wheels ]] && links=(--find-links /opt/wheels)
  "$UV" pip compile pyproject.toml "${args[@]}" "${links[@]}" "$@" \
    --python-version "$minor" --python-platform x86_64-manylinux_2_28 \
    --no-header --quiet -o "requirements/py$minor.txt"
  { echo "# The tested set for Python $minor, extras: $extras (regenerate: requirements/lock.sh)."
    grep -v '^# The tested set' "requirements/py$minor.txt"; } > "requirements/py$minor.txt.new"
  mv "requirements/py$minor.txt.new" "requirements/py$minor.txt"
done
