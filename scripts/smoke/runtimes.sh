#!/usr/bin/env bash
# Installs the built package into a fresh app (scripts/smoke/install-app.mjs) and runs the smoke
# test (scripts/smoke/smoke.mjs: require + import, encode with tiny-modernbert, index, search) under
# each runtime named: node (the one running this), node22, node24, bun. The pinned Node and Bun
# binaries come from npm (.ci/runtimes/package-lock.json, npm ci into .ci/runtimes/node_modules).
# Linux x64 only. Needs `npm run build` (npm test runs it) first.
#
#   bash scripts/smoke/runtimes.sh node22 node24      (.ci/run)
#   bash scripts/smoke/runtimes.sh bun                (recorded in README, "Supported platforms")
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
[ "$(uname -sm)" = "Linux x86_64" ] || { echo "runtimes.sh: Linux x64 only" >&2; exit 1; }
rt="$root/.ci/runtimes"
node "$root/scripts/npm-ci.mjs" "$rt" "the runtimes"
app="$root/target/smoke/linux-x64-gnu"
node scripts/smoke/install-app.mjs linux-x64-gnu "$app" >/dev/null
model="$root/__test__/fixtures/tiny-modernbert"
status=0
for name in "$@"; do
  case "$name" in
    node) bin="$(command -v node)" ;;
    node22|node24) bin="$rt/node_modules/$name/bin/node" ;;
    bun) bin="$rt/node_modules/bun/bin/bun" ;;
    *) echo "unknown runtime $name (node, node22, node24, bun)" >&2; exit 2 ;;
  esac
  echo "== smoke test under $name ($("$bin" --version))"
  if (cd "$app" && env -u COLBERT_ORT_DYLIB_PATH -u ORT_DYLIB_PATH -u NAPI_RS_NATIVE_LIBRARY_PATH "$bin" smoke.mjs "$model"); then
    echo "ok: $name"
  else
    echo "FAILED: $name" >&2
    status=1
  fi
done
exit $status
