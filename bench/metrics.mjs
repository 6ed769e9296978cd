// Retrieval metrics shared by the benchmark scripts: recall@k against a reference ranking and
// nDCG@10 against BEIR qrels (binary or graded gains, as trec_eval's ndcg_cut).
import fs from 'node:fs'
import path from 'node:path'

export function readQrels(dataDir) {
  const qrels = new Map()
  const lines = fs.readFileSync(path.join(dataDir, 'qrels.tsv'), 'utf8').trim().split('\n')
  for (const line of lines.slice(1)) {
    const [q, d, s] = line.split('\t')
    if (Number(s) <= 0) continue
    if (!qrels.has(q)) qrels.set(q, new Map())
    qrels.get(q).set(d, Number(s))
  }
  return qrels
}

/** Mean over queries of |top-k ∩ reference top-k| / k. */
export function recallAgainst(results, reference, k = 10) {
  let total = 0
  results.forEach((hits, qi) => {
    const want = new Set(reference[qi].slice(0, k).map(([id]) => id))
    total += hits.slice(0, k).filter((h) => want.has(h)).length / k
  })
  return total / results.length
}

/** Mean nDCG@k over queries that have judgements. `results[qi]` is a ranked list of doc ids. */
export function ndcg(results, queryIds, qrels, k = 10) {
  let total = 0
  let n = 0
  results.forEach((hits, qi) => {
    const rel = qrels.get(queryIds[qi])
    if (!rel) return
    let dcg = 0
    hits.slice(0, k).forEach((id, i) => (dcg += (rel.get(id) ?? 0) / Math.log2(i + 2)))
    const ideal = [...rel.values()].sort((a, b) => b - a).slice(0, k)
    let idcg = 0
    ideal.forEach((g, i) => (idcg += g / Math.log2(i + 2)))
    total += idcg > 0 ? dcg / idcg : 0
    n++
  })
  return total / n
}
