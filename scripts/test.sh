#!/usr/bin/env bash
# The test command (`npm test`): Rust tests, then the addon and TypeScript build, then the ava specs.
# Needs `npm ci` first (with ONNXRUNTIME_NODE_INSTALL=skip, see README); no Python, no network.
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_LIB="$(node -p "require('path').join(require('path').dirname(require.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', process.platform, process.arch, process.platform === 'win32' ? 'onnxruntime.dll' : process.platform === 'darwin' ? 'libonnxruntime.1.dylib' : 'libonnxruntime.so.1')")"
test -f "$ORT_LIB" || { echo "ONNX Runtime library not found at $ORT_LIB: run npm ci first" >&2; exit 1; }
echo "== cargo test (ONNX Runtime: $ORT_LIB)"
ORT_DYLIB_PATH="$ORT_LIB" cargo test --workspace --locked
echo "== build"
npm run build
echo "== ava"
npx ava
