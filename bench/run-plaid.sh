#!/usr/bin/env bash
# PLAID benchmark: this package vs fast-plaid (PyPI, CPU) and next-plaid (crates.io, built here
# from bench/next-plaid) on the same embeddings, same thread count, in one run. Needs `npm run build`, the tools venv, and a dump:
#   node bench/dump-embeddings.mjs --data ../shared/data/scifact --out bench/out/scifact
#   node bench/exact.mjs bench/out/scifact
# Writes bench/out/plaid-<name>.jsonl and prints a summary with nDCG@10 against the qrels.
set -euo pipefail
cd "$(dirname "$0")/.."
DUMP="${DUMP:-bench/out/scifact}" DATA="${DATA:-../shared/data/scifact}" THREADS="${THREADS:-2}" NBITS="${NBITS:-4}"
OURS="${OURS:-default,2:1024,4:4096}" THEIRS="${THEIRS:-8:4096,4:1024,16:8192}"
OUT="bench/out/plaid-$(basename "$DUMP").jsonl"
export COLBERT_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS"
PY=tools/.venv/bin/python
NP=bench/next-plaid/target/release/bench-next-plaid
cargo build --release --quiet --manifest-path bench/next-plaid/Cargo.toml
export RAYON_NUM_THREADS="$THREADS"
{
  node bench/plaid.mjs build "$DUMP" bench/out/idx-colbert --nbits "$NBITS"
  $PY bench/plaid_fastplaid.py build "$DUMP" bench/out/idx-fastplaid --threads "$THREADS" --nbits "$NBITS"
  $NP build "$DUMP" bench/out/idx-nextplaid --nbits "$NBITS"
  node bench/plaid.mjs search "$DUMP" bench/out/idx-colbert --settings "$OURS"
  $PY bench/plaid_fastplaid.py search "$DUMP" bench/out/idx-fastplaid --threads "$THREADS" --settings "$THEIRS"
  $NP search "$DUMP" bench/out/idx-nextplaid --settings "$THEIRS"
} | grep '^{' > "$OUT"
node bench/summarize-plaid.mjs "$OUT" "$DUMP" "$DATA"
