// This package's PLAID index on the embeddings dumped by dump-embeddings.mjs (the other side of
// plaid_fastplaid.py). Prints one JSON line per phase/setting.
//   node bench/plaid.mjs build  <dump> <index_dir> [--nbits 4] [--chunk 20000]
//   node bench/plaid.mjs search <dump> <index_dir> [--settings "1:256,2:1024"] (nProbe:candidates)
// Build streams the dump from disk in chunks of documents, so its memory does not include the
// whole collection.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const [phase, dumpDir, indexDir, ...rest] = process.argv.slice(2)
const args = Object.fromEntries(rest.reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []))
const { PlaidIndex, threadBudget } = createRequire(import.meta.url)(path.join(root, 'dist', 'index.js'))
const meta = JSON.parse(fs.readFileSync(path.join(dumpDir, 'meta.json'), 'utf8'))
const readU32 = (name) => {
  const b = fs.readFileSync(path.join(dumpDir, name))
  return new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4)
}
const rssMb = () => process.resourceUsage().maxRSS / 1024
const dirBytes = (d) => fs.readdirSync(d, { recursive: true }).reduce((s, f) => {
  const st = fs.statSync(path.join(d, f))
  return st.isFile() ? s + st.size : s
}, 0)

if (phase === 'build') {
  const offsets = readU32('docs.offsets.u32')
  const chunk = Number(args.chunk ?? 2000)
  const fd = fs.openSync(path.join(dumpDir, 'docs.f32'), 'r')
  async function* batches() {
    for (let a = 0; a < offsets.length - 1; a += chunk) {
      const b = Math.min(a + chunk, offsets.length - 1)
      const rows = offsets[b] - offsets[a]
      const data = new Float32Array(rows * meta.dim)
      fs.readSync(fd, Buffer.from(data.buffer), 0, data.byteLength, offsets[a] * meta.dim * 4)
      const local = Uint32Array.from(offsets.subarray(a, b + 1), (o) => o - offsets[a])
      yield { ids: meta.documents.slice(a, b), embeddings: { dim: meta.dim, offsets: local, data } }
    }
  }
  const before = rssMb()
  const t = performance.now()
  const index = await PlaidIndex.create(indexDir, { overwrite: true, nbits: Number(args.nbits ?? 4) })
  const res = await index.add(batches())
  const seconds = (performance.now() - t) / 1000
  const info = index.info
  const bytes = dirBytes(indexDir)
  console.log(JSON.stringify({
    engine: 'colbert', phase: 'build', threads: threadBudget(), nbits: info.nbits, documents: info.documents,
    tokens: info.embeddings, seconds, peak_rss_mb: rssMb(), rss_before_build_mb: before, centroids: res.numCentroids,
    index_bytes: bytes, bytes_per_token: bytes / info.embeddings,
  }))
} else if (phase === 'search') {
  const qOffsets = readU32('queries.offsets.u32')
  const qb = fs.readFileSync(path.join(dumpDir, 'queries.f32'))
  const qData = new Float32Array(qb.buffer, qb.byteOffset, qb.byteLength / 4)
  const queries = { dim: meta.dim, offsets: qOffsets, data: qData }
  const single = (i) => ({
    dim: meta.dim,
    offsets: Uint32Array.of(0, qOffsets[i + 1] - qOffsets[i]),
    data: qData.subarray(qOffsets[i] * meta.dim, qOffsets[i + 1] * meta.dim),
  })
  const exact = JSON.parse(fs.readFileSync(path.join(dumpDir, 'exact_top100.json'), 'utf8')).top
  let t = performance.now()
  const index = await PlaidIndex.open(indexDir)
  await index.search(single(0), { k: 10 })
  const openFirstMs = performance.now() - t
  const k = Number(args.k ?? 10)
  for (const setting of (args.settings ?? 'default').split(',')) {
    const opts = { k }
    if (setting !== 'default') {
      const [p, c] = setting.split(':').map(Number)
      Object.assign(opts, { nProbe: p, candidates: c })
    }
    await index.search(single(1), opts)
    t = performance.now()
    const hits = await index.search(queries, opts)
    const batchS = (performance.now() - t) / 1000
    const lat = []
    for (let i = 0; i < meta.queries.length; i++) {
      t = performance.now()
      await index.search(single(i), opts)
      lat.push(performance.now() - t)
    }
    lat.sort((a, b) => a - b)
    const ranked = hits.map((h) => h.map((x) => x.id))
    let recall = 0
    ranked.forEach((r, qi) => {
      const want = new Set(exact[qi].slice(0, k).map(([id]) => id))
      recall += r.slice(0, k).filter((id) => want.has(id)).length / k
    })
    console.log(JSON.stringify({
      engine: 'colbert', phase: 'search', threads: threadBudget(), setting, qps: meta.queries.length / batchS,
      p50_ms: lat[Math.floor(lat.length * 0.5)], p95_ms: lat[Math.floor(lat.length * 0.95)],
      recall_at_10: recall / ranked.length, open_first_query_ms: openFirstMs, peak_rss_mb: rssMb(), ranked,
    }))
  }
} else {
  throw new Error('usage: plaid.mjs build|search <dump> <index_dir>')
}
