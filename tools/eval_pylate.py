#!/usr/bin/env python
"""Exhaustive-MaxSim retrieval evaluation of a PyLate model on a BEIR-layout dataset.

Usage:
    python tools/eval_pylate.py <pylate_model_dir> <beir_dir> [--out metrics.json]
                                [--predictions-dir DIR] [--batch-size 32] [--chunk 100]
                                [--onnx model_int8.onnx]

<beir_dir> holds corpus.jsonl (_id, title, text), queries.jsonl (_id, text) and
qrels.tsv (query-id, corpus-id, score; header line; score > 0 = relevant).

Document text = (title + " " + text).strip().  The model is loaded on CPU in float32
(sdpa) with every config value as saved.  Scoring is PyLate's own
`pylate.evaluation.PyLateInformationRetrievalEvaluator` (sentence-transformers
InformationRetrievalEvaluator metrics, MaxSim = pylate.scores.colbert_scores, no index).

Memory: the evaluator's einsum materialises [n_queries, n_docs_in_chunk, q_len, d_len]
floats, so all 5,183 SciFact documents at once would need ~50 GB.  We therefore encode
the corpus ONCE (`model.encode(corpus, is_query=False, convert_to_numpy=False)`, then
`pad_sequence(..., padding_value=0)` over the WHOLE corpus, exactly what the evaluator
does for one chunk) and hand that tensor to the evaluator (`corpus_embeddings=`), which
then only slices it into --chunk documents per score call.  Scores are therefore the
same as a single-chunk run (same zero padding to the corpus-wide longest document).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402


def load_beir(beir_dir: Path):
    corpus = {}
    with open(beir_dir / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            corpus[str(d["_id"])] = (d.get("title", "") + " " + d.get("text", "")).strip()
    queries = {}
    with open(beir_dir / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            queries[str(d["_id"])] = d["text"]
    qrels: dict[str, set[str]] = {}
    with open(beir_dir / "qrels.tsv", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader)
        assert header[0].lower().startswith("query"), header
        for row in reader:
            if not row:
                continue
            qid, cid, score = row[0], row[1], float(row[2])
            if score > 0:
                qrels.setdefault(qid, set()).add(cid)
    return corpus, queries, qrels


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("beir_dir")
    ap.add_argument("--out", default=None, help="metrics JSON (default: <model_dir>/eval_<dataset>.json)")
    ap.add_argument("--predictions-dir", default=None, help="also write the evaluator's top-100 predictions JSONL here")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--chunk", type=int, default=100, help="documents per MaxSim call (memory only)")
    ap.add_argument("--name", default=None)
    ap.add_argument(
        "--pool",
        default=None,
        help="rerank per-query candidate pools (TSV query-id, corpus-id, ...; e.g. TREC DL bm25-top100.tsv) "
        "with pylate.rank.rerank instead of ranking the whole corpus; metrics from the evaluator's compute_metrics",
    )
    ap.add_argument(
        "--onnx",
        default=None,
        help="run the transformer+Dense forward with this ONNX file (onnxruntime CPU) instead of torch; "
        "tokenization, masking, skiplist, normalisation and scoring stay PyLate's",
    )
    args = ap.parse_args()

    import pylate
    import sentence_transformers
    import transformers
    from pylate import evaluation, models

    beir = Path(args.beir_dir)
    name = args.name or beir.name
    t0 = time.time()
    corpus, queries, qrels = load_beir(beir)
    model = models.ColBERT(
        args.model_dir,
        device="cpu",
        model_kwargs={"torch_dtype": torch.float32, "attn_implementation": "sdpa"},
    )
    if args.onnx:
        import numpy as np
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = torch.get_num_threads()
        sess = ort.InferenceSession(args.onnx, so, providers=["CPUExecutionProvider"])
        in_names = [i.name for i in sess.get_inputs()]
        out_name = sess.get_outputs()[0].name

        def onnx_forward(input, **kwargs):  # same contract as SentenceTransformer.forward
            feed = {n: input[n].numpy().astype(np.int64) for n in in_names}
            input["token_embeddings"] = torch.from_numpy(sess.run([out_name], feed)[0])
            return input

        model.forward = onnx_forward
    t_load = time.time()

    evaluator = evaluation.PyLateInformationRetrievalEvaluator(
        queries=queries,
        corpus=corpus,
        relevant_docs=qrels,
        name=name,
        batch_size=args.batch_size,
        corpus_chunk_size=args.chunk,
        show_progress_bar=False,
        write_csv=False,
        write_predictions=args.predictions_dir is not None,
    )
    print(f"{len(evaluator.queries)} queries with qrels, {len(evaluator.corpus)} documents", flush=True)

    if args.pool:
        return rerank_pools(args, model, evaluator, name, t0, t_load)

    with torch.no_grad():
        doc_emb = model.encode(
            evaluator.corpus, is_query=False, batch_size=args.batch_size, convert_to_numpy=False, show_progress_bar=False
        )
    t_docs = time.time()
    n_doc_tokens = int(sum(e.shape[0] for e in doc_emb))
    doc_emb = torch.nn.utils.rnn.pad_sequence(doc_emb, batch_first=True, padding_value=0)
    print(f"encoded corpus: {tuple(doc_emb.shape)}, {n_doc_tokens} kept tokens, {t_docs - t_load:.1f}s", flush=True)

    if args.predictions_dir:
        Path(args.predictions_dir).mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        metrics = evaluator(model, output_path=args.predictions_dir, corpus_embeddings=doc_emb)
    t_end = time.time()

    short = {}
    for k, v in metrics.items():
        short[k.replace(f"{name}_MaxSim_", "")] = v
    result = {
        "dataset": name,
        "model_dir": os.path.relpath(args.model_dir),
        "n_queries": len(evaluator.queries),
        "n_documents": len(evaluator.corpus),
        "document_text": "(title + ' ' + text).strip()",
        "document_kept_tokens": n_doc_tokens,
        "padded_corpus_shape": list(doc_emb.shape),
        "evaluator": "pylate.evaluation.PyLateInformationRetrievalEvaluator (exhaustive MaxSim), corpus encoded once and padded corpus-wide",
        "forward": f"onnxruntime {os.path.relpath(args.onnx)}" if args.onnx else "torch fp32 (sdpa)",
        "metrics": short,
        "metrics_raw": metrics,
        "headline": {
            "ndcg@10": short.get("ndcg@10"),
            "mrr@10": short.get("mrr@10"),
            "recall@10": short.get("recall@10"),
            "map@100": short.get("map@100"),
        },
        "timing_s": {
            "load": round(t_load - t0, 2),
            "encode_corpus": round(t_docs - t_load, 2),
            "encode_queries_and_score": round(t_end - t_docs, 2),
            "total": round(t_end - t0, 2),
        },
        "env": {
            "device": "cpu",
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "pylate": pylate.__version__,
        },
    }
    out = Path(args.out) if args.out else Path(args.model_dir) / f"eval_{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"headline": result["headline"], "timing_s": result["timing_s"]}, indent=2))
    print(f"wrote {out}")
    return 0


def rerank_pools(args, model, evaluator, name, t0, t_load) -> int:
    """Reranks each judged query's pool with pylate.rank.rerank; ST metrics on the result."""
    from pylate import rank

    pools: dict[str, list[str]] = {}
    with open(args.pool, encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        next(reader)
        for row in reader:
            if row:
                pools.setdefault(row[0], []).append(row[1])
    corpus = dict(zip(evaluator.corpus_ids, evaluator.corpus))
    qids = list(evaluator.queries_ids)
    wanted = sorted({d for q in qids for d in pools.get(q, []) if d in corpus})
    with torch.no_grad():
        emb = model.encode([corpus[d] for d in wanted], is_query=False, batch_size=args.batch_size, show_progress_bar=False)
        q_emb = model.encode(evaluator.queries, is_query=True, batch_size=args.batch_size, show_progress_bar=False)
    t_docs = time.time()
    by_id = dict(zip(wanted, emb))
    ids = [[d for d in pools.get(q, []) if d in by_id] for q in qids]
    ranked = rank.rerank(documents_ids=ids, queries_embeddings=q_emb, documents_embeddings=[[by_id[d] for d in l] for l in ids])
    results = [[{"corpus_id": r["id"], "score": r["score"]} for r in rq[:100]] for rq in ranked]
    metrics = evaluator.compute_metrics(results)
    t_end = time.time()
    flat = {}
    for fam, vals in metrics.items():
        for k, v in vals.items():
            flat[f"{fam.replace('@k', '')}@{k}"] = float(v)
    result = {
        "dataset": name,
        "mode": "rerank pools (pylate.rank.rerank)",
        "n_queries": len(qids),
        "n_documents": len(wanted),
        "metrics": flat,
        "timing_s": {"load": round(t_load - t0, 2), "encode_and_rerank": round(t_end - t_load, 2), "total": round(t_end - t0, 2)},
        "env": {"torch_threads": torch.get_num_threads()},
    }
    out = Path(args.out) if args.out else Path(args.model_dir) / f"eval_{name}_pool.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["metrics"], indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
