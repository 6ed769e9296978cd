// Summarises bench/run-frontier.sh: one Markdown table per collection, rows by engine, nbits and
// pool factor. Bytes per token are over the ORIGINAL (unpooled) document tokens; recall@10 is
// against exact MaxSim on the unpooled embeddings; nDCG@10 against the qrels, beside exhaustive
// MaxSim's on the unpooled embeddings. fast-plaid's size is given with and without the merged_*
// copies of its codes and residuals.
//   node bench/summarize-frontier.mjs bench/out/frontier.jsonl [../shared/data]
import fs from 'node:fs'
import path from 'node:path'
import { ndcg, readQrels } from './metrics.mjs'

const [file, dataRoot = '../shared/data'] = process.argv.slice(2)
const rows = fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
const mb = (b) => (b / 1e6).toFixed(1)
for (const collection of [...new Set(rows.map((r) => r.collection))]) {
  const dump = path.join('bench', 'out', collection)
  const meta = JSON.parse(fs.readFileSync(path.join(dump, 'meta.json'), 'utf8'))
  const qrels = readQrels(path.join(dataRoot, collection))
  const exact = JSON.parse(fs.readFileSync(path.join(dump, 'exact_top100.json'), 'utf8')).top.map((r) => r.map(([id]) => id))
  const tokens = meta.tokens
  console.log(`\n### ${collection}: ${meta.documents.length} documents, ${tokens} tokens, ${meta.queries.length} queries; exhaustive MaxSim (unpooled) nDCG@10 ${ndcg(exact, meta.queries, qrels).toFixed(4)}\n`)
  console.log('| engine | nbits | pool | tokens kept | B/token (of original tokens) | index size | build | nDCG@10 | recall@10 vs exact | batch QPS | p50 |')
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  const runs = rows.filter((r) => r.collection === collection)
  const keys = [...new Set(runs.map((r) => `${r.engine}|${r.nbits}|${r.pool_factor}`))]
  for (const key of keys) {
    const [engine, nbits, pool] = key.split('|')
    const of = (phase) => runs.find((r) => `${r.engine}|${r.nbits}|${r.pool_factor}` === key && r.phase === phase)
    const build = of('build')
    const search = of('search')
    const size = of('size')
    if (!build) continue
    let bytes = `${(build.index_bytes / tokens).toFixed(1)}`
    let folder = `${mb(build.index_bytes)} MB`
    if (size) {
      bytes = `${(size.index_bytes_without_copies / tokens).toFixed(1)} (folder ${(size.index_bytes / tokens).toFixed(1)})`
      folder = `${mb(size.index_bytes_without_copies)} MB (folder ${mb(size.index_bytes)})`
    }
    const s = search
      ? [
          ndcg(search.ranked, meta.queries, qrels).toFixed(4),
          search.recall_at_10.toFixed(4),
          search.qps.toFixed(1),
          `${search.p50_ms.toFixed(1)} ms`,
        ]
      : ['—', '—', '—', '—']
    console.log(`| ${engine}${search?.setting ? '' : search ? ` ${search.n_ivf_probe}:${search.n_full_scores}` : ''} | ${nbits} | ${pool} | ${(build.tokens / tokens).toFixed(3)} | ${bytes} | ${folder} | ${build.seconds.toFixed(0)} s | ${s.join(' | ')} |`)
  }
}
