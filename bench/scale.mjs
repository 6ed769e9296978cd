// Synthetic scale run: streams generated ColBERT-like embeddings (bench/synthetic.mjs: unit
// vectors around word centroids, 30–70 tokens per document by default, dim 128) into a fresh
// PlaidIndex, then measures build time, memory, index size and single-query latency. One
// process per size, so memory figures are clean.
// Usage: node --expose-gc bench/scale.mjs <documents> [--dir bench/out/scale-<n>] [--nbits 4] [--tokens 30-70]
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

import { anonKb, dirBytes, generator, latencies } from './synthetic.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { PlaidIndex, threadBudget } = createRequire(import.meta.url)(path.join(root, 'dist', 'index.js'))
const n = Number(process.argv[2] ?? 10000)
const args = Object.fromEntries(process.argv.slice(3).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []))
const dir = args.dir ?? path.join(root, 'bench', 'out', `scale-${n}`)
const [minTokens, maxTokens] = (args.tokens ?? '30-70').split('-').map(Number)
const gen = generator({ minTokens, maxTokens })

async function* stream() {
  for (let a = 0; a < n; a += 1000) {
    yield gen.batch(a, Math.min(1000, n - a))
    // Under `node --expose-gc`, collect the generator's spent batches so that peak memory is
    // the library's, not V8's uncollected garbage.
    globalThis.gc?.()
  }
}

// Per build stage (push = streaming into the spill, then sample, kmeans, compress, write): peak
// anonymous memory and seconds spent, so growth can be attributed. A stage's time runs from
// its first progress event to the next stage's (k-means reports after each iteration, so
// "sample" includes the first iteration).
let peakAnonKb = 0
let stage = 'push'
const stages = {}
const enter = (s) => {
  const now = performance.now()
  stages[stage].s += (now - stages[stage].since) / 1000
  stage = s
  stages[s] ??= { s: 0, peak_anon_mb: 0 }
  stages[s].since = now
}
const sampler = setInterval(() => {
  const kb = anonKb()
  peakAnonKb = Math.max(peakAnonKb, kb)
  stages[stage].peak_anon_mb = Math.max(stages[stage].peak_anon_mb, kb / 1024)
}, 100)

let t = performance.now()
stages.push = { s: 0, peak_anon_mb: 0, since: t }
const index = await PlaidIndex.create(dir, { overwrite: true, nbits: Number(args.nbits ?? 4) })
await index.add(stream(), { onProgress: (p) => p.stage !== stage && enter(p.stage) })
enter('done')
const buildS = (performance.now() - t) / 1000
clearInterval(sampler)
delete stages.done
for (const v of Object.values(stages)) {
  delete v.since
  v.s = Math.round(v.s * 10) / 10
  v.peak_anon_mb = Math.round(v.peak_anon_mb)
}
const info = index.info
await index.close()

const queries = gen.queries(51)
t = performance.now()
const reopened = await PlaidIndex.open(dir)
await reopened.search(queries[0], { k: 10 })
const openFirstMs = performance.now() - t
const lat = await latencies(queries.slice(1), (q) => reopened.search(q, { k: 10 }))
console.log(JSON.stringify({
  documents: info.documents, tokens_per_document: `${minTokens}-${maxTokens}`, tokens: info.embeddings, centroids: info.numCentroids, threads: threadBudget(),
  build_s: buildS, tokens_per_s: info.embeddings / buildS, peak_rss_mb: process.resourceUsage().maxRSS / 1024, peak_anon_mb: peakAnonKb / 1024,
  gc: typeof globalThis.gc === 'function', index_mb: dirBytes(dir) / 1e6, bytes_per_token: dirBytes(dir) / info.embeddings,
  open_first_query_ms: openFirstMs, ...lat, stages,
}))
