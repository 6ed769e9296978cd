#!/usr/bin/env bash
# The storage/quality frontier (issue 14): for each collection, nbits ∈ {2, 4} × pool factor ∈
# {1, 2, 3}, this package and fast-plaid on the very same (pooled) embeddings, 2 threads each
# (fast-plaid: 4:1024, its fastest setting in the SciFact comparison, with one-query latency timed on
# the first 20 queries).
# Ground truth for recall@10 is exact MaxSim on the UNPOOLED embeddings; nDCG@10 against the qrels.
# Needs `npm run build` and the tools venv (fast-plaid). Appends to bench/out/frontier.jsonl
# (one JSON line per build/size/search, tagged with collection, pool factor and nbits); then
#   node bench/summarize-frontier.mjs bench/out/frontier.jsonl
#   COLLECTIONS="medline scifact" FASTPLAID=0 bash bench/run-frontier.sh
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${THREADS:-2}" COLLECTIONS="${COLLECTIONS:-medline trec-dl-2019-passage-bm25top100 trec-dl-2020-passage-bm25top100 scifact}"
FACTORS="${FACTORS:-1 2 3}" NBITS_LIST="${NBITS_LIST:-4 2}" FASTPLAID="${FASTPLAID:-1}"
FP_SETTINGS="${FP_SETTINGS:-4:1024}" FP_LATENCY_QUERIES="${FP_LATENCY_QUERIES:-20}" DATA_ROOT="${DATA_ROOT:-../shared/data}"
export COLBERT_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" RAYON_NUM_THREADS="$THREADS"
PY=tools/.venv/bin/python
OUT=bench/out/frontier.jsonl
mkdir -p bench/out
tag() { node -e 'const t=JSON.parse(process.argv[1]);process.stdin.setEncoding("utf8");let b="";process.stdin.on("data",d=>b+=d).on("end",()=>{for(const l of b.split("\n"))if(l.startsWith("{"))console.log(JSON.stringify({...t,...JSON.parse(l)}))})' "$1"; }
for c in $COLLECTIONS; do
  base="bench/out/$c"
  if [ ! -f "$base/exact_top100.json" ]; then
    node bench/dump-embeddings.mjs --data "$DATA_ROOT/$c" --out "$base" >&2
    node bench/exact.mjs "$base" >&2
  fi
  for p in $FACTORS; do
    dump="$base"
    if [ "$p" != 1 ]; then
      dump="$base-pool$p"
      [ -f "$dump/meta.json" ] || node bench/pool-dump.mjs "$base" "$dump" --pool-factor "$p" >&2
    fi
    for b in $NBITS_LIST; do
      t="{\"collection\":\"$c\",\"pool_factor\":$p,\"nbits\":$b}"
      idx="bench/out/idx-frontier-colbert"
      { node bench/plaid.mjs build "$dump" "$idx" --nbits "$b"; node bench/plaid.mjs search "$dump" "$idx"; } | tag "$t" >> "$OUT"
      rm -rf "$idx"
      # fast-plaid builds 4-6x slower than this package and searches 20-100x slower: on SciFact
      # only the two settings the targets compare (4 bits unpooled; 2 bits, pool factor 2).
      if [ "$FASTPLAID" = 1 ] && { [ "$c" != scifact ] || [ "$p:$b" = 1:4 ] || [ "$p:$b" = 2:2 ]; }; then
        idx="bench/out/idx-frontier-fastplaid"
        { $PY bench/plaid_fastplaid.py build "$dump" "$idx" --threads "$THREADS" --nbits "$b"
          $PY bench/plaid_fastplaid.py search "$dump" "$idx" --threads "$THREADS" --nbits "$b" --settings "$FP_SETTINGS" --latency-queries "$FP_LATENCY_QUERIES"; } | tag "$t" >> "$OUT"
        rm -rf "$idx"
      fi
      echo "done $t" >&2
    done
  done
done
