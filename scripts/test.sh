#!/usr/bin/env bash
# The tests, after `npm test` ran scripts/setup.mjs (dependencies installed, addon and dist/
# built): the Rust tests, then every ava spec. No Python, no network.
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_LIB="$(node -p "require('path').join(require('path').dirname(require.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', process.platform, process.arch, process.platform === 'win32' ? 'onnxruntime.dll' : process.platform === 'darwin' ? 'libonnxruntime.1.dylib' : 'libonnxruntime.so.1')")"
test -f "$ORT_LIB" || { echo "ONNX Runtime library not found at $ORT_LIB: run npm test (or node scripts/setup.mjs) first" >&2; exit 1; }
echo "== cargo test (ONNX Runtime: $ORT_LIB)"
ORT_DYLIB_PATH="$ORT_LIB" cargo test --workspace --locked
echo "== ava"
npx ava
