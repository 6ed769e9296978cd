#!/usr/bin/env python
"""Golden outputs from PyLate (CPU, fp32, sdpa) for a saved PyLate ColBERT folder.

Usage:
    python tools/make_golden.py <pylate_model_dir_with_weights> <fixture_dir>

Writes <fixture_dir>/golden/:
  texts.json          JSON array of the test strings (same list for every model)
  manifest.json       see below
  <case>.f32          raw little-endian float32, rows of every text concatenated in
                      text order, row-major, `dim` floats per row
  skiplist_ids.json   model.skiplist (ids, in skiplist_words order, duplicates kept)

Cases (each: ColBERT(dir, device="cpu", model_kwargs={torch_dtype: float32,
attn_implementation: sdpa}, **constructor_kwargs), then every text ALONE):
  query                   is_query=True,  config defaults (do_query_expansion true, attend false)
  query_no_expansion      is_query=True,  do_query_expansion=False
  query_attend_expansion  is_query=True,  attend_to_expansion_tokens=True
  document                is_query=False
Per text: model.tokenize([text], is_query) -> input_ids / attention_mask / token_type_ids
          model.encode([text], is_query, convert_to_numpy=True)[0] -> rows

manifest.json = {
  "model", "dim", "pylate_version", "versions", "dtype", "attn_implementation",
  "texts_file", "skiplist_file", "config": {resolved PyLate values},
  "cases": [ { "name", "is_query", "overrides": {effective do_query_expansion /
               attend_to_expansion_tokens}, "constructor_kwargs", "embeddings_file",
               "rows_total",
               "items": [ { "input_ids", "attention_mask", ["token_type_ids"],
                            "kept_positions", "row_offset", "rows" } ] } ],
  "batch_invariance": {...}, "onnx_check": {...}
}
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ATTN = "sdpa"

_LONG_SENTENCES = [
    "Chronic inflammation of the airway is a hallmark of asthma, and it is driven by a complex network of immune cells.",
    "In a cohort of 4,512 adults followed for 12 years, the hazard ratio for incident disease was 1.37 (95% CI 1.12-1.68).",
    "Mouse models lacking the receptor showed impaired wound healing, reduced angiogenesis and delayed re-epithelialization.",
    "These findings suggest that early intervention may prevent irreversible remodeling; however, replication is needed.",
    "Single-cell sequencing revealed previously unrecognized subpopulations of fibroblasts with distinct transcriptional programs.",
    "The primary outcome was all-cause mortality at 30 days, and secondary outcomes included length of stay and readmission.",
]


def _para(n: int, start: int = 0) -> str:
    return " ".join(_LONG_SENTENCES[(start + i) % len(_LONG_SENTENCES)] for i in range(n))


# The SAME list for every model.  Comments give the intent; the manifest gives what happened.
TEXTS: list[str] = [
    "hello",                                                        # 0 short
    "",                                                             # 1 empty
    "   ",                                                          # 2 whitespace only
    " \t\n leading and trailing whitespace \t\n ",                 # 3
    "\u00a0no-break spaces around\u00a0",                           # 4 U+00A0 (Python strips)
    "\u3000ideographic space around\u3000",                         # 5 U+3000 (Python strips)
    "\u001c\u001d\u001e\u001finformation separators\u001f\u001e\u001d\u001c",  # 6 U+001C..1F (Python strips, Rust trim does not)
    "\ufeffbyte order mark around\ufeff",                           # 7 U+FEFF (Python does NOT strip, JS trim does)
    "\u0085next line and line separator\u2028",                     # 8 U+0085 / U+2028 (Python strips; JS trim keeps U+0085)
    "\u200bzero width space is not whitespace\u200b",               # 9 U+200B (nobody strips)
    "\x0b\x0cvertical tab and form feed\r",                         # 10
    "Mixed CASE Text with CamelCase, ALLCAPS and lowercase",        # 11
    "a, b. (c)!",                                                   # 12 heavy punctuation
    "!!! ... ??? ,,, ;;; --- ((( ))) [[ ]] {{ }} <> // \\\\ || @@ ## $$ %% ^^ && ** ++ == __ ~~ `` '' \"\"",  # 13 punctuation only
    "Emoji 😀🚀👍🏽 and CJK 中文字符 日本語のテキスト 한국어",      # 14
    "Café naïve résumé façade; decomposed: Cafe\u0301 nai\u0308ve; Zoë Ångström",  # 15 accents / combining
    "ΟΔΟΣ ΣΟΦΟΣ",                                                   # 16 Greek final sigma on lowercasing
    "İstanbul IĞDIR ıi DİYARBAKIR",                                  # 17 dotted/dotless i
    "[Q] literal query prefix at the start",                        # 18
    "a literal [D] document prefix and a [Q] query prefix inside",  # 19
    "special tokens [MASK] and [CLS] and [SEP] and [PAD] in text",  # 20
    "numbers 123 4.56 7,890 1e-9 -42 3/4 2024-01-01 0.001% 10^6",   # 21
    "line one\nline two\r\nline three\n\nnew paragraph\tafter tab", # 22 newlines inside
    "The quick brown fox jumps over the lazy dog.",                 # 23
    "x",                                                            # 24 single char
    ".",                                                            # 25 single skiplisted char
    "supercalifragilisticexpialidociousantidisestablishmentarianism",  # 26 long word
    "What is the role of p53 in apoptosis?",                        # 27 query-like
    _para(2),                                                       # 28 > query_length (32) tokens, short document
    _para(5, 1),                                                    # 29 > 128 and < 256 tokens (tiny-modernbert)
    _para(14, 2),                                                   # 30 > document_length tokens for every model
    "  " + _para(3, 3) + "\n",                                       # 31 long query with whitespace around
]

CASES = [
    ("query", True, {}),
    ("query_no_expansion", True, {"do_query_expansion": False}),
    ("query_attend_expansion", True, {"attend_to_expansion_tokens": True}),
    ("document", False, {}),
]


def load(model_dir: str, **kw):
    from pylate import models

    return models.ColBERT(
        model_dir, device="cpu", model_kwargs={"torch_dtype": torch.float32, "attn_implementation": ATTN}, **kw
    )


def keep_mask(model, feats, is_query: bool) -> np.ndarray:
    ids = feats["input_ids"][0].numpy()
    att = feats["attention_mask"][0].numpy().astype(bool)
    if not is_query:
        return att & ~np.isin(ids, np.array(model.skiplist))
    if model.do_query_expansion:
        return np.ones_like(att)
    return att


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__)
        return 2
    model_dir, fixture_dir = argv
    golden = Path(fixture_dir) / "golden"
    golden.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)

    import pylate
    import sentence_transformers
    import tokenizers
    import transformers

    base = load(model_dir)
    dim = int(base[-1].out_features)
    cfg = {
        "query_prefix": base.query_prefix,
        "document_prefix": base.document_prefix,
        "query_prefix_id": int(base.query_prefix_id),
        "document_prefix_id": int(base.document_prefix_id),
        "mask_token_id": int(base.tokenizer.mask_token_id),
        "pad_token_id": int(base.tokenizer.pad_token_id),
        "unk_token_id": None if base.tokenizer.unk_token_id is None else int(base.tokenizer.unk_token_id),
        "cls_token_id": None if base.tokenizer.cls_token_id is None else int(base.tokenizer.cls_token_id),
        "sep_token_id": None if base.tokenizer.sep_token_id is None else int(base.tokenizer.sep_token_id),
        "query_length": int(base.query_length),
        "document_length": int(base.document_length),
        "do_query_expansion": bool(base.do_query_expansion),
        "attend_to_expansion_tokens": bool(base.attend_to_expansion_tokens),
        "do_lower_case": bool(getattr(base[0], "do_lower_case", False)),
        "skiplist_words": list(base.skiplist_words),
        "uses_token_type_ids": "token_type_ids" in base.tokenize(["x"], is_query=False),
        "backbone_class": type(base[0].auto_model).__name__,
    }
    (golden / "texts.json").write_text(json.dumps(TEXTS, ensure_ascii=True, indent=1) + "\n", encoding="utf-8")
    (golden / "skiplist_ids.json").write_text(json.dumps([int(i) for i in base.skiplist]) + "\n")

    manifest = {
        "model": Path(fixture_dir).name,
        "dim": dim,
        "pylate_version": pylate.__version__,
        "versions": {
            "pylate": pylate.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "torch": torch.__version__,
        },
        "device": "cpu",
        "dtype": "float32",
        "attn_implementation": ATTN,
        "texts_file": "texts.json",
        "skiplist_file": "skiplist_ids.json",
        "embeddings_format": "raw little-endian float32, rows of all texts concatenated in text order, row-major, dim floats per row",
        "config": cfg,
        "cases": [],
    }

    single_docs = None
    single_queries = None
    for name, is_query, ctor in CASES:
        model = load(model_dir, **ctor)
        rows_all = []
        items = []
        offset = 0
        for text in TEXTS:
            feats = model.tokenize([text], is_query=is_query)
            emb = model.encode([text], is_query=is_query, convert_to_numpy=True)[0]
            emb = np.asarray(emb, dtype=np.float32)
            assert emb.ndim == 2 and emb.shape[1] == dim, emb.shape
            keep = keep_mask(model, feats, is_query)
            assert int(keep.sum()) == emb.shape[0], (name, text, keep.sum(), emb.shape)
            item = {
                "input_ids": feats["input_ids"][0].tolist(),
                "attention_mask": feats["attention_mask"][0].tolist(),
            }
            if "token_type_ids" in feats:
                item["token_type_ids"] = feats["token_type_ids"][0].tolist()
            item["kept_positions"] = [int(i) for i in np.nonzero(keep)[0]]
            item["row_offset"] = offset
            item["rows"] = int(emb.shape[0])
            items.append(item)
            rows_all.append(emb)
            offset += emb.shape[0]
        blob = np.concatenate(rows_all, axis=0).astype("<f4")
        (golden / f"{name}.f32").write_bytes(blob.tobytes())
        manifest["cases"].append(
            {
                "name": name,
                "is_query": is_query,
                "overrides": {
                    "do_query_expansion": bool(model.do_query_expansion),
                    "attend_to_expansion_tokens": bool(model.attend_to_expansion_tokens),
                },
                "constructor_kwargs": ctor,
                "embeddings_file": f"{name}.f32",
                "rows_total": int(blob.shape[0]),
                "items": items,
            }
        )
        if name == "document":
            single_docs = (model, rows_all)
        if name == "query":
            single_queries = (model, rows_all)
        print(f"{manifest['model']}: case {name}: {blob.shape[0]} rows")

    # PyLate batch invariance: one batched encode vs one-by-one.
    bi = {}
    for label, (model, singles), is_query in [("document", single_docs, False), ("query", single_queries, True)]:
        batched = model.encode(TEXTS, is_query=is_query, batch_size=8, convert_to_numpy=True)
        d = 0.0
        for a, b in zip(singles, batched):
            assert a.shape == b.shape, (a.shape, b.shape)
            d = max(d, float(np.abs(a - b).max()))
        bi[label] = {"batch_size": 8, "max_abs_diff_batched_vs_single": d}
    manifest["batch_invariance"] = bi

    # onnxruntime on the exported graphs of this fixture (if present) vs the golden rows.
    onnx_check = {}
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover
        ort = None
    for fname in ["model.onnx", "model_int8.onnx"]:
        path = Path(fixture_dir) / fname
        if ort is None or not path.exists():
            continue
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        in_names = [i.name for i in sess.get_inputs()]
        out_name = sess.get_outputs()[0].name
        res = {}
        for case in manifest["cases"]:
            blob = np.fromfile(golden / case["embeddings_file"], dtype="<f4").reshape(-1, dim)
            worst, min_cos = 0.0, 1.0
            for it in case["items"]:
                feed = {n: np.array([it[n]], dtype=np.int64) for n in in_names}
                out = sess.run([out_name], feed)[0][0][it["kept_positions"]]
                ref = blob[it["row_offset"] : it["row_offset"] + it["rows"]]
                worst = max(worst, float(np.abs(out - ref).max()))
                cos = (out * ref).sum(-1) / (np.linalg.norm(out, axis=-1) * np.linalg.norm(ref, axis=-1))
                min_cos = min(min_cos, float(cos.min()))
            res[case["name"]] = {"max_abs_diff": worst, "min_cosine": min_cos}
        onnx_check[fname] = res
    manifest["onnx_check"] = onnx_check

    (golden / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({"batch_invariance": bi, "onnx_check": onnx_check, "config": {k: v for k, v in cfg.items() if k != "skiplist_words"}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
