// Generated ColBERT-like embeddings for the scale and churn benchmarks: unit vectors around
// 4,096 "word" centroids (16-word topics, noise σ 0.6 before normalisation), dim 128, a
// seeded LCG so every run sees the same documents.
import fs from 'node:fs'

export const DIM = 128
const WORDS = 4096

/**
 * `seed` fixes the word vectors (the distribution) and, unless `streamSeed` is given, the
 * documents that follow; `streamSeed` draws other documents from the same distribution.
 */
export function generator({ seed = 12345, streamSeed, minTokens = 30, maxTokens = 70 } = {}) {
  if (!(minTokens >= 1 && maxTokens >= minTokens)) throw new Error('tokens must be MIN-MAX with 1 ≤ MIN ≤ MAX, e.g. 30-70')
  let state = seed >>> 0
  const rand = () => {
    state = (state * 1664525 + 1013904223) >>> 0
    return state / 2 ** 32
  }
  const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand())
  const words = new Float32Array(WORDS * DIM).map(gauss)
  if (streamSeed !== undefined) state = streamSeed >>> 0
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
  /** `count` documents with ids `${prefix}${start + i}`, as `{ ids, embeddings }`. */
  function batch(start, count, prefix = 'doc-') {
    const lens = Array.from({ length: count }, () => minTokens + Math.floor(rand() * (maxTokens - minTokens + 1)))
    const offsets = new Uint32Array(count + 1)
    lens.forEach((l, i) => (offsets[i + 1] = offsets[i] + l))
    const data = new Float32Array(offsets[count] * DIM)
    for (let i = 0; i < count; i++) {
      const topic = Math.floor(rand() * (WORDS / 16)) * 16
      for (let t = offsets[i]; t < offsets[i + 1]; t++) token(data, t * DIM, topic + Math.floor(rand() * 16))
    }
    return { ids: Array.from({ length: count }, (_, i) => `${prefix}${start + i}`), embeddings: { dim: DIM, offsets, data } }
  }
  /** `n` queries of 32 tokens, each drawn like a document of one topic. */
  function queries(n) {
    return Array.from({ length: n }, () => {
      const data = new Float32Array(32 * DIM)
      const topic = Math.floor(rand() * (WORDS / 16)) * 16
      for (let t = 0; t < 32; t++) token(data, t * DIM, topic + Math.floor(rand() * 16))
      return { dim: DIM, offsets: Uint32Array.of(0, 32), data }
    })
  }
  return { batch, queries, rand }
}

/** Anonymous memory now (heap, not the page cache of mapped files), in KiB (Linux). */
export const anonKb = () => Number(/RssAnon:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0)

/** Milliseconds per call of `f` over `inputs`, sorted, with p50 and p95. */
export async function latencies(inputs, f) {
  const lat = []
  for (const x of inputs) {
    const t = performance.now()
    await f(x)
    lat.push(performance.now() - t)
  }
  lat.sort((a, b) => a - b)
  return { p50_ms: lat[Math.floor(lat.length * 0.5)], p95_ms: lat[Math.floor(lat.length * 0.95)] }
}

export const dirBytes = (d) => fs.readdirSync(d).reduce((s, f) => s + fs.statSync(`${d}/${f}`).size, 0)
