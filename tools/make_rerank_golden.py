"""Golden output of PyLate's `rank.rerank` for __test__/rank.spec.ts.

Small random unit vectors (dim 8) with candidates of different lengths, so PyLate's
zero padding (max(0, ·) for candidates shorter than the longest one) changes some scores.
Run: tools/.venv/bin/python tools/make_rerank_golden.py
"""
import json
from pathlib import Path

import numpy as np
import torch
from pylate import rank

OUT = Path(__file__).resolve().parent.parent / "__test__" / "fixtures" / "rerank" / "golden.json"


def unit(rng, n, dim, bias=0.0):
    x = rng.standard_normal((n, dim)).astype(np.float32) + bias
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main():
    rng = np.random.default_rng(7)
    dim = 8
    queries, docs, ids = [], [], []
    for qi in range(4):
        q = unit(rng, 5, dim)
        cands = []
        for j in range(6 + qi):
            # Mostly anti-aligned short candidates: their per-token maxima go negative.
            n = int(rng.integers(1, 7))
            bias = -0.8 if j % 3 == 0 else 0.0
            cands.append(unit(rng, n, dim, bias=bias))
        queries.append(q)
        docs.append(cands)
        ids.append([f"q{qi}-d{j}" for j in range(len(cands))])
    result = rank.rerank(
        documents_ids=ids,
        queries_embeddings=[torch.from_numpy(q) for q in queries],
        documents_embeddings=[[torch.from_numpy(d) for d in c] for c in docs],
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "dim": dim,
                "queries": [q.flatten().tolist() for q in queries],
                "query_tokens": [len(q) for q in queries],
                "documents": [[d.flatten().tolist() for d in c] for c in docs],
                "documents_ids": ids,
                "pylate": [[{"id": r["id"], "score": float(r["score"])} for r in res] for res in result],
            }
        )
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
