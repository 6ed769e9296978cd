#!/usr/bin/env python
"""Export a saved PyLate ColBERT folder to ONNX, then verify it against PyLate.

Usage:
    python tools/export_onnx.py <pylate_model_dir> <out_dir> [--no-int8]
                                [--int8-per-channel] [--attn eager|sdpa] [--opset 17]

What it writes into <out_dir>:
  * model.onnx        fp32 graph:
                        backbone last_hidden_state
                        -> every Dense module of the PyLate model, applied with the
                           module's own forward (activation + residual included)
                        -> F.normalize(p=2, dim=-1, eps=1e-12) at ALL positions
                      inputs : input_ids, attention_mask[, token_type_ids]  (int64 [batch, sequence])
                      output : embeddings                                   (float32 [batch, sequence, dim])
  * model_int8.onnx   tools/quantize_int8.py: quantize_dynamic(weight_type=QInt8, per_channel=True,
                      reduce_range=True) (unless --no-int8; --no-int8-per-channel and
                      --no-int8-reduce-range undo the two settings)
  * the PyLate folder's config files, copied byte for byte (no weight files):
      config_sentence_transformers.json, modules.json, sentence_bert_config.json,
      config.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json,
      vocab.txt, added_tokens.json (when present) and every N_Dense/config.json
  * onnx_export.json  sidecar: exporter version, opset, input/output names, dim,
                      library versions and the verification numbers.

The model is loaded exactly as PyLate loads it (every config value as saved; no
override such as do_query_expansion=False), on CPU, in float32.

Verification: PyLate's own tokenize() output (documents at sequence lengths 8, 32,
129 and 300, batched with shorter padded rows, plus a query batch) is fed to both
onnxruntime and PyLate's torch forward + F.normalize at every position.  Exit code
1 when the fp32 max |delta| exceeds 1e-4.
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import platform
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

EXPORTER_VERSION = "1.0.0"
FP32_TOLERANCE = 1e-4
VERIFY_LENGTHS = (8, 32, 129, 300)

CONFIG_FILES = [
    "config_sentence_transformers.json",
    "modules.json",
    "sentence_bert_config.json",
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "added_tokens.json",
]

# Deterministic filler text for the verification inputs (long enough to reach
# 300+ tokens with any sub-word tokenizer).
_VERIFY_SENTENCES = [
    "The mitochondria produce most of the chemical energy needed by the cell.",
    "Randomised controlled trials remain the gold standard for clinical evidence,",
    "although observational cohorts of 12,345 patients can reveal rare side effects.",
    "Gene expression (measured by RNA-seq) changed 2.5-fold after treatment!",
    "Did the vaccine reduce hospital admissions? Yes: by 41% in adults over 65.",
    "Proteins fold into three-dimensional shapes; misfolding causes disease.",
]


def verify_text(n_sentences: int) -> str:
    out = []
    i = 0
    while len(out) < n_sentences:
        out.append(_VERIFY_SENTENCES[i % len(_VERIFY_SENTENCES)])
        i += 1
    return " ".join(out)


class ColBERTOnnxGraph(nn.Module):
    """backbone -> PyLate Dense modules (own forward) -> L2 normalise every position."""

    def __init__(self, colbert, uses_token_type_ids: bool):
        super().__init__()
        from pylate.models.Dense import Dense as PyLateDense

        self.backbone = colbert[0].auto_model
        dense = []
        for i in range(1, len(colbert)):
            module = colbert[i]
            if not isinstance(module, PyLateDense):
                raise SystemExit(f"module {i} is {type(module).__name__}, expected pylate Dense")
            dense.append(module)
        self.dense = nn.ModuleList(dense)
        self.uses_token_type_ids = uses_token_type_ids

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.uses_token_type_ids:
            kwargs["token_type_ids"] = token_type_ids
        # Same call as sentence_transformers.models.Transformer.forward: outputs[0]
        hidden = self.backbone(**kwargs, return_dict=True)[0]
        features = {"token_embeddings": hidden}
        for module in self.dense:
            features = module(features)
        return F.normalize(features["token_embeddings"], p=2, dim=-1, eps=1e-12)


def load_colbert(model_dir: str, attn: str):
    from pylate import models

    return models.ColBERT(
        model_dir,
        device="cpu",
        model_kwargs={"torch_dtype": torch.float32, "attn_implementation": attn},
    )


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def copy_configs(src: Path, dst: Path) -> list[str]:
    copied = []
    for name in CONFIG_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
            copied.append(name)
    modules_json = src / "modules.json"
    if modules_json.is_file():
        for entry in json.loads(modules_json.read_text()):
            sub = entry.get("path") or ""
            if sub and (src / sub / "config.json").is_file():
                (dst / sub).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / sub / "config.json", dst / sub / "config.json")
                copied.append(f"{sub}/config.json")
    return copied


def verification_batches(colbert, max_positions: int):
    """Yield (label, features) built by PyLate's own tokenize()."""
    saved_doc_len = colbert.document_length
    try:
        for L in VERIFY_LENGTHS:
            if L > max_positions:
                continue
            colbert.document_length = L
            texts = [verify_text(40), verify_text(max(1, L // 40)), "short document"]
            feats = colbert.tokenize(texts, is_query=False)
            yield f"documents_len{feats['input_ids'].shape[1]}", feats
    finally:
        colbert.document_length = saved_doc_len
    # Queries exactly as PyLate builds them with the saved config (expansion or not).
    feats = colbert.tokenize(["what is a cell?", verify_text(20)], is_query=True)
    yield f"queries_len{feats['input_ids'].shape[1]}", feats
    # Queries with attend_to_expansion_tokens toggled (all-ones attention mask).
    saved = (colbert.do_query_expansion, colbert.attend_to_expansion_tokens)
    try:
        colbert.do_query_expansion, colbert.attend_to_expansion_tokens = True, True
        feats = colbert.tokenize(["what is a cell?", "x"], is_query=True)
        yield f"queries_attend_expansion_len{feats['input_ids'].shape[1]}", feats
    finally:
        colbert.do_query_expansion, colbert.attend_to_expansion_tokens = saved


def run_verification(colbert, graph_inputs, paths, max_positions):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, os.cpu_count() or 1)
    sessions = {
        name: ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"])
        for name, p in paths.items()
    }
    results = {name: {"cases": []} for name in paths}
    for label, feats in verification_batches(colbert, max_positions):
        with torch.no_grad():
            out = colbert.forward({k: v.clone() for k, v in feats.items()})
            ref = F.normalize(out["token_embeddings"], p=2, dim=-1).float().numpy()
        ort_inputs = {k: feats[k].numpy().astype(np.int64) for k in graph_inputs}
        mask = feats["attention_mask"].numpy().astype(bool)
        for name, sess in sessions.items():
            got = sess.run(["embeddings"], ort_inputs)[0]
            assert got.shape == ref.shape, (got.shape, ref.shape)
            diff = float(np.abs(got - ref).max())
            cos = (got * ref).sum(-1) / (
                np.linalg.norm(got, axis=-1) * np.linalg.norm(ref, axis=-1) + 1e-30
            )
            results[name]["cases"].append(
                {
                    "case": label,
                    "shape": list(ref.shape),
                    "max_abs_diff_all_positions": diff,
                    "max_abs_diff_attended_positions": float(np.abs(got - ref)[mask].max()),
                    "min_cosine_all_positions": float(cos.min()),
                }
            )
    for name, r in results.items():
        r["max_abs_diff"] = max(c["max_abs_diff_all_positions"] for c in r["cases"])
        r["min_cosine"] = min(c["min_cosine_all_positions"] for c in r["cases"])
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", help="folder saved by pylate ColBERT.save()")
    ap.add_argument("out_dir")
    ap.add_argument("--no-int8", action="store_true", help="skip model_int8.onnx")
    ap.add_argument("--attn", default="eager", choices=["eager", "sdpa"], help="attention implementation used for tracing")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument(
        "--int8-per-channel",
        action="store_true",
        help="(the default now) per-output-channel weight scales (much closer to fp32 for MiniLM)",
    )
    ap.add_argument("--no-int8-per-channel", action="store_true", help="one weight scale per tensor")
    ap.add_argument(
        "--no-int8-reduce-range",
        action="store_true",
        help="8-bit instead of 7-bit int8 weights: CPUs without VNNI then saturate (see tools/quantize_int8.py)",
    )
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    src = Path(args.model_dir)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    colbert = load_colbert(str(src), args.attn)
    colbert.eval()
    backbone = colbert[0].auto_model
    fwd_params = inspect.signature(backbone.forward).parameters
    uses_tti = "token_type_ids" in fwd_params
    input_names = ["input_ids", "attention_mask"] + (["token_type_ids"] if uses_tti else [])
    dim = int(colbert[-1].out_features)
    max_positions = int(getattr(backbone.config, "max_position_embeddings", 512))

    graph = ColBERTOnnxGraph(colbert, uses_tti).eval()

    # Trace on a padded 2-row batch built by PyLate itself (mask contains zeros).
    sample = colbert.tokenize(["a sample document for the onnx export trace", "short"], is_query=False)
    example = tuple(sample[n] for n in input_names)
    dynamic_axes = {n: {0: "batch", 1: "sequence"} for n in input_names}
    dynamic_axes["embeddings"] = {0: "batch", 1: "sequence"}

    fp32_path = out / "model.onnx"
    with torch.no_grad():
        torch.onnx.export(
            graph,
            example,
            str(fp32_path),
            input_names=input_names,
            output_names=["embeddings"],
            dynamic_axes=dynamic_axes,
            opset_version=args.opset,
            do_constant_folding=True,
            dynamo=False,
        )
    import onnx

    onnx.checker.check_model(str(fp32_path))
    print(f"wrote {fp32_path} ({fp32_path.stat().st_size / 1e6:.2f} MB)")

    paths = {"fp32": fp32_path}
    int8_path = out / "model_int8.onnx"
    if not args.no_int8:
        import quantize_int8

        int8_settings = quantize_int8.quantize(
            fp32_path, int8_path, per_channel=not args.no_int8_per_channel, reduce_range=not args.no_int8_reduce_range
        )
        paths["int8"] = int8_path
        print(f"wrote {int8_path} ({int8_path.stat().st_size / 1e6:.2f} MB)")
    elif int8_path.exists():
        int8_path.unlink()

    copied = copy_configs(src, out)

    verification = run_verification(colbert, input_names, paths, max_positions)
    for name, r in verification.items():
        for c in r["cases"]:
            print(
                f"verify {name:4s} {c['case']:34s} shape={c['shape']} "
                f"max|d|={c['max_abs_diff_all_positions']:.3e} "
                f"(attended {c['max_abs_diff_attended_positions']:.3e}) min cos={c['min_cosine_all_positions']:.6f}"
            )
        print(f"verify {name}: max |delta| = {r['max_abs_diff']:.3e}, min cosine = {r['min_cosine']:.6f}")

    import onnxruntime
    import pylate
    import sentence_transformers
    import tokenizers
    import transformers

    dense_cfg = []
    for i in range(1, len(colbert)):
        cfg = colbert[i].get_config_dict()
        dense_cfg.append({k: (v if isinstance(v, (int, float, bool, str)) or v is None else str(v)) for k, v in cfg.items()})

    files = {n: {"bytes": p.stat().st_size, "sha256": sha256(p)} for n, p in [("model.onnx", fp32_path)] + ([("model_int8.onnx", int8_path)] if "int8" in paths else [])}
    sidecar = {
        "exporter": "tools/export_onnx.py",
        "exporter_version": EXPORTER_VERSION,
        "opset": args.opset,
        "inputs": input_names,
        "input_dtype": "int64",
        "input_shape": ["batch", "sequence"],
        "output": "embeddings",
        "output_dtype": "float32",
        "output_shape": ["batch", "sequence", dim],
        "dim": dim,
        "l2_normalized": "all positions (F.normalize p=2, dim=-1, eps=1e-12), after all Dense layers",
        "uses_token_type_ids": uses_tti,
        "backbone_class": type(backbone).__name__,
        "hidden_size": int(backbone.config.hidden_size),
        "max_position_embeddings": max_positions,
        "dense_layers": dense_cfg,
        "attn_implementation_traced": args.attn,
        "constant_folding": True,
        "int8": None if "int8" not in paths else int8_settings,
        "files": files,
        "copied_config_files": copied,
        "pylate_config": {
            "query_prefix": colbert.query_prefix,
            "document_prefix": colbert.document_prefix,
            "query_prefix_id": int(colbert.query_prefix_id),
            "document_prefix_id": int(colbert.document_prefix_id),
            "query_length": colbert.query_length,
            "document_length": colbert.document_length,
            "do_query_expansion": colbert.do_query_expansion,
            "attend_to_expansion_tokens": colbert.attend_to_expansion_tokens,
            "mask_token_id": colbert.tokenizer.mask_token_id,
            "pad_token_id": colbert.tokenizer.pad_token_id,
            "do_lower_case": bool(getattr(colbert[0], "do_lower_case", False)),
            "skiplist_words": colbert.skiplist_words,
            "skiplist_ids": [int(i) for i in colbert.skiplist],
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "pylate": pylate.__version__,
            "tokenizers": tokenizers.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "verification": {
            "reference": "PyLate torch forward (same loaded model) + F.normalize at all positions, on PyLate tokenize() outputs",
            "fp32_tolerance": FP32_TOLERANCE,
            **verification,
        },
    }
    (out / "onnx_export.json").write_text(json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out / 'onnx_export.json'}")

    worst = verification["fp32"]["max_abs_diff"]
    if not worst <= FP32_TOLERANCE:
        print(f"FAIL: fp32 ONNX vs torch max |delta| {worst:.3e} > {FP32_TOLERANCE}", file=sys.stderr)
        return 1
    print(f"OK: fp32 ONNX vs torch max |delta| {worst:.3e} <= {FP32_TOLERANCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
