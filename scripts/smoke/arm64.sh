#!/usr/bin/env bash
# linux-arm64-gnu on an x64 Linux host: cross-compiles the addon (glibc 2.17 toolchain, see
# scripts/build-native.mjs), checks its glibc floor, stages and installs its package (with the
# arm64 ONNX Runtime from onnxruntime-node) into a fresh app, and runs the smoke test
# (scripts/smoke/smoke.mjs) with an arm64 Node (npm, .ci/arm64) under qemu-user. Installs the Debian
# packages qemu-user, libc6-arm64-cross and libstdc++6-arm64-cross with apt-get when missing (as
# root). Needs `npm run build` (npm test runs it) first, for dist/.
#
#   bash scripts/smoke/arm64.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
[ "$(uname -sm)" = "Linux x86_64" ] || { echo "arm64.sh: runs on a Linux x64 host" >&2; exit 1; }
sysroot=/usr/aarch64-linux-gnu
if ! command -v qemu-aarch64 >/dev/null || [ ! -e "$sysroot/lib/ld-linux-aarch64.so.1" ] || [ ! -e "$sysroot/lib/libstdc++.so.6" ]; then
  echo "== installing qemu-user and the arm64 C/C++ runtime (apt-get)"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends qemu-user libc6-arm64-cross libstdc++6-arm64-cross >/dev/null
fi
echo "== build linux-arm64-gnu"
node scripts/build-native.mjs --target aarch64-unknown-linux-gnu
bash scripts/check-glibc.sh 2.17 target/cross/linux-arm64-gnu/colbert.linux-arm64-gnu.node
arm="$root/.ci/arm64"
node "$root/scripts/npm-ci.mjs" "$arm" "the arm64 Node.js" --cpu=arm64
app="$root/target/smoke/linux-arm64-gnu"
node scripts/smoke/install-app.mjs linux-arm64-gnu "$app" >/dev/null
# qemu-aarch64 looks up every absolute path the guest opens in its prefix first (QEMU_LD_PREFIX).
# The prefix gives the guest the arm64 C runtime (lib/) and an arm64 /proc/cpuinfo: qemu 7.2
# (Debian 12) passes the host's x86 one through, and ONNX Runtime's CPU detection (cpuinfo)
# crashes with a NULL dereference on it while loading, in onnxruntime-node's own binding as well.
# One Neoverse-N1 entry per processor the host's sysfs lists.
prefix="$root/target/smoke/arm64-prefix"
mkdir -p "$prefix/proc"
ln -sfn "$sysroot/lib" "$prefix/lib"
last="$(sed 's/.*[-,]//' /sys/devices/system/cpu/possible)"
for i in $(seq 0 "$last"); do
  printf 'processor\t: %s\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n' "$i"
done > "$prefix/proc/cpuinfo"
node_arm64="$arm/node_modules/node-arm64/bin/node"
export QEMU_LD_PREFIX="$prefix"
echo "== smoke test: qemu-aarch64 node $(qemu-aarch64 "$node_arm64" --version) smoke.mjs (in $app)"
cd "$app"
start=$SECONDS
env -u COLBERT_ORT_DYLIB_PATH -u ORT_DYLIB_PATH -u NAPI_RS_NATIVE_LIBRARY_PATH \
  qemu-aarch64 "$node_arm64" smoke.mjs "$root/__test__/fixtures/tiny-modernbert"
echo "ok: linux-arm64-gnu under qemu-aarch64 in $((SECONDS - start)) s"
