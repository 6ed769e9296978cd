"""fast-plaid (PyPI, CPU) on the embeddings dumped by bench/dump-embeddings.mjs, for the PLAID
benchmark (bench/run-plaid.sh). Prints one JSON line per phase/setting.

  python bench/plaid_fastplaid.py build  <dump> <index_dir> --threads 2 [--nbits 4]
  python bench/plaid_fastplaid.py search <dump> <index_dir> --threads 2 --settings "8:4096,16:8192"
"""
import argparse
import json
import os
import pathlib
import resource
import shutil
import time

import numpy as np
import torch

p = argparse.ArgumentParser()
p.add_argument("phase", choices=["build", "search"])
p.add_argument("dump")
p.add_argument("index")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--nbits", type=int, default=4)
p.add_argument("--settings", default="8:4096")
p.add_argument("--k", type=int, default=10)
p.add_argument("--latency-queries", type=int, default=0, help="time one-query calls on the first N queries only (0: all)")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.set_num_interop_threads(1)
from fast_plaid import search as fp  # noqa: E402  (import after thread settings)

dump = pathlib.Path(a.dump)
meta = json.loads((dump / "meta.json").read_text())
dim = meta["dim"]


def load(name):
    data = np.fromfile(dump / f"{name}.f32", dtype="<f4").reshape(-1, dim)
    offsets = np.fromfile(dump / f"{name}.offsets.u32", dtype="<u4")
    return [torch.from_numpy(data[offsets[i]:offsets[i + 1]].copy()) for i in range(len(offsets) - 1)]


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dir_bytes(path):
    return sum(f.stat().st_size for f in pathlib.Path(path).rglob("*") if f.is_file())


if a.phase == "build":
    docs = load("docs")
    tokens = sum(len(d) for d in docs)
    # Build beside the target and swap only when complete: a killed run leaves the previous
    # index (and at most a stale .tmp folder) rather than a half-written one.
    target = pathlib.Path(a.index)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    before = rss_mb()
    t = time.perf_counter()
    index = fp.FastPlaid(index=str(tmp), device="cpu")
    index.create(documents_embeddings=docs, nbits=a.nbits, seed=42, use_triton_kmeans=False)
    seconds = time.perf_counter() - t
    size = dir_bytes(tmp)
    old = target.with_name(f"{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    print(json.dumps({"engine": "fast-plaid", "phase": "build", "threads": a.threads, "nbits": a.nbits,
                      "documents": len(docs), "tokens": tokens, "seconds": seconds,
                      "peak_rss_mb": rss_mb(), "rss_before_build_mb": before,
                      "index_bytes": size, "bytes_per_token": size / tokens}))
else:
    queries = load("queries")
    exact = json.loads((dump / "exact_top100.json").read_text())["top"]
    t = time.perf_counter()
    index = fp.FastPlaid(index=a.index, device="cpu")
    first = index.search(queries_embeddings=queries[:1], top_k=a.k, show_progress=False)
    open_first_ms = (time.perf_counter() - t) * 1000
    docs_ids = meta["documents"]
    # The folder after a search: per-chunk files ("0.codes.npy", ...) and, made by the first
    # load, "merged_*" copies of the same codes and residuals. Report both sizes.
    folder = dir_bytes(a.index)
    copies = sum(f.stat().st_size for f in pathlib.Path(a.index).glob("merged_*") if f.is_file())
    print(json.dumps({"engine": "fast-plaid", "phase": "size", "nbits": a.nbits, "index_bytes": folder,
                      "merged_copies_bytes": copies, "index_bytes_without_copies": folder - copies,
                      "files": sorted(f.name for f in pathlib.Path(a.index).iterdir())}))
    for setting in a.settings.split(","):
        probe, full = (int(x) for x in setting.split(":"))
        kw = dict(top_k=a.k, n_ivf_probe=probe, n_full_scores=full, show_progress=False)
        index.search(queries_embeddings=queries[:8], **kw)  # warm-up
        t = time.perf_counter()
        res = index.search(queries_embeddings=queries, **kw)
        batch_s = time.perf_counter() - t
        lat = []
        for q in queries[: a.latency_queries or len(queries)]:
            t = time.perf_counter()
            index.search(queries_embeddings=[q], **kw)
            lat.append((time.perf_counter() - t) * 1000)
        ranked = [[docs_ids[i] for i, _ in r] for r in res]
        recall = np.mean([len(set(r[: a.k]) & {d for d, _ in e[: a.k]}) / a.k for r, e in zip(ranked, exact)])
        print(json.dumps({"engine": "fast-plaid", "phase": "search", "threads": a.threads,
                          "n_ivf_probe": probe, "n_full_scores": full, "qps": len(queries) / batch_s,
                          "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
                          "recall_at_10": float(recall), "open_first_query_ms": open_first_ms,
                          "peak_rss_mb": rss_mb(), "ranked": ranked}))
