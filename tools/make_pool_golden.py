#!/usr/bin/env python
"""Golden token-pooling outputs from PyLate itself (pylate 1.4.0, scipy 1.17.1, torch 2.9.0).

Usage:
    python tools/make_pool_golden.py [--out __test__/fixtures/pool]
        [--model NAME=PYLATE_DIR_WITH_WEIGHTS ...]

Defaults: the tiny fixtures' PyLate folders from `tools/make_fixtures.py`
(tools/.build/fixtures/tiny-modernbert, tiny-bert) and the stand-in's from
`tools/make_standin.py` (models/.build/minilm-colbert-pylate).

For every set of documents:
  1. `model.encode(texts, is_query=False)` (CPU, fp32, sdpa): PyLate's unpooled document
     embeddings -> <set>.input.f32;
  2. `model.pool_embeddings_hierarchical(those, pool_factor=k, protected_tokens=1)` for k in
     (2, 3) -> <set>.pool<k>.f32; the script checks that `encode(..., pool_factor=k)` returns the
     same thing (it pools the same embeddings) and records the max |delta|;
plus synthetic sets with exact ties (repeated rows, one-hot rows whose rows of `1 - XX^T` are
all at the same distance), pooled by the same PyLate function.

Files: texts.json (the model sets' documents); raw little-endian float32, every document's rows concatenated in document order,
row-major. manifest.json = { versions, sets: [ { name, source, dim, documents,
input: {file, rows: [per-document row counts]}, pooled: [ {pool_factor, file, rows: [...]} ] } ] }.
Tests (Rust and ava) compare our pooling of <set>.input.f32 with the pooled files; no Python.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FACTORS = (2, 3)

# Documents: the model goldens' 32 edge-case texts (empty, whitespace, unicode, > document
# length ...) plus long passages made from this repository's own ARCHITECTURE.md, so every model
# is pooled at its full document length.
def documents() -> list[str]:
    texts = json.loads((REPO / "__test__/fixtures/tiny-modernbert/golden/texts.json").read_text())
    paragraphs = [
        p.replace("\n", " ").strip()
        for p in (REPO / "ARCHITECTURE.md").read_text().split("\n\n")
        if len(p) > 400 and not p.startswith(("```", "|"))
    ]
    return texts + paragraphs[:8]


def synthetic() -> list[tuple[str, list[np.ndarray]]]:
    rng = np.random.default_rng(7)

    def unit(m: np.ndarray) -> np.ndarray:
        return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)

    dim = 16
    base = unit(rng.standard_normal((6, dim)))
    docs = []
    # Repeated rows: CLS, then each of 6 vectors 1-4 times in a shuffled order (zero distances).
    for seed in range(6):
        r = np.random.default_rng(100 + seed)
        rows = [base[i] for i in range(6) for _ in range(int(r.integers(1, 5)))]
        r.shuffle(rows)
        docs.append(np.stack([unit(rng.standard_normal((1, dim)))[0]] + rows))
    # One-hot rows: every pair of rows of 1 - XX^T at the same distance (all merges tie).
    for n in (5, 8, 13):
        docs.append(np.eye(n + 1, dim, dtype=np.float32) if n + 1 <= dim else None)
    # Two exact copies of a random document (ties between the copies at every level).
    half = unit(rng.standard_normal((9, dim)))
    docs.append(np.concatenate([unit(rng.standard_normal((1, dim))), half, half]))
    # Short documents: 2 and 3 rows (1 and 2 to pool).
    docs.append(unit(rng.standard_normal((3, dim))))
    return [("ties", [d for d in docs if d is not None])]


def write_f32(path: Path, arrays: list[np.ndarray]) -> list[int]:
    flat = np.concatenate([a.astype(np.float32).reshape(-1) for a in arrays]) if arrays else np.zeros(0, np.float32)
    path.write_bytes(flat.astype("<f4").tobytes())
    return [int(a.shape[0]) for a in arrays]


def pool_set(model, name: str, source: str, arrays: list[np.ndarray], out: Path, texts=None) -> dict:
    dim = int(arrays[0].shape[1])
    entry = {
        "name": name,
        "source": source,
        "dim": dim,
        "documents": len(arrays),
        "input": {"file": f"{name}.input.f32", "rows": write_f32(out / f"{name}.input.f32", arrays)},
        "pooled": [],
    }
    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
    for k in FACTORS:
        # PyLate raises on documents with fewer than 2 rows to pool; those are left unchanged.
        pooled = []
        for t in tensors:
            if t.shape[0] - 1 < 2:
                pooled.append(t.numpy())
            else:
                pooled.append(model.pool_embeddings_hierarchical([t], pool_factor=k, protected_tokens=1)[0].numpy())
        rec = {"pool_factor": k, "file": f"{name}.pool{k}.f32", "rows": write_f32(out / f"{name}.pool{k}.f32", pooled)}
        if texts is not None:
            # encode(pool_factor=k) pools the same embeddings inside encode: check they agree.
            via_encode = model.encode(texts, is_query=False, pool_factor=k, convert_to_numpy=True)
            rec["encode_pool_factor_max_abs_delta"] = float(
                max(np.abs(a - b).max() if a.shape == b.shape else np.inf for a, b in zip(via_encode, pooled))
            )
        entry["pooled"].append(rec)
    return entry


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "__test__" / "fixtures" / "pool"))
    ap.add_argument("--model", action="append", default=None, help="NAME=PYLATE_DIR")
    args = ap.parse_args(argv)
    models = args.model or [
        f"tiny-modernbert={REPO / 'tools/.build/fixtures/tiny-modernbert'}",
        f"tiny-bert={REPO / 'tools/.build/fixtures/tiny-bert'}",
        f"minilm-colbert={REPO / 'models/.build/minilm-colbert-pylate'}",
    ]
    import pylate
    import scipy
    from pylate import models as pm

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for f in out.glob("*.f32"):
        f.unlink()
    texts = documents()
    (out / "texts.json").write_text(json.dumps(texts, ensure_ascii=True, indent=0) + "\n")
    sets = []
    first = None
    for spec in models:
        name, path = spec.split("=", 1)
        model = pm.ColBERT(path, device="cpu", model_kwargs={"torch_dtype": torch.float32, "attn_implementation": "sdpa"})
        first = first or model
        arrays = model.encode(texts, is_query=False, convert_to_numpy=True)
        sets.append(pool_set(model, name, f"{name}: encode(is_query=False) of {len(texts)} texts", list(arrays), out, texts))
        print(name, "done", [p.get("encode_pool_factor_max_abs_delta") for p in sets[-1]["pooled"]])
    for name, arrays in synthetic():
        sets.append(pool_set(first, name, "synthetic unit rows with exact ties", arrays, out))
    manifest = {
        "generator": "tools/make_pool_golden.py",
        "versions": {"pylate": pylate.__version__, "scipy": scipy.__version__, "torch": torch.__version__, "numpy": np.__version__},
        "protected_tokens": 1,
        "texts": "texts.json: the 32 texts of tiny-modernbert/golden/texts.json, then the first 8 paragraphs of ARCHITECTURE.md longer than 400 characters (as it was when this fixture was made)",
        "sets": sets,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
