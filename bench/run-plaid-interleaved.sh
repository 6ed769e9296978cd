#!/usr/bin/env bash
# Search-only comparison with next-plaid on indexes bench/run-plaid.sh built, interleaved: for each
# pair of settings (ours theirs, at matched recall), this package then next-plaid, the whole list
# ROUNDS times, so that a machine whose speed drifts over minutes treats both engines alike.
#   PAIRS="default:1:256 2:256:2:256" ROUNDS=2 bash bench/run-plaid-interleaved.sh
# (each pair is ours:theirs, where a setting is `default` or nProbe:candidates). Writes
# bench/out/plaid-interleaved.jsonl and prints the summary with nDCG@10 against the qrels.
set -euo pipefail
cd "$(dirname "$0")/.."
DUMP="${DUMP:-bench/out/scifact}" DATA="${DATA:-../shared/data/scifact}" THREADS="${THREADS:-2}" ROUNDS="${ROUNDS:-2}"
PAIRS="${PAIRS:-default:1:256 2:256:2:256 2:384:3:384 2:512:2:512 2:1024:4:1024}"
OUT=bench/out/plaid-interleaved.jsonl
export COLBERT_THREADS="$THREADS" RAYON_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS"
NP=bench/next-plaid/target/release/bench-next-plaid
cargo build --release --quiet --manifest-path bench/next-plaid/Cargo.toml
: > "$OUT"
for _ in $(seq "$ROUNDS"); do
  for pair in $PAIRS; do
    if [[ "$pair" == default:* ]]; then ours=default theirs="${pair#default:}"; else ours="${pair%:*:*}" theirs="${pair#*:*:}"; fi
    node bench/plaid.mjs search "$DUMP" bench/out/idx-colbert --settings "$ours" | grep '^{' >> "$OUT"
    $NP search "$DUMP" bench/out/idx-nextplaid --settings "$theirs" | grep '^{' >> "$OUT"
  done
done
node bench/summarize-plaid.mjs "$OUT" "$DUMP" "$DATA"
