#!/bin/sh
# Install what builds Python subagents into a venv, target/sdk-python/venv:
# the pinned componentize-py (requirements.txt) and the SDK (plugins/sdk-python).
# Put "$dest/venv/bin" on PATH and `subagent build` works for a Python bundle.
# Idempotent: a stamp of the pins and the SDK's sources says it is done.
# Concurrent callers wait for each other (flock).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
sdk="$root/plugins/sdk-python"
dest="${SDK_PYTHON_DIR:-$root/target/sdk-python}"
mkdir -p "$dest"
exec 9>"$dest/.lock"
flock 9

stamp="$(cat "$here/requirements.txt" "$sdk/pyproject.toml" "$sdk"/subagent_sdk/*.py | sha256sum | cut -c1-16)"
if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$stamp" ] && [ -x "$dest/venv/bin/componentize-py" ]; then
    exit 0
fi

python3 -m venv "$dest/venv"
pip="$dest/venv/bin/pip"
"$pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
# Installed from a copy, so the build leaves nothing in the source tree; a
# plain install, not an editable one: componentize-py reads site-packages.
rm -rf "$dest/sdk-src"
mkdir -p "$dest/sdk-src"
cp -R "$sdk/pyproject.toml" "$sdk/README.md" "$sdk/subagent_sdk" "$dest/sdk-src/"
rm -rf "$dest/sdk-src/subagent_sdk/__pycache__"
"$pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$dest/sdk-src"

echo "$stamp" > "$dest/.stamp"
