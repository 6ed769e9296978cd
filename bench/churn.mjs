// Updates on an existing index built by bench/scale.mjs (ids doc-0 … doc-<N-1>): open + first
// query and single-query latency; then, each as one transaction (one call), delete 1,000
// documents, add 1,000, replace 1,000 (upsert: `add(…, { replace: true })`); then 200
// one-document adds (segment merging keeps the segment count logarithmic); then latency again;
// then `compact()` (one segment, deleted documents dropped, no retraining).
// The index is modified: run it on a copy you can throw away.
// Usage: node bench/churn.mjs <dir> [--tokens 8-24] [--ops 1000] [--singles 200] [--drift 1]
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

import { generator, latencies } from './synthetic.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { PlaidIndex, threadBudget } = createRequire(import.meta.url)(path.join(root, 'dist', 'index.js'))
const dir = process.argv[2]
if (!dir) throw new Error('usage: node bench/churn.mjs <index dir> [--tokens 8-24] [--ops 1000] [--singles 200]')
const args = Object.fromEntries(process.argv.slice(3).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []))
const [minTokens, maxTokens] = (args.tokens ?? '30-70').split('-').map(Number)
const ops = Number(args.ops ?? 1000)
const singles = Number(args.singles ?? 200)
// Same word vectors as the index (scale.mjs's default seed), other documents; `--drift` draws
// the new documents from other word vectors instead (a collection that moved away).
const gen = args.drift !== undefined ? generator({ seed: 777, minTokens, maxTokens }) : generator({ streamSeed: 777, minTokens, maxTokens })
const queries = gen.queries(51)

const timed = async (f) => {
  const t = performance.now()
  const r = await f()
  return [performance.now() - t, r]
}
const round = (x) => Math.round(x * 10) / 10

let t = performance.now()
const index = await PlaidIndex.open(dir)
await index.search(queries[0], { k: 10 })
const openFirstMs = performance.now() - t
const n = index.info.documents
const before = await latencies(queries.slice(1), (q) => index.search(q, { k: 10 }))

// Distinct random documents, split between the delete and the replace.
const picked = new Set()
while (picked.size < 2 * ops) picked.add(`doc-${Math.floor(gen.rand() * n)}`)
const victims = [...picked].slice(0, ops)
const replaced = [...picked].slice(ops)

const [deleteMs, deleted] = await timed(() => index.delete(victims))
const fresh = gen.batch(0, ops, 'new-')
const [addMs] = await timed(() => index.add(fresh.ids, fresh.embeddings))
const again = gen.batch(0, ops)
const [replaceMs, rep] = await timed(() => index.add(replaced, again.embeddings, { replace: true }))
const singleMs = []
let merges = 0
let mostSegments = index.info.segments
for (let i = 0; i < singles; i++) {
  const one = gen.batch(i, 1, 'single-')
  const [ms, r] = await timed(() => index.add(one.ids, one.embeddings))
  singleMs.push(ms)
  merges += r.mergedSegments > 0 ? 1 : 0
  mostSegments = Math.max(mostSegments, index.info.segments)
}
singleMs.sort((a, b) => a - b)
const after = await latencies(queries.slice(1), (q) => index.search(q, { k: 10 }))
const deletedBefore = index.info.deleted
const [compactMs, compacted] = await timed(() => index.compact())
const afterCompact = await latencies(queries.slice(1), (q) => index.search(q, { k: 10 }))
const info = index.info
await index.close()

console.log(JSON.stringify({
  documents_before: n, threads: threadBudget(), open_first_query_ms: round(openFirstMs),
  search_before: { p50_ms: round(before.p50_ms), p95_ms: round(before.p95_ms) },
  delete: { documents: deleted, ms: round(deleteMs) },
  add: { documents: ops, ms: round(addMs) },
  replace: { documents: rep.replaced, ms: round(replaceMs) },
  single_adds: { count: singles, p50_ms: round(singleMs[Math.floor(singles / 2)]), max_ms: round(singleMs[singles - 1]), merging_adds: merges, most_segments: mostSegments },
  search_after: { p50_ms: round(after.p50_ms), p95_ms: round(after.p95_ms) },
  deleted_before_compact: deletedBefore,
  compact: { reclaimed: compacted.reclaimed, segments: compacted.mergedSegments, ms: round(compactMs) },
  search_after_compact: { p50_ms: round(afterCompact.p50_ms), p95_ms: round(afterCompact.p95_ms) },
  documents_after: info.documents, deleted_after: info.deleted, segments_after: info.segments, drift: info.drift,
}))
