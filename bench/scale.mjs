// Synthetic scale run: streams generated ColBERT-like embeddings (unit vectors around word
// centroids, 30–70 tokens per document by default, dim 128) into a fresh PlaidIndex, then
// measures build time, peak RSS, index size and single-query latency. One process per size, so
// RSS is clean.
// Usage: node --expose-gc bench/scale.mjs <documents> [--dir bench/out/scale-<n>] [--nbits 4] [--tokens 30-70]
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const { PlaidIndex, threadBudget } = createRequire(import.meta.url)(path.join(root, 'dist', 'index.js'))
const n = Number(process.argv[2] ?? 10000)
const args = Object.fromEntries(process.argv.slice(3).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []))
const dir = args.dir ?? path.join(root, 'bench', 'out', `scale-${n}`)
const DIM = 128
const [MIN_TOKENS, MAX_TOKENS] = (args.tokens ?? '30-70').split('-').map(Number)
if (!(MIN_TOKENS >= 1 && MAX_TOKENS >= MIN_TOKENS)) throw new Error('--tokens must be MIN-MAX, e.g. 30-70')
const WORDS = 4096

let seed = 12345
const rand = () => {
  seed = (seed * 1664525 + 1013904223) >>> 0
  return seed / 2 ** 32
}
const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand())
const words = new Float32Array(WORDS * DIM).map(gauss)
function token(out, at, word) {
  let norm = 0
  for (let k = 0; k < DIM; k++) {
    const v = words[word * DIM + k] + 0.6 * gauss()
    out[at + k] = v
    norm += v * v
  }
  norm = Math.sqrt(norm)
  for (let k = 0; k < DIM; k++) out[at + k] /= norm
}
function batch(start, count) {
  const lens = Array.from({ length: count }, () => MIN_TOKENS + Math.floor(rand() * (MAX_TOKENS - MIN_TOKENS + 1)))
  const offsets = new Uint32Array(count + 1)
  lens.forEach((l, i) => (offsets[i + 1] = offsets[i] + l))
  const data = new Float32Array(offsets[count] * DIM)
  for (let i = 0; i < count; i++) {
    const topic = Math.floor(rand() * (WORDS / 16)) * 16
    for (let t = offsets[i]; t < offsets[i + 1]; t++) token(data, t * DIM, topic + Math.floor(rand() * 16))
  }
  return { ids: Array.from({ length: count }, (_, i) => `doc-${start + i}`), embeddings: { dim: DIM, offsets, data } }
}
async function* stream() {
  for (let a = 0; a < n; a += 1000) {
    yield batch(a, Math.min(1000, n - a))
    // Under `node --expose-gc`, collect the generator's spent batches so that peak memory is
    // the library's, not V8's uncollected garbage.
    globalThis.gc?.()
  }
}
const dirBytes = (d) => fs.readdirSync(d).reduce((s, f) => s + fs.statSync(path.join(d, f)).size, 0)

// Peak anonymous memory (heap, not the file-backed page cache of mapped files), sampled.
let peakAnonKb = 0
const anonKb = () => Number(/RssAnon:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0)
// Per build stage (push = streaming into the spill, then sample, kmeans, compress, write): peak
// anonymous memory and seconds spent, so growth can be attributed.
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
t = performance.now()
const reopened = await PlaidIndex.open(dir)
const queries = Array.from({ length: 50 }, (_, i) => {
  const b = batch(n + i, 1)
  return { dim: DIM, offsets: Uint32Array.of(0, 32), data: b.embeddings.data.slice(0, 32 * DIM).length === 32 * DIM ? b.embeddings.data.slice(0, 32 * DIM) : new Float32Array(32 * DIM).fill(1 / Math.sqrt(DIM)) }
})
await reopened.search(queries[0], { k: 10 })
const openFirstMs = performance.now() - t
const lat = []
for (const q of queries) {
  t = performance.now()
  await reopened.search(q, { k: 10 })
  lat.push(performance.now() - t)
}
lat.sort((a, b) => a - b)
console.log(JSON.stringify({
  documents: info.documents, tokens_per_document: `${MIN_TOKENS}-${MAX_TOKENS}`, tokens: info.embeddings, centroids: info.numCentroids, threads: threadBudget(),
  build_s: buildS, tokens_per_s: info.embeddings / buildS, peak_rss_mb: process.resourceUsage().maxRSS / 1024, peak_anon_mb: peakAnonKb / 1024,
  gc: typeof globalThis.gc === 'function', index_mb: dirBytes(dir) / 1e6, bytes_per_token: dirBytes(dir) / info.embeddings,
  open_first_query_ms: openFirstMs, p50_ms: lat[25], p95_ms: lat[47], stages,
}))
