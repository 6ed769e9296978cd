#!/usr/bin/env python
"""Build the tiny random-weight PyLate test models under __test__/fixtures/.

Usage:
    python tools/make_fixtures.py [--corpus /work/shared/data/scifact/corpus.jsonl]
                                  [--build-dir tools/.build/fixtures] [--skip-golden]
                                  [--skip-onnx-export-layout]

Everything is deterministic (fixed seeds, pinned library versions in
tools/requirements.txt).  Steps, for each model:

 1. train a tokenizer with the `tokenizers` library on the first --train-docs
    documents ("title text") of the corpus (the corpus itself is NOT copied);
 2. build a random-weight backbone with transformers, save backbone + tokenizer;
 3. `pylate.models.ColBERT(backbone_dir, embedding_size=..., query_length=...,
    document_length=...)` -> PyLate adds "[Q] "/"[D] " and a random Dense layer;
    `model.save(build_dir/<name>)`  (this folder keeps the weights, git-ignored);
 4. reload the saved folder with PyLate and check the config round-trips;
 5. export it with tools/export_onnx.py into __test__/fixtures/<name>/
    (config files + model.onnx + model_int8.onnx + onnx_export.json, no safetensors);
 6. golden outputs with tools/make_golden.py into __test__/fixtures/<name>/golden/.

Models:
  tiny-modernbert  ModernBERT (hidden 64, 3 layers: layer 0 global, 1-2 local with
                   local_attention=128), trained byte-level BPE (add_prefix_space=False,
                   NFC), Dense 64->32 no bias, query_length 32, document_length 256.
  tiny-bert        BERT (hidden 64, 2 layers, type_vocab_size 2), CASED WordPiece
                   (vocabulary built deterministically from corpus counts, see
                   train_cased_wordpiece), Dense 64->24 WITH bias, query_length 24,
                   document_length 64, sentence_bert_config do_lower_case=true.
                   "~" is removed from its tokenizer training text on purpose, so the
                   skiplist word "~" is out of vocabulary and PyLate maps it to the
                   [UNK] id (documents then drop [UNK] tokens).

Also writes __test__/fixtures/tiny-modernbert-onnx-export/ (the pylate-onnx-export
layout: model.onnx, tokenizer.json, onnx_config.json), see --poe-python.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TOOLS = REPO / "tools"
sys.path.insert(0, str(TOOLS))

FP32 = {"torch_dtype": torch.float32, "attn_implementation": "sdpa"}


# Hand-written lines added to tiny-bert's tokenizer training data (x5, so min_frequency
# is met): lowercase Greek with medial/final sigma, Turkish dotted/dotless i as Python's
# str.lower() produces them ("İ".lower() == "i\u0307"), accents, so that do_lower_case
# differences (final sigma, İ) show up as different token ids instead of [UNK].
BERT_SUPPLEMENT = [
    "οδος σοφος οδοσ σοφοσ ο δρομος της σοφιας ειναι μακρυς και οι σοφοι το ξερουν",
    "i\u0307stanbul ıgdır diyarbakır istanbul ırmak ılık iğne i\u0307zmir",
    "café naïve résumé façade zoë ångström straße über",
]


def read_corpus(path: Path, n: int, drop_chars: str = "") -> list[str]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            t = (d.get("title", "") + " " + d.get("text", "")).strip()
            for c in drop_chars:
                t = t.replace(c, " ")
            out.append(t)
            if len(out) >= n:
                break
    return out


# --------------------------------------------------------------------------- tokenizers
def train_bytelevel_bpe(texts: list[str], vocab_size: int):
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    specials = [
        AddedToken("[UNK]", normalized=False, special=True),
        AddedToken("[CLS]", normalized=False, special=True),
        AddedToken("[SEP]", normalized=False, special=True),
        AddedToken("[PAD]", normalized=False, special=True),
        # ModernBERT's [MASK] has lstrip=True
        AddedToken("[MASK]", lstrip=True, normalized=False, special=True),
    ]
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:0 [SEP]:0",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.no_truncation()
    tok.no_padding()
    return tok


def train_cased_wordpiece(texts: list[str], vocab_size: int):
    """Deterministic cased WordPiece vocabulary.

    tokenizers' WordPieceTrainer is NOT reproducible run to run (the "##x" continuation
    tokens are assigned ids in HashMap order, which also changes merge tie-breaking), so
    the vocabulary is built here from sorted frequency counts instead:
      specials, every character and "##"+character seen (sorted by code point), then the
      most frequent word-initial pieces (len 2-6), "##" suffix pieces (len 2-6) and whole
      words, ties broken by the string.  Greedy longest-match WordPiece then never needs
      [UNK] for a word whose characters were all seen.
    """
    from collections import Counter

    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=False)
    pre = pre_tokenizers.BertPreTokenizer()
    words: Counter = Counter()
    for t in texts:
        for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(t)):
            words[w] += 1
    chars = sorted({c for w in words for c in w})
    vocab: list[str] = list(specials) + chars + ["##" + c for c in chars]
    seen = set(vocab)
    prefixes: Counter = Counter()
    suffixes: Counter = Counter()
    for w, n in words.items():
        for k in range(2, min(6, len(w) - 1) + 1):
            prefixes[w[:k]] += n
            suffixes["##" + w[-k:]] += n
    room = vocab_size - len(vocab)

    def top(counter: Counter, k: int) -> list[str]:
        return [x for x, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])) if x not in seen][:k]

    for piece in top(suffixes, room // 5) + top(prefixes, room // 5):
        if piece not in seen:
            vocab.append(piece)
            seen.add(piece)
    for w in top(words, vocab_size - len(vocab)):
        vocab.append(w)
        seen.add(w)
    assert len(vocab) == len(set(vocab)) <= vocab_size

    tok = Tokenizer(models.WordPiece(vocab={t: i for i, t in enumerate(vocab)}, unk_token="[UNK]", continuing_subword_prefix="##", max_input_chars_per_word=100))
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in specials])
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoders.WordPiece(prefix="##")
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.no_truncation()
    tok.no_padding()
    return tok


# --------------------------------------------------------------------------- backbones
def build_modernbert(out: Path, texts: list[str], seed: int) -> None:
    from tokenizers import AddedToken
    from transformers import ModernBertConfig, ModernBertModel, PreTrainedTokenizerFast

    tok = train_bytelevel_bpe(texts, vocab_size=3000)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token=AddedToken("[MASK]", lstrip=True, normalized=False, special=True),
        model_input_names=["input_ids", "attention_mask"],
        model_max_length=512,
        clean_up_tokenization_spaces=False,
    )
    cfg = ModernBertConfig(
        vocab_size=len(hf_tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=512,
        local_attention=128,
        global_attn_every_n_layers=3,  # layer 0 global, layers 1 and 2 local (window 128)
        initializer_range=0.2,  # larger than default so attention is far from uniform
        pad_token_id=hf_tok.pad_token_id,
        bos_token_id=hf_tok.cls_token_id,
        eos_token_id=hf_tok.sep_token_id,
        cls_token_id=hf_tok.cls_token_id,
        sep_token_id=hf_tok.sep_token_id,
        reference_compile=False,
    )
    torch.manual_seed(seed)
    model = ModernBertModel(cfg).eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    hf_tok.save_pretrained(out)


def build_bert(out: Path, texts: list[str], seed: int) -> None:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    tok = train_cased_wordpiece(texts, vocab_size=3000)
    hf_tok = BertTokenizerFast(
        tokenizer_object=tok,
        do_lower_case=False,  # cased tokenizer: BertTokenizerFast would otherwise rewrite the normalizer
        strip_accents=None,
        tokenize_chinese_chars=True,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        model_max_length=512,
        clean_up_tokenization_spaces=False,
    )
    norm = json.loads(hf_tok.backend_tokenizer.to_str())["normalizer"]
    assert norm["lowercase"] is False, norm
    cfg = BertConfig(
        vocab_size=len(hf_tok),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=512,
        type_vocab_size=2,
        initializer_range=0.2,
        pad_token_id=hf_tok.pad_token_id,
    )
    torch.manual_seed(seed)
    model = BertModel(cfg).eval()  # with pooler, so AutoModel loads every weight (pooler is unused)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    hf_tok.save_pretrained(out)


# --------------------------------------------------------------------------- pylate
def make_pylate(backbone: Path, out: Path, seed: int, do_lower_case: bool = False, **ctor) -> None:
    from pylate import models

    torch.manual_seed(seed)
    model = models.ColBERT(str(backbone), device="cpu", model_kwargs={"torch_dtype": torch.float32}, **ctor)
    if do_lower_case:
        model[0].do_lower_case = True  # written to sentence_bert_config.json by save()
    if out.exists():
        shutil.rmtree(out)
    model.save(str(out))
    # round trip: reload exactly as a user would, check the config is honoured
    m2 = models.ColBERT(str(out), device="cpu", model_kwargs=FP32)
    assert m2.query_length == ctor["query_length"], m2.query_length
    assert m2.document_length == ctor["document_length"], m2.document_length
    assert m2[-1].out_features == ctor["embedding_size"]
    assert bool(m2[0].do_lower_case) == do_lower_case, m2[0].do_lower_case
    sbc = json.loads((out / "sentence_bert_config.json").read_text())
    assert sbc["do_lower_case"] == do_lower_case, sbc
    if do_lower_case:
        a = m2.tokenize(["Hello WORLD Über"], is_query=False)["input_ids"].tolist()
        b = m2.tokenize(["hello world über"], is_query=False)["input_ids"].tolist()
        assert a == b, (a, b)
    tj = json.loads((out / "tokenizer.json").read_text())
    print(
        f"{out.name}: query_prefix_id={m2.query_prefix_id} document_prefix_id={m2.document_prefix_id} "
        f"mask={m2.tokenizer.mask_token_id} pad={m2.tokenizer.pad_token_id} skiplist={m2.skiplist} "
        f"tokenizer.json truncation={tj['truncation']} padding={tj['padding']}"
    )


def local_attention_sensitivity(pylate_dir: Path) -> float:
    """How much the sliding window changes outputs for a long document (sanity: must be > 0)."""
    from pylate import models

    m = models.ColBERT(str(pylate_dir), device="cpu", model_kwargs=FP32)
    text = " ".join(["The protein binds to the receptor and activates the downstream pathway."] * 40)
    feats = m.tokenize([text], is_query=False)
    with torch.no_grad():
        a = m.forward({k: v.clone() for k, v in feats.items()})["token_embeddings"]
    # same weights, all layers global
    m[0].auto_model.config.global_attn_every_n_layers = 1
    for layer in m[0].auto_model.layers:
        layer.attn.local_attention = (-1, -1)
    with torch.no_grad():
        b = m.forward({k: v.clone() for k, v in feats.items()})["token_embeddings"]
    a = torch.nn.functional.normalize(a, dim=-1)
    b = torch.nn.functional.normalize(b, dim=-1)
    return float((a - b).abs().max())


# --------------------------------------------------------------------------- pylate-onnx-export layout
ONNX_CONFIG_KEYS = [
    "model_type", "model_name", "model_class", "uses_token_type_ids", "query_prefix",
    "document_prefix", "query_length", "document_length", "do_query_expansion",
    "attend_to_expansion_tokens", "skiplist_words", "embedding_dim", "mask_token_id",
    "pad_token_id", "query_prefix_id", "document_prefix_id", "do_lower_case",
]


def onnx_export_layout(pylate_dir: Path, out: Path, poe_python: str | None) -> dict:
    """Write model.onnx + tokenizer.json + onnx_config.json like pylate-onnx-export."""
    from pylate import models

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    info = {}
    if poe_python:
        # The real tool (pylate-onnx-export 0.1.0 from PyPI) in a throwaway venv.
        tmp_out = pylate_dir.parent / (pylate_dir.name + "-poe")
        if tmp_out.exists():
            shutil.rmtree(tmp_out)
        # pylate-onnx-export 0.1.0 calls torch.onnx.export(..., dynamic_axes=..., opset_version=14)
        # without `dynamo=`.  torch 2.9 switched the default to dynamo=True, under which the
        # tool writes an opset-18 graph with external data whose batch dimension is baked to
        # 1 (batch > 1 fails in onnxruntime).  Run the tool unchanged, but with the exporter
        # default it was written for (dynamo=False, as in torch < 2.9).
        shim = (
            "import sys, torch; _export = torch.onnx.export\n"
            "def export(*a, **k):\n"
            "    k.setdefault('dynamo', False)\n"
            "    return _export(*a, **k)\n"
            "torch.onnx.export = export\n"
            "from colbert_export.cli import main\n"
            "sys.argv = ['pylate-onnx-export'] + sys.argv[1:]\n"
            "main()\n"
        )
        cmd = [poe_python, "-c", shim, pylate_dir.name, "-o", str(tmp_out), "--force"]
        r = subprocess.run(cmd, cwd=pylate_dir.parent, capture_output=True, text=True)
        print(r.stdout[-3000:], r.stderr[-3000:])
        if r.returncode != 0:
            raise SystemExit("pylate-onnx-export failed")
        ver = subprocess.run([poe_python, "-c", "import importlib.metadata as m; print(m.version('pylate-onnx-export'))"], capture_output=True, text=True).stdout.strip()
        info["tool"] = (
            f"pylate-onnx-export=={ver} (PyPI), run as `pylate-onnx-export {pylate_dir.name} -o <dir> --force` "
            "with torch.onnx.export defaulting to dynamo=False (torch < 2.9 behaviour)"
        )
        cfg = json.loads((tmp_out / "config_sentence_transformers.json").read_text())
        # torch 2.9's default (dynamo) exporter writes the weights as external data
        # (model.onnx.data next to model.onnx); keep exactly what the tool produced.
        for f in ["model.onnx", "model.onnx.data", "tokenizer.json"]:
            if (tmp_out / f).exists():
                shutil.copyfile(tmp_out / f, out / f)
        info["tool_wrote"] = sorted(p.name for p in tmp_out.iterdir())
    else:
        raise SystemExit("--poe-python is required for the onnx-export layout")
    # pylate-onnx-export 0.1.0 names this file config_sentence_transformers.json and has
    # no do_lower_case; later versions (next-plaid >= 1.x) write onnx_config.json with
    # do_lower_case = getattr(model[0], "do_lower_case", False).  Write the later format.
    m = models.ColBERT(str(pylate_dir), device="cpu", model_kwargs=FP32, do_query_expansion=False)
    cfg["do_lower_case"] = bool(getattr(m[0], "do_lower_case", False))
    missing = [k for k in ONNX_CONFIG_KEYS if k not in cfg]
    assert not missing, missing
    cfg = {k: cfg[k] for k in ONNX_CONFIG_KEYS}
    (out / "onnx_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    info["onnx_config"] = cfg
    info["files"] = sorted(p.name for p in out.iterdir())
    info["graph_check"] = check_tool_graph(out / "model.onnx", str(pylate_dir))
    return info


def check_tool_graph(onnx_path: Path, pylate_dir: str) -> dict:
    """The tool's graph vs PyLate torch (+normalize, all positions) at several batch/lengths."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from pylate import models

    import export_onnx

    proto = onnx.load(str(onnx_path), load_external_data=False)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    m = models.ColBERT(pylate_dir, device="cpu", model_kwargs=FP32)
    res = {
        "opset": [{"domain": o.domain, "version": o.version} for o in proto.opset_import],
        "inputs": [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]) for i in proto.graph.input],
        "outputs": [(o.name, [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]) for o in proto.graph.output],
        "cases": [],
    }
    out_name = sess.get_outputs()[0].name
    for label, feats in export_onnx.verification_batches(m, 512):
        with torch.no_grad():
            ref = torch.nn.functional.normalize(m.forward({k: v.clone() for k, v in feats.items()})["token_embeddings"], dim=-1).numpy()
        try:
            got = sess.run([out_name], {i.name: feats[i.name].numpy() for i in sess.get_inputs()})[0]
            res["cases"].append({"case": label, "shape": list(ref.shape), "max_abs_diff": float(np.abs(got - ref).max())})
        except Exception as e:  # a static dimension would show up here
            res["cases"].append({"case": label, "shape": list(ref.shape), "error": str(e)[:300]})
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="/work/shared/data/scifact/corpus.jsonl")
    ap.add_argument("--train-docs", type=int, default=2000)
    ap.add_argument("--build-dir", default=str(TOOLS / ".build" / "fixtures"))
    ap.add_argument("--fixtures-dir", default=str(REPO / "__test__" / "fixtures"))
    ap.add_argument("--poe-python", default=os.environ.get("POE_PYTHON"), help="python of a throwaway venv where pylate-onnx-export==0.1.0 is importable")
    ap.add_argument("--skip-golden", action="store_true")
    ap.add_argument("--skip-onnx-export-layout", action="store_true")
    args = ap.parse_args()

    import export_onnx

    build = Path(args.build_dir)
    fixtures = Path(args.fixtures_dir)
    build.mkdir(parents=True, exist_ok=True)

    # ---- tiny-modernbert
    texts = read_corpus(Path(args.corpus), args.train_docs)
    build_modernbert(build / "backbone-modernbert", texts, seed=1234)
    make_pylate(build / "backbone-modernbert", build / "tiny-modernbert", seed=42,
                embedding_size=32, query_length=32, document_length=256)
    print("tiny-modernbert: max |delta| local-vs-global attention on a long doc:",
          local_attention_sensitivity(build / "tiny-modernbert"))

    # ---- tiny-bert
    texts = read_corpus(Path(args.corpus), args.train_docs, drop_chars="~") + BERT_SUPPLEMENT * 5
    build_bert(build / "backbone-bert", texts, seed=4321)
    make_pylate(build / "backbone-bert", build / "tiny-bert", seed=24, do_lower_case=True,
                embedding_size=24, bias=True, query_length=24, document_length=64)

    for name in ["tiny-modernbert", "tiny-bert"]:
        dst = fixtures / name
        if dst.exists():
            shutil.rmtree(dst)
        rc = export_onnx.main([str(build / name), str(dst)])
        if rc != 0:
            return rc

    if not args.skip_onnx_export_layout:
        info = onnx_export_layout(build / "tiny-modernbert", fixtures / "tiny-modernbert-onnx-export", args.poe_python)
        print(json.dumps(info, indent=2))
        (build / "tiny-modernbert-onnx-export.info.json").write_text(json.dumps(info, indent=2) + "\n")

    if not args.skip_golden:
        import make_golden

        for name in ["tiny-modernbert", "tiny-bert"]:
            rc = make_golden.main([str(build / name), str(fixtures / name)])
            if rc != 0:
                return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
