#!/bin/sh
# Install the tool the JavaScript SDK's tests build components with
# (npm `@bytecodealliance/componentize-js`, pinned in package.json and
# package-lock.json) into target/sdk-js/node_modules; its `.bin` is what the
# tests put on PATH for the bundles' [build] commands. Idempotent: a stamp of
# the pinned files says it is done. Concurrent callers wait for each other (flock).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
dest="${SDK_JS_DIR:-$root/target/sdk-js}"
mkdir -p "$dest"
exec 9>"$dest/.lock"
flock 9

stamp="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-16)"
if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$stamp" ] && [ -x "$dest/node_modules/.bin/componentize-js" ]; then
    exit 0
fi

cp "$here/package.json" "$here/package-lock.json" "$dest/"
(cd "$dest" && npm ci --silent --no-audit --no-fund)

echo "$stamp" > "$dest/.stamp"
