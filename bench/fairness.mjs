// Search latency while the same process does bulk work: one query at a time against a PLAID
// index, measured idle, then during a `rebuild` of that index, during a large `add` to it and
// during a bulk `encode`, plus the throughput of concurrent searches. Prints one table and
// writes it as JSON.
//
//   node bench/fairness.mjs [--docs 20000] [--add 5000] [--encode 400] [--dir bench/out/fairness-index]
//                           [--out bench/out/fairness.json]
//
// Synthetic embeddings (bench/synthetic.mjs, 8–24 tokens per document, 32-token queries); the
// encode case uses the bundled stand-in model on the README's text repeated. The folder given
// by --dir is removed and rebuilt only if it is a previous run's index.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { generator } from './synthetic.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { ColBERT, PlaidIndex, threadBudget } = await import(path.join(root, 'dist', 'index.js'))

const { values } = parseArgs({
  options: {
    docs: { type: 'string', default: '20000' },
    add: { type: 'string', default: '5000' },
    encode: { type: 'string', default: '400' },
    dir: { type: 'string', default: path.join(root, 'bench', 'out', 'fairness-index') },
    out: { type: 'string', default: path.join(root, 'bench', 'out', 'fairness.json') },
  },
})

const dir = path.resolve(values.dir)
if (fs.existsSync(dir)) {
  if (!fs.existsSync(path.join(dir, 'MANIFEST'))) throw new Error(`${dir} exists and is not an index: choose another --dir`)
  fs.rmSync(dir, { recursive: true })
}
fs.mkdirSync(path.dirname(dir), { recursive: true })

const gen = generator({ seed: 11, minTokens: 8, maxTokens: 24 })
const n = Number(values.docs)
const index = await PlaidIndex.create(dir)
let t = performance.now()
for (let start = 0; start < n; start += 5000) {
  const b = gen.batch(start, Math.min(5000, n - start))
  await index.add(b.ids, b.embeddings)
}
console.error(`built ${n} documents in ${((performance.now() - t) / 1000).toFixed(1)} s`)
const queries = gen.queries(64)

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
const summary = (ms) => {
  const s = [...ms].sort((a, b) => a - b)
  return { searches: s.length, p50: +pct(s, 50).toFixed(2), p99: +pct(s, 99).toFixed(2), max: +s.at(-1).toFixed(2) }
}

/** One search at a time until `done()` (and at least `min` searches); latencies in ms. */
async function searchWhile(done, min = 0) {
  const ms = []
  let i = 0
  while (!done() || ms.length < min) {
    const s = performance.now()
    await index.search(queries[i++ % queries.length], { k: 10 })
    ms.push(performance.now() - s)
  }
  return ms
}

/** Runs `work` while searching; the searches' latencies and the work's seconds. */
async function during(work) {
  let finished = false
  const s = performance.now()
  const job = work().finally(() => (finished = true))
  // Let the work start before measuring.
  await new Promise((r) => setTimeout(r, 50))
  const ms = await searchWhile(() => finished)
  await job
  return { ...summary(ms), workSeconds: +((performance.now() - s) / 1000).toFixed(1) }
}

const rows = {}
await searchWhile(() => true, 50) // warm-up
rows.idle = summary(await searchWhile(() => true, 300))

rows.rebuild = await during(() => index.rebuild())

const extra = gen.batch(n, Number(values.add), 'new-')
rows.add = await during(() => index.add(extra.ids, extra.embeddings))

const model = await ColBERT.fromPretrained(path.join(root, 'models', 'minilm-colbert'))
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8').split(/\n\n+/).filter((p) => p.length > 200)
const texts = Array.from({ length: Number(values.encode) }, (_, i) => readme[i % readme.length])
rows.encode = await during(() => model.encode(texts, { isQuery: false }))

// Throughput of 1 and 8 concurrent callers, 400 searches each way.
for (const callers of [1, 8]) {
  let next = 0
  const s = performance.now()
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < 400) await index.search(queries[next++ % queries.length], { k: 10 })
    }),
  )
  rows[`concurrent${callers}`] = { searchesPerSecond: +(400 / ((performance.now() - s) / 1000)).toFixed(1) }
}
await index.close()

const result = { threads: threadBudget(), documents: n, added: Number(values.add), encoded: texts.length, rows }
fs.writeFileSync(values.out, JSON.stringify(result, null, 2))
console.log(`threads ${result.threads}; index of ${n} documents (8–24 tokens), one 32-token query at a time, k = 10`)
console.log('| while | searches | p50 ms | p99 ms | max ms | p50 / idle | p99 / idle | work s |')
console.log('|---|---:|---:|---:|---:|---:|---:|---:|')
for (const [name, r] of Object.entries(rows)) {
  if (r.p50 === undefined) continue
  const ratio = (a, b) => (a / b).toFixed(1)
  console.log(
    `| ${name} | ${r.searches} | ${r.p50} | ${r.p99} | ${r.max} | ${ratio(r.p50, rows.idle.p50)} | ${ratio(r.p99, rows.idle.p99)} | ${r.workSeconds ?? ''} |`,
  )
}
console.log(`concurrent searches: 1 caller ${rows.concurrent1.searchesPerSecond}/s, 8 callers ${rows.concurrent8.searchesPerSecond}/s`)
