#!/usr/bin/env bash
# Regenerate the hashed lock files from pyproject.toml (run after changing a dependency there):
#   requirements/lock-dev.txt  runtime + dev extra + build backend: `make install` and CI install from it
#   requirements/lock.txt      runtime + build backend, the same versions: the container image installs from it
# uv runs from a throwaway venv so that nothing here depends on it; --universal resolves for every platform
# and Python version pyproject allows (markers where they differ).
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
tool=$(mktemp -d)
trap 'rm -rf "$tool"' EXIT
python3 -m venv "$tool"
"$tool/bin/pip" install --quiet "uv==$UV_VERSION"
compile() {
  "$tool/bin/uv" pip compile --quiet --universal --python-version 3.11 --generate-hashes \
    --custom-compile-command "requirements/compile.sh" pyproject.toml requirements/build.in "$@"
}
compile --extra dev -o requirements/lock-dev.txt
compile -c requirements/lock-dev.txt -o requirements/lock.txt
