// The alternative candidate generator for the cluster index, measured to choose between them
// (ARCHITECTURE.md §16): one mean-pooled vector per document in a `knn_vector` field (HNSW,
// lucene engine: the only one the Maven plugin zip can run), the query's mean vector → the top N
// documents, reranked by exact MaxSim over their raw embeddings and over their 4-bit blobs (the
// shipped stage 2: the same codebook training, 4,096 centroids, as bench/opensearch.mjs). Recall@10 against exact MaxSim, beside the shipped design's rows from
// bench/opensearch.mjs. Usage: node bench/opensearch-knn.mjs [--dump bench/out/scifact] [--queries 150] [--n 64,256,1024]
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { readDump } from './dump.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const { maxsim } = require(path.join(root, 'dist', 'index.js'))
const { startCluster } = await import(path.join(root, 'scripts', 'opensearch', 'cluster.mjs'))
const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []))
const dir = path.resolve(args.dump ?? path.join(root, 'bench', 'out', 'scifact'))
const { meta, docs, queries } = readDump(dir)
const dim = meta.dim
const nq = Math.min(Number(args.queries ?? 150), meta.queries.length)
const ns = (args.n ?? '64,256,1024').split(',').map(Number)
const exact = JSON.parse(fs.readFileSync(path.join(dir, 'exact_top100.json'), 'utf8')).top.slice(0, nq)
const mean = (e, i) => {
  const v = new Array(dim).fill(0)
  for (let r = e.offsets[i]; r < e.offsets[i + 1]; r++) for (let k = 0; k < dim; k++) v[k] += e.data[r * dim + k]
  const n = Math.hypot(...v) || 1
  return v.map((x) => x / n)
}
const item = (e, i) => ({ dim, offsets: new Uint32Array([0, e.offsets[i + 1] - e.offsets[i]]), data: e.data.subarray(e.offsets[i] * dim, e.offsets[i + 1] * dim) })
const { native } = require(path.join(root, 'dist', 'src', 'native.js'))
const token = new native.CancelToken()
const cb = await native.trainStandaloneCodebook(dim, docs.offsets, docs.data, { numCentroids: Number(args.centroids ?? 4096) }, token)
const blobs = (await cb.compress(dim, docs.offsets, docs.data, token)).blobs
const cluster = await startCluster({ nodes: 1, heap: '1g' })
try {
  const call = async (method, p, body, nd) => {
    const r = await fetch(cluster.url + p, { method, headers: { 'content-type': nd ? 'application/x-ndjson' : 'application/json' }, body: body === undefined ? undefined : nd ? body : JSON.stringify(body) })
    const j = await r.json()
    if (r.status >= 300 || j.errors) throw new Error(`${p}: ${r.status} ${JSON.stringify(j).slice(0, 300)}`)
    return j
  }
  await call('PUT', '/knn', { settings: { index: { knn: true, number_of_shards: 1, number_of_replicas: 0 } }, mappings: { properties: { v: { type: 'knn_vector', dimension: dim, method: { name: 'hnsw', engine: 'lucene', space_type: 'innerproduct' } } } } })
  const ids = meta.documents
  for (let a = 0; a < ids.length; a += 500) {
    let nd = ''
    for (let i = a; i < Math.min(ids.length, a + 500); i++) nd += JSON.stringify({ index: { _index: 'knn', _id: ids[i] } }) + '\n' + JSON.stringify({ v: mean(docs, i) }) + '\n'
    await call('POST', '/_bulk', nd, true)
  }
  await call('POST', '/knn/_refresh')
  await call('POST', '/knn/_forcemerge?max_num_segments=1')
  const index = new Map(ids.map((id, i) => [id, i]))
  for (const n of ns) {
    let recall = 0
    let quantized = 0
    let ms = 0
    for (let qi = 0; qi < nq; qi++) {
      const t = performance.now()
      const res = await call('POST', '/knn/_search', { size: n, _source: false, query: { knn: { v: { vector: mean(queries, qi), k: n } } } })
      ms += performance.now() - t
      const cand = res.hits.hits.map((h) => index.get(h._id))
      const scored = cand.map((d) => [ids[d], maxsim(item(queries, qi), item(docs, d))[0]]).sort((x, y) => y[1] - x[1]).slice(0, 10)
      const truth = new Set(exact[qi].slice(0, 10).map(([id]) => id))
      recall += scored.filter(([id]) => truth.has(id)).length / 10
      const q = await cb.score(queries.data.subarray(queries.offsets[qi] * dim, queries.offsets[qi + 1] * dim), cand.map((d) => blobs[d]))
      const top = cand.map((d, j) => [ids[d], q[j]]).sort((x, y) => y[1] - x[1]).slice(0, 10)
      quantized += top.filter(([id]) => truth.has(id)).length / 10
    }
    console.log(JSON.stringify({ design: 'knn mean vector (lucene HNSW) + exact rerank', candidates: n, recall10Raw: +(recall / nq).toFixed(4), recall10Blobs: +(quantized / nq).toFixed(4), knnMs: +(ms / nq).toFixed(2) }))
  }
} finally {
  await cluster.stop()
}
