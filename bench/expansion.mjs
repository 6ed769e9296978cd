// Exhaustive nDCG@10 of the int8 stand-in with and without query expansion, on the same
// document embeddings: node bench/expansion.mjs <beir-folder>
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const { ColBERT, loadBeir, maxsimAsync, computeMetrics, count } = require(path.join(root, 'dist', 'index.js'))
// The text PyLate's load_beir encodes for a document.
const documentText = (doc) => `${doc.title ?? ''} ${doc.text}`.trim()
const folder = process.argv[2]
const ds = await loadBeir(folder)
const judged = ds.queries.filter((q) => ds.qrels.has(q.id))
const off = await ColBERT.fromPretrained(path.join(root, 'models', 'minilm-colbert'), { quantized: true })
const on = await ColBERT.fromPretrained(path.join(root, 'models', 'minilm-colbert'), { quantized: true, doQueryExpansion: true })
const t0 = Date.now()
const d = await off.encode(ds.corpus.map(documentText), { isQuery: false })
const out = {}
for (const [name, m] of [['no expansion (config)', off], ['expansion', on]]) {
  const q = await m.encode(judged.map((x) => x.text), { isQuery: true })
  const s = await maxsimAsync(q, d)
  const n = count(d)
  const rankings = new Map(judged.map((x, qi) => {
    const row = s.subarray(qi * n, (qi + 1) * n)
    return [x.id, [...row.keys()].sort((a, b) => row[b] - row[a]).slice(0, 100).map((i) => ({ id: ds.corpus[i].id, score: row[i] }))]
  }))
  out[name] = computeMetrics(rankings, ds.qrels)['ndcg@10']
}
console.log(JSON.stringify({ folder, queries: judged.length, documents: ds.corpus.length, ndcg10: out, seconds: (Date.now() - t0) / 1000 }))
