// The cluster index (colbert/opensearch) beside the local PlaidIndex on the same embeddings:
// recall@10 against exact MaxSim, nDCG-free (embeddings only), QPS and p50 of one query per call
// and where a search's time goes (probe, cluster candidate query, fetch + exact scoring), on
// 1, 2 and 3 OpenSearch nodes on this machine (loopback: indicative only).
// Usage: node bench/opensearch.mjs [--dump bench/out/scifact] [--nodes 1,2,3] [--queries 300]
//        [--settings 2:64,4:64,4:128,8:256] (nProbe:exactCandidates) [--centroids 4096] [--nbits 4] [--out bench/out/opensearch.jsonl]
// Needs bench/out/<dump> (dump-embeddings.mjs) and its exact_top100.json (exact.mjs).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { readDump } from './dump.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const { PlaidIndex } = require(path.join(root, 'dist', 'index.js'))
const { OpenSearchIndex, SEARCH_TIMING } = require(path.join(root, 'dist', 'src', 'opensearch', 'index.js'))
const { Client } = require('@opensearch-project/opensearch')
const { startCluster } = await import(path.join(root, 'scripts', 'opensearch', 'cluster.mjs'))

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
)
const dir = path.resolve(args.dump ?? path.join(root, 'bench', 'out', 'scifact'))
const nodeCounts = (args.nodes ?? '1,2,3').split(',').map(Number)
const settings = (args.settings ?? '2:64,4:64,4:128,8:256').split(',').map((s) => s.split(':').map(Number))
// Both engines train the same number of centroids (k-means of 16,384 centroids on 1.1M tokens
// takes minutes on two cores, once per cluster size).
const numCentroids = Number(args.centroids ?? 4096)
const nbits = Number(args.nbits ?? 4)
const out = path.resolve(args.out ?? path.join(root, 'bench', 'out', 'opensearch.jsonl'))
const { meta, docs, queries: allQueries } = readDump(dir)
const nq = Math.min(Number(args.queries ?? 300), meta.queries.length)
const exact = JSON.parse(fs.readFileSync(path.join(dir, 'exact_top100.json'), 'utf8')).top.slice(0, nq)
const one = (i) => {
  const a = allQueries.offsets[i]
  const b = allQueries.offsets[i + 1]
  return { dim: meta.dim, offsets: new Uint32Array([0, b - a]), data: allQueries.data.subarray(a * meta.dim, b * meta.dim) }
}
const queries = Array.from({ length: nq }, (_, i) => one(i))
const recall = (hits) => hits.reduce((s, h, i) => s + h.filter((x) => exact[i].slice(0, 10).some(([id]) => id === x.id)).length / 10, 0) / hits.length
const pct = (v, p) => [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor(p * v.length))]
const log = (row) => {
  console.log(JSON.stringify(row))
  fs.appendFileSync(out, JSON.stringify({ ...row, machine: `${os.cpus().length} × ${os.cpus()[0].model}`, date: new Date().toISOString() }) + '\n')
}

async function measure(index, engine, nodes, opts) {
  const hits = []
  const lat = []
  const parts = { probeMs: 0, clusterMs: 0, scoreMs: 0 }
  for (const q of queries.slice(0, 10)) await index.search(q, { k: 10, ...opts }) // warm-up
  for (const q of queries) {
    const t = performance.now()
    const h = await index.search(q, { k: 10, ...opts })
    lat.push(performance.now() - t)
    hits.push(h[0])
    const timing = index[SEARCH_TIMING]
    if (timing) for (const k of Object.keys(parts)) parts[k] += timing[k] / queries.length
  }
  const total = lat.reduce((a, b) => a + b, 0)
  log({
    engine, nodes, nbits, ...opts, recall10: +recall(hits).toFixed(4), qps: +(1000 * queries.length / total).toFixed(1),
    p50ms: +pct(lat, 0.5).toFixed(2), p95ms: +pct(lat, 0.95).toFixed(2),
    ...(engine === 'opensearch' ? Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, +v.toFixed(2)])) : {}),
  })
}

const ids = meta.documents
const localDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-local-'))
let t = performance.now()
const local = await PlaidIndex.create(localDir, { numCentroids, nbits })
await local.add(ids, docs)
log({ engine: 'local', build_s: +((performance.now() - t) / 1000).toFixed(1), documents: ids.length, tokens: docs.offsets[ids.length] })
await measure(local, 'local', 0, {})
for (const [p, e] of settings) await measure(local, 'local', 0, { nProbe: p, exactCandidates: e })
await local.close()
fs.rmSync(localDir, { recursive: true, force: true })

for (const n of nodeCounts) {
  const cluster = await startCluster({ nodes: n, heap: n === 1 ? '1g' : '768m' })
  try {
    const client = new Client({ nodes: cluster.urls })
    t = performance.now()
    const index = await OpenSearchIndex.create(client, 'bench', { shards: n, replicas: n > 1 ? 1 : 0, refresh: 'false', overwrite: true, numCentroids, nbits })
    await index.add(ids, docs)
    await client.indices.refresh({ index: 'bench' })
    await client.indices.forcemerge({ index: 'bench', max_num_segments: 1 })
    await index.refresh()
    const stats = await client.indices.stats({ index: 'bench', metric: 'store' })
    const bytes = stats.body._all.primaries.store.size_in_bytes
    log({ engine: 'opensearch', nodes: n, build_s: +((performance.now() - t) / 1000).toFixed(1), primaryStoreBytes: bytes, bytesPerToken: +(bytes / index.info.embeddings).toFixed(1), startup_s: +(cluster.startupMs / 1000).toFixed(1) })
    await measure(index, 'opensearch', n, {})
    for (const [p, e] of settings) await measure(index, 'opensearch', n, { nProbe: p, exactCandidates: e })
    await index.drop()
  } finally {
    await cluster.stop()
  }
}
