"""PyLate's exhaustive MaxSim (pylate.scores.colbert_scores: padded einsum, max, sum) on the same
synthetic shapes as crates/colbert-core/examples/maxsim_bench.rs (dim 128, 32-token queries,
5,183 documents of 40-400 tokens), documents in padded batches as PyLate's evaluator feeds them.
Prints one JSON line. Usage: python bench/maxsim_pylate.py [queries] [threads] [min max] [doc batch]"""
import json
import sys
import time

import torch
from pylate.scores import colbert_scores

nq = int(sys.argv[1]) if len(sys.argv) > 1 else 30
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
lo, hi = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (40, 400)
batch = int(sys.argv[5]) if len(sys.argv) > 5 else 256
torch.set_num_threads(threads)
torch.set_num_interop_threads(1)
g = torch.Generator().manual_seed(7)
dim, nd = 128, 5183
lengths = torch.randint(lo, hi + 1, (nd,), generator=g).tolist()
docs = [torch.nn.functional.normalize(torch.rand(n, dim, generator=g) - 0.5, dim=-1) for n in lengths]
queries = torch.nn.functional.normalize(torch.rand(nq, 32, dim, generator=g) - 0.5, dim=-1)
flops = 2 * dim * 32 * nq * sum(lengths)
with torch.inference_mode():
    colbert_scores(queries[:1], torch.nn.utils.rnn.pad_sequence(docs[:8], batch_first=True))  # warm-up
    t = time.perf_counter()
    for s in range(0, nd, batch):
        chunk = docs[s : s + batch]
        padded = torch.nn.utils.rnn.pad_sequence(chunk, batch_first=True)
        mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(d)) for d in chunk], batch_first=True)
        colbert_scores(queries, padded, documents_mask=mask)
    secs = time.perf_counter() - t
print(json.dumps({"engine": "pylate", "queries": nq, "documents": nd, "tokens": sum(lengths), "threads": threads, "seconds": round(secs, 3), "gflops": round(flops / 1e9, 1), "gflop_per_s": round(flops / secs / 1e9, 1), "doc_batch": batch}))
