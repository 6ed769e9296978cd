"""PyLate's encode throughput on the same SciFact texts as bench/encode.mjs, same thread count.
Prints one JSON line. Usage: python bench/encode_pylate.py --model <pylate folder> --data <scifact> --docs 1000 --threads 2"""
import argparse
import json
import pathlib
import time

import torch
from pylate import models

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--data", required=True)
p.add_argument("--docs", type=int, default=1000)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.set_num_interop_threads(1)

data = pathlib.Path(a.data)
rows = [json.loads(l) for l in (data / "corpus.jsonl").read_text().splitlines() if l.strip()]
docs = [f"{d.get('title', '')} {d.get('text', '')}".strip() for d in rows[: a.docs]]
queries = [json.loads(l)["text"] for l in (data / "queries.jsonl").read_text().splitlines() if l.strip()]

model = models.ColBERT(a.model, device="cpu", model_kwargs={"torch_dtype": torch.float32})
model.encode(docs[:32], is_query=False, show_progress_bar=False)  # warm-up
with torch.inference_mode():
    t = time.perf_counter()
    out = model.encode(docs, is_query=False, batch_size=32, show_progress_bar=False)
    doc_s = time.perf_counter() - t
    t = time.perf_counter()
    model.encode(queries, is_query=True, batch_size=32, show_progress_bar=False)
    query_s = time.perf_counter() - t
print(json.dumps({
    "engine": "pylate", "precision": "fp32", "threads": a.threads, "docs": len(docs),
    "tokens": int(sum(len(x) for x in out)), "docs_per_s": len(docs) / doc_s,
    "queries": len(queries), "queries_per_s": len(queries) / query_s,
}))
