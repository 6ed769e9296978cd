// Summarises a run-plaid.sh result: build, size, memory and, per search setting, QPS, latency,
// recall@10 against exact MaxSim and nDCG@10 against the qrels (with exhaustive MaxSim's nDCG).
import fs from 'node:fs'
import path from 'node:path'
import { ndcg, readQrels } from './metrics.mjs'

const [file, dump, data] = process.argv.slice(2)
const rows = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
const meta = JSON.parse(fs.readFileSync(path.join(dump, 'meta.json'), 'utf8'))
const qrels = readQrels(data)
const exact = JSON.parse(fs.readFileSync(path.join(dump, 'exact_top100.json'), 'utf8')).top.map((r) => r.map(([id]) => id))
console.log(`exhaustive MaxSim nDCG@10: ${ndcg(exact, meta.queries, qrels).toFixed(4)}`)
for (const r of rows.filter((r) => r.phase === 'build')) {
  console.log(`${r.engine} build: ${r.seconds.toFixed(1)} s, peak RSS ${r.peak_rss_mb.toFixed(0)} MB (before build ${r.rss_before_build_mb.toFixed(0)} MB), ${(r.index_bytes / 1e6).toFixed(1)} MB = ${r.bytes_per_token.toFixed(1)} bytes/token`)
}
for (const r of rows.filter((r) => r.phase === 'search')) {
  const setting = r.setting ?? `${r.n_ivf_probe}:${r.n_full_scores}`
  console.log(`${r.engine} search ${setting}: ${r.qps.toFixed(1)} QPS, p50 ${r.p50_ms.toFixed(1)} ms, p95 ${r.p95_ms.toFixed(1)} ms, recall@10 ${r.recall_at_10.toFixed(4)}, nDCG@10 ${ndcg(r.ranked, meta.queries, qrels).toFixed(4)}, open+first query ${r.open_first_query_ms.toFixed(0)} ms`)
}
