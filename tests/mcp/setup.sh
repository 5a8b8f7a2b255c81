#!/bin/sh
# Install the official MCP client SDKs the tests drive `subagent mcp` with:
# the Python SDK (PyPI `mcp`) into a venv and the TypeScript SDK (npm
# `@modelcontextprotocol/sdk`) into a node_modules, both under
# target/mcp-clients. Idempotent: a stamp of the pinned versions says it is done.
# Concurrent callers wait for each other (flock).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dest="${MCP_CLIENTS_DIR:-$root/target/mcp-clients}"
mkdir -p "$dest"
exec 9>"$dest/.lock"
flock 9

stamp="$(cat "$here/python/requirements.txt" "$here/node/package.json" "$here/node/package-lock.json" | sha256sum | cut -c1-16)"
if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$stamp" ]; then
    exit 0
fi

python3 -m venv "$dest/venv"
"$dest/venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/python/requirements.txt"

mkdir -p "$dest/node"
cp "$here/node/package.json" "$here/node/package-lock.json" "$dest/node/"
(cd "$dest/node" && npm ci --silent --no-audit --no-fund)

echo "$stamp" > "$dest/.stamp"
