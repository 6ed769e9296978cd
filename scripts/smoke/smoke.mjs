// The smoke test an installed package must pass on every runtime we support: load the package with
// `require` and with `import`, encode with a model (progress callbacks, an aborted signal), build a
// PLAID index, search it. Runs inside an app made by scripts/smoke/install-app.mjs (the packed
// packages installed as users get them).
// Prints one JSON line; exits non-zero on any failure.
//
//   <node|bun> smoke.mjs <model folder>
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'

const started = performance.now()
const model = process.argv[2]
if (!model) throw new Error('usage: smoke.mjs <model folder>')
const cjs = createRequire(import.meta.url)('colbert')
const esm = await import('colbert')
if (typeof cjs.ColBERT?.fromPretrained !== 'function' || esm.ColBERT !== cjs.ColBERT) {
  throw new Error('require("colbert") and import("colbert") disagree')
}
const { ColBERT, PlaidIndex, maxsim, runtimeInfo } = esm

const m = await ColBERT.fromPretrained(model, { threads: 2 })
const texts = {
  plaid: 'PLAID prunes candidate documents with centroid interaction before exact scoring.',
  codec: 'The residual codec stores each token as a centroid id plus a few bits per dimension.',
  fruit: 'Bananas are rich in potassium and grow in tropical climates.',
  late: 'ColBERT scores a query against a document token by token with MaxSim.',
}
const progress = []
const docs = await m.encode(Object.values(texts), { isQuery: false, batchSize: 2, onProgress: (p) => progress.push(p.done) })
if (progress.at(-1) !== 4) throw new Error(`progress callbacks: ${JSON.stringify(progress)}`)
const aborted = await m.encode(['x'], { signal: AbortSignal.abort() }).then(
  () => 'resolved',
  (e) => (e instanceof esm.ColbertError ? e.code : String(e)),
)
if (aborted !== 'ABORTED') throw new Error(`an aborted signal gave ${aborted}, not ABORTED`)
const queries = await m.encode(['how are tokens compressed?', 'which fruit has potassium?'])
const scores = maxsim(queries, docs)
if (!scores.every(Number.isFinite)) throw new Error('maxsim returned a non-finite score')

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-smoke-'))
try {
  const index = await PlaidIndex.create(path.join(dir, 'index'), { nbits: 2 })
  await index.add(Object.keys(texts), docs)
  const hits = await index.search(queries, { k: 2 })
  if (hits.length !== 2 || hits.some((h) => h.length !== 2 || !h.every((x) => Object.hasOwn(texts, x.id)))) {
    throw new Error(`unexpected search result ${JSON.stringify(hits)}`)
  }
  const documents = index.info.documents
  await index.close()
  const runtime = globalThis.Bun ? `bun ${globalThis.Bun.version}` : `node ${process.version}`
  const ort = runtimeInfo()
  console.log(
    JSON.stringify({
      runtime,
      arch: process.arch,
      ort: ort && { version: ort.version, path: ort.path },
      dim: docs.dim,
      documents,
      top: hits.map((h) => h[0].id),
      seconds: Math.round(performance.now() - started) / 1000,
    }),
  )
} finally {
  fs.rmSync(dir, { recursive: true, force: true })
}
