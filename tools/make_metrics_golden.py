#!/usr/bin/env python
"""Golden retrieval metrics for `computeMetrics` (src/evaluate/metrics.ts), from the reference code itself.

Usage:
    tools/.venv/bin/python tools/make_metrics_golden.py [--out __test__/fixtures/metrics/golden.json]

Builds a few deterministic ranking/qrels cases and computes, for each:
- accuracy@k, precision@k, recall@k, MRR@k, MAP@k and binary nDCG@k with PyLate's evaluator,
  `pylate.evaluation.PyLateInformationRetrievalEvaluator.compute_metrics` (sentence-transformers'
  `InformationRetrievalEvaluator.compute_metrics`, inherited unchanged), called directly on the
  rankings. Its relevant set per query is the qrels documents whose grade is >= the case's
  relevance threshold (1 unless stated), which is how `computeMetrics` reads qrels;
- graded nDCG@k with trec_eval's `ndcg_cut.k` through `pytrec_eval` (pytrec-eval-terrier): the
  per-query values, averaged over the same queries (those with a relevant document; a query that
  is missing from the run counts 0). trec_eval re-sorts tied scores by document id, so the run
  handed to it scores each document by its position after sentence-transformers' stable sort by
  score; both tools then see the same order.

The output (inputs and expected values) is committed; tests never run Python.
"""
from __future__ import annotations

import argparse
import json
import os
import random
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytrec_eval  # noqa: E402
from pylate.evaluation import PyLateInformationRetrievalEvaluator  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "__test__" / "fixtures" / "metrics" / "golden.json"

DEFAULT_KS = {
    "accuracyAtK": [1, 3, 5, 10],
    "precisionRecallAtK": [1, 3, 5, 10],
    "mrrAtK": [10],
    "ndcgAtK": [10],
    "mapAtK": [100],
}


def reference_metrics(case: dict) -> tuple[dict, str]:
    """Expected metrics of one case, and which reference code produced its nDCG values."""
    opts = {**DEFAULT_KS, **case.get("options", {})}
    threshold = opts.get("relevanceThreshold", 1)
    qrels: dict[str, dict[str, int]] = case["qrels"]
    rankings: dict[str, list[list]] = case["rankings"]
    graded = opts.get("gradedNdcg")
    if graded is None:
        graded = any(g > 1 for judged in qrels.values() for g in judged.values())

    relevant = {q: {d for d, g in judged.items() if g >= threshold} for q, judged in qrels.items()}
    queries = {q: f"query {q}" for q in qrels}
    corpus_ids = case.get("corpus") or sorted({d for hits in rankings.values() for d, _ in hits})
    evaluator = PyLateInformationRetrievalEvaluator(
        queries=queries,
        corpus={d: f"document {d}" for d in corpus_ids},
        relevant_docs=relevant,
        accuracy_at_k=opts["accuracyAtK"],
        precision_recall_at_k=opts["precisionRecallAtK"],
        mrr_at_k=opts["mrrAtK"],
        ndcg_at_k=opts["ndcgAtK"],
        map_at_k=opts["mapAtK"],
        write_csv=False,
    )
    result_list = [
        [{"corpus_id": d, "score": float(s)} for d, s in rankings.get(q, [])] for q in evaluator.queries_ids
    ]
    st = evaluator.compute_metrics(result_list)

    expected: dict[str, float] = {}
    source = "sentence-transformers compute_metrics (binary)"
    for family, key in [("accuracy", "accuracy@k"), ("precision", "precision@k"), ("recall", "recall@k"),
                        ("ndcg", "ndcg@k"), ("mrr", "mrr@k"), ("map", "map@k")]:
        for k, value in st[key].items():
            expected[f"{family}@{k}"] = float(value)

    if graded:
        measures = {f"ndcg_cut.{k}" for k in opts["ndcgAtK"]}
        trec_qrels = {q: {d: int(g) for d, g in judged.items()} for q, judged in qrels.items() if judged}
        run = {}
        for q in evaluator.queries_ids:
            ordered = sorted(rankings.get(q, []), key=lambda h: h[1], reverse=True)  # as compute_metrics
            run[q] = {d: float(len(ordered) - i) for i, (d, _) in enumerate(ordered)}
        per_query = pytrec_eval.RelevanceEvaluator(trec_qrels, measures).evaluate(run)
        for k in opts["ndcgAtK"]:
            values = [per_query.get(q, {}).get(f"ndcg_cut_{k}", 0.0) for q in evaluator.queries_ids]
            expected[f"ndcg@{k}"] = sum(values) / len(values)
        source = "pytrec_eval ndcg_cut (graded), mean over the evaluated queries"
    return expected, source


def hand_cases() -> list[dict]:
    return [
        {
            "name": "basic",
            "description": "two queries, binary qrels, default cutoffs",
            "qrels": {"q1": {"d1": 1, "d3": 1}, "q2": {"d9": 1}},
            "rankings": {
                "q1": [["d3", 0.9], ["d2", 0.8], ["d1", 0.7], ["d4", 0.6]],
                "q2": [["d5", 0.5], ["d6", 0.4], ["d7", 0.3], ["d8", 0.2], ["d9", 0.1]],
            },
        },
        {
            "name": "ties",
            "description": "equal scores: the given order among ties is kept (stable sort)",
            "qrels": {"q1": {"b": 1}, "q2": {"a": 1, "c": 1}},
            "rankings": {
                "q1": [["a", 1.0], ["b", 1.0], ["c", 1.0], ["d", 0.5]],
                "q2": [["b", 2.0], ["c", 2.0], ["a", 2.0], ["d", 2.0], ["e", 1.0]],
            },
            "options": {"accuracyAtK": [1, 2, 3], "precisionRecallAtK": [1, 2, 3], "mrrAtK": [1, 10], "ndcgAtK": [1, 2, 10]},
        },
        {
            "name": "unsorted-input",
            "description": "rankings not sorted by score are sorted first, as compute_metrics does",
            "qrels": {"q1": {"x": 1, "y": 1}},
            "rankings": {"q1": [["z", 0.1], ["y", 0.7], ["w", 0.3], ["x", 0.2], ["v", 0.7]]},
            "options": {"accuracyAtK": [1, 2], "precisionRecallAtK": [1, 3, 5], "ndcgAtK": [2, 5], "mapAtK": [3, 100]},
        },
        {
            "name": "missing-relevant",
            "description": "relevant docs absent from the ranking, an empty ranking, a query absent from the "
            "rankings, a query whose only judgement is grade 0 (not evaluated) and a ranking of an unjudged query",
            "qrels": {
                "q1": {"r1": 1, "r2": 1},
                "q2": {"r3": 1},
                "q3": {"r4": 1, "r5": 1},
                "q4": {"n1": 0},
                "q5": {"r6": 1, "n2": 0},
            },
            "rankings": {
                "q1": [["a", 3.0], ["b", 2.0], ["c", 1.0]],
                "q2": [],
                "q4": [["n1", 1.0]],
                "q5": [["n2", 2.0], ["r6", 1.0]],
                "q9": [["r1", 1.0]],
            },
        },
        {
            "name": "qrels-outside-corpus",
            "description": "judged documents missing from the corpus still count in recall and MAP denominators",
            "corpus": ["d1", "d2", "d3", "d4", "d5"],
            "qrels": {"q1": {"d1": 1, "gone1": 1, "gone2": 1}, "q2": {"d2": 1, "d4": 1, "gone3": 1}},
            "rankings": {
                "q1": [["d1", 0.9], ["d2", 0.8], ["d3", 0.7], ["d4", 0.6], ["d5", 0.5]],
                "q2": [["d4", 0.9], ["d1", 0.8], ["d2", 0.7], ["d3", 0.6], ["d5", 0.5]],
            },
            "options": {"mapAtK": [2, 100], "ndcgAtK": [3, 10]},
        },
        {
            "name": "k-beyond-ranking",
            "description": "cutoffs larger than the ranking (3 documents)",
            "qrels": {"q1": {"a": 1, "c": 1, "x": 1, "y": 1}, "q2": {"b": 1}},
            "rankings": {"q1": [["a", 3.0], ["b", 2.0], ["c", 1.0]], "q2": [["a", 3.0], ["b", 2.0], ["c", 1.0]]},
            "options": {
                "accuracyAtK": [1, 50],
                "precisionRecallAtK": [2, 50, 1000],
                "mrrAtK": [1, 100],
                "ndcgAtK": [2, 10, 100],
                "mapAtK": [1, 2, 100, 1000],
            },
        },
        {
            "name": "graded",
            "description": "grades 0/1/2/3 and -1: binary metrics count grade > 0, nDCG is trec_eval's ndcg_cut",
            "qrels": {
                "q1": {"a": 3, "b": 2, "c": 1, "d": 0, "e": 2, "f": -1},
                "q2": {"g": 1, "h": 3, "i": 0},
                "q3": {"j": 2},
            },
            "rankings": {
                "q1": [["d", 0.99], ["b", 0.98], ["f", 0.97], ["zz", 0.96], ["a", 0.95], ["c", 0.94]],
                "q2": [["g", 5.0], ["i", 4.0], ["h", 3.0]],
                "q3": [["k", 1.0], ["l", 0.9], ["m", 0.8]],
            },
            "options": {"ndcgAtK": [1, 3, 5, 10, 100]},
        },
        {
            "name": "graded-threshold-2",
            "description": "TREC DL practice: grade >= 2 is relevant for the binary metrics; q3 (grades <= 1) is not evaluated",
            "qrels": {
                "q1": {"a": 3, "b": 2, "c": 1, "d": 0},
                "q2": {"e": 2, "f": 1},
                "q3": {"g": 1, "h": 0},
            },
            "rankings": {
                "q1": [["c", 4.0], ["a", 3.0], ["d", 2.0], ["b", 1.0]],
                "q2": [["f", 2.0], ["x", 1.5], ["e", 1.0]],
                "q3": [["g", 1.0]],
            },
            "options": {"relevanceThreshold": 2, "ndcgAtK": [3, 10]},
        },
        {
            "name": "graded-as-binary",
            "description": "gradedNdcg: false on graded qrels gives sentence-transformers' binary nDCG",
            "qrels": {"q1": {"a": 3, "b": 1, "c": 0}, "q2": {"d": 2}},
            "rankings": {"q1": [["b", 3.0], ["c", 2.0], ["a", 1.0]], "q2": [["x", 2.0], ["d", 1.0]]},
            "options": {"gradedNdcg": False, "ndcgAtK": [1, 2, 10]},
        },
    ]


def random_case(name: str, seed: int, graded: bool) -> dict:
    """Queries with 0-120 hits from 400 documents; scores on a 0.01 grid, so ties are common."""
    rng = random.Random(seed)
    docs = [f"doc{i}" for i in range(400)]
    qrels: dict[str, dict[str, int]] = {}
    rankings: dict[str, list] = {}
    for qi in range(24):
        q = f"q{qi}"
        judged = rng.sample(docs, rng.randint(1, 12))
        grades = {d: (rng.choice([0, 1, 1, 2, 3]) if graded else 1) for d in judged}
        if rng.random() < 0.15:
            grades[f"missing{qi}"] = rng.choice([1, 2]) if graded else 1  # judged, not in the corpus
        qrels[q] = grades
        if rng.random() < 0.08:
            continue  # no ranking at all
        pool = sorted(set(judged[: rng.randint(0, len(judged))]) | set(rng.sample(docs, 120)))  # no hash order
        rng.shuffle(pool)
        # judged documents tend to score higher, so the metrics are not all near 0
        hits = [[d, round(rng.random() ** (0.25 if d in grades else 1), 2)] for d in pool[: rng.randint(0, 120)]]
        hits.sort(key=lambda h: h[1], reverse=True)
        rankings[q] = hits
    options = {"ndcgAtK": [5, 10, 100], "mapAtK": [10, 100]}
    return {
        "name": name,
        "description": f"seeded random ({'graded 0-3' if graded else 'binary'}), ties on a 0.01 score grid",
        "corpus": docs,
        "qrels": qrels,
        "rankings": rankings,
        "options": options,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args()

    cases = hand_cases() + [random_case("random-binary", 7, False), random_case("random-graded", 11, True)]
    out_cases = []
    for case in cases:
        expected, source = reference_metrics(case)
        out_cases.append(
            {
                "name": case["name"],
                "description": case["description"],
                "options": case.get("options", {}),
                "qrels": case["qrels"],
                "rankings": case["rankings"],
                "expected": expected,
                "ndcg_source": source,
            }
        )
        print(f"{case['name']}: {len(expected)} metrics")

    golden = {
        "generator": "tools/make_metrics_golden.py",
        "versions": {
            "pylate": version("pylate"),
            "sentence-transformers": version("sentence-transformers"),
            "pytrec-eval-terrier": version("pytrec-eval-terrier"),
        },
        "note": "rankings: query id -> [document id, score] in the order given to computeMetrics; "
        "options: computeMetrics options (omitted cutoffs are the defaults); every expected value "
        "except graded nDCG comes from PyLateInformationRetrievalEvaluator.compute_metrics",
        "cases": out_cases,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Compact, one case per line: small and still diffable.
    head = {k: v for k, v in golden.items() if k != "cases"}
    lines = [json.dumps(c, separators=(",", ":")) for c in out_cases]
    text = json.dumps(head, indent=1)[:-2] + ',\n "cases": [\n' + ",\n".join(lines) + "\n ]\n}\n"
    json.loads(text)
    out.write_text(text)
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
