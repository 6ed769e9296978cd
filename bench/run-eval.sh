#!/usr/bin/env bash
# Retrieval quality and end-to-end time: `colbert eval` (exhaustive, through a PLAID index, and
# for TREC DL also reranking the BM25 pools) next to PyLate's evaluator on the same stand-in
# model (fp32), one run. TREC DL's exhaustive/indexed runs rank the union of the pools.
# Needs `npm run build` and the tools venv (tools/requirements.txt); writes bench/out/eval/*.json.
#   bash bench/run-eval.sh [dataset ...]   (default: scifact trec-dl-2019 trec-dl-2020 medline)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${DATA:-../shared/data}" THREADS="${THREADS:-2}" MODEL="${MODEL:-models/minilm-colbert}"
PYLATE_MODEL="${PYLATE_MODEL:-models/.build/minilm-colbert-pylate}"
OUT=bench/out/eval
mkdir -p "$OUT"
export COLBERT_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS"
PY=tools/.venv/bin/python
colbert() { /usr/bin/time -f '%e s %M KB' node bin/colbert.js "$@"; }
for ds in "${@:-scifact trec-dl-2019 trec-dl-2020 medline}"; do
  for name in $ds; do
    case "$name" in
      trec-dl-*) dir="$DATA/$name-passage-bm25top100" ;;
      *) dir="$DATA/$name" ;;
    esac
    echo "== $name"
    if [ -f "$dir/bm25-top100.tsv" ]; then
      colbert eval "$dir" --model "$MODEL" --pool "$dir/bm25-top100.tsv" --ndcg binary --json --quiet > "$OUT/$name-rerank-binary.json"
      colbert eval "$dir" --model "$MODEL" --pool "$dir/bm25-top100.tsv" --ndcg graded --json --quiet > "$OUT/$name-rerank-graded.json"
      $PY tools/eval_pylate.py "$PYLATE_MODEL" "$dir" --pool "$dir/bm25-top100.tsv" --out "$OUT/$name-pylate-rerank.json" > /dev/null
    fi
    if [ -z "${POOLS_ONLY:-}" ] || [ ! -f "$dir/bm25-top100.tsv" ]; then
      # Full ranking over the corpus (for TREC DL: the union of the pools), exhaustive and indexed.
      colbert eval "$dir" --model "$MODEL" --ndcg binary --json --quiet > "$OUT/$name-exhaustive.json"
      colbert index "$dir" --index "bench/out/eval-idx-$name" --model "$MODEL" --overwrite --json --quiet > "$OUT/$name-index-build.json"
      colbert eval "$dir" --model "$MODEL" --index "bench/out/eval-idx-$name" --ndcg binary --json --quiet > "$OUT/$name-plaid.json"
      $PY tools/eval_pylate.py "$PYLATE_MODEL" "$dir" --out "$OUT/$name-pylate.json" > /dev/null
    fi
  done
done
node -e '
const fs = require("fs"); const dir = process.argv[1]
const rows = []
for (const f of fs.readdirSync(dir).sort()) {
  const j = JSON.parse(fs.readFileSync(dir + "/" + f, "utf8"))
  const m = j.metrics; if (!m) continue
  rows.push(`| ${f.replace(".json", "")} | ${(m["ndcg@10"]).toFixed(4)} | ${(m["mrr@10"]).toFixed(4)} | ${(m["recall@10"]).toFixed(4)} | ${(m["map@100"]).toFixed(4)} | ${(j.seconds ?? j.timing_s?.total ?? 0).toFixed(1)} |`)
}
console.log("| run | nDCG@10 | MRR@10 | R@10 | MAP@100 | s |\n|---|---|---|---|---|---|\n" + rows.join("\n"))
' "$OUT"
