#!/usr/bin/env bash
# Encode throughput, this package vs PyLate, in one run on the same machine, texts, model and
# thread count. Needs `npm run build`, the stand-in's fp32 model.onnx (tools/make_standin.py) and
# the tools venv. Writes bench/out/encode.jsonl and prints the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${THREADS:-2}" DOCS="${DOCS:-1000}"
DATA="${DATA:-../shared/data/scifact}"
MODEL="${MODEL:-models/minilm-colbert}"
PYLATE_MODEL="${PYLATE_MODEL:-models/.build/minilm-colbert-pylate}"
mkdir -p bench/out
{
  node bench/encode.mjs --model "$MODEL" --data "$DATA" --docs "$DOCS" --threads "$THREADS"
  OMP_NUM_THREADS="$THREADS" tools/.venv/bin/python bench/encode_pylate.py --model "$PYLATE_MODEL" --data "$DATA" --docs "$DOCS" --threads "$THREADS"
} | tee bench/out/encode.jsonl
node -e '
const rows = require("fs").readFileSync("bench/out/encode.jsonl", "utf8").trim().split("\n").map(JSON.parse)
const py = rows.find((r) => r.engine === "pylate")
for (const r of rows) console.log(`${r.engine} ${r.precision}: ${r.docs_per_s.toFixed(1)} docs/s (${(r.docs_per_s / py.docs_per_s).toFixed(2)}x), ${r.queries_per_s.toFixed(1)} queries/s (${(r.queries_per_s / py.queries_per_s).toFixed(2)}x)`)
'
