#!/usr/bin/env bash
# Compiles (clippy, warnings as errors) the binding and the engine crates for the targets this
# machine cannot link for: Windows x64 and ARM64 (MSVC) and macOS ARM64. Catches code that only
# breaks there (cfg(windows) paths, integer widths, missing APIs) without their linkers: the crates
# have no C code (tokenizers uses its pure-Rust regex backend). Installs each target's Rust standard
# library with rustup when missing.
#
#   bash scripts/check-targets.sh [triple...]
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-pc-windows-msvc aarch64-pc-windows-msvc aarch64-apple-darwin)
installed="$(rustup target list --installed)"
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
for t in "${targets[@]}"; do
  echo "== cargo clippy -p colbert-node --target $t"
  cargo clippy -p colbert-node --target "$t" --locked -- -D warnings
done
