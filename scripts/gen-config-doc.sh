#!/usr/bin/env bash
# Regenerates docs/configuration.md from the key table (src/conf/schema.c).
#   scripts/gen-config-doc.sh [BUILD_DIR]     default BUILD_DIR: build
# Builds only the tiny config-doc program (it links core and conf, nothing
# else), runs it, and replaces the file only when the output changed. The
# unit test test_conf fails while the committed file is stale.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[ -d "$build" ] || meson setup "$build" "$root" >/dev/null
ninja -C "$build" src/conf/config-doc >/dev/null

out=$root/docs/configuration.md
tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
"$build/src/conf/config-doc" >"$tmp"
if cmp -s "$tmp" "$out"; then
    echo "docs/configuration.md is up to date"
else
    chmod 644 "$tmp"
    mv "$tmp" "$out"
    echo "docs/configuration.md regenerated"
fi
