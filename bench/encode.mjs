// Encode throughput of this package on SciFact texts (the PyLate side is encode_pylate.py; run
// both through run-encode.sh). Prints one JSON line per precision.
// Usage: node bench/encode.mjs --model models/minilm-colbert --data ../shared/data/scifact --docs 1000 --threads 2
//        [--model-threads N (intra-op threads per inference; default: the model's default)] [--precisions fp32,int8]
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
)
const threads = Number(args.threads ?? 2)
process.env.COLBERT_THREADS = String(threads)
const { ColBERT } = createRequire(import.meta.url)(path.join(root, 'dist', 'index.js'))

const dataDir = args.data ?? path.join(root, '..', 'shared', 'data', 'scifact')
const readJsonl = (f) => fs.readFileSync(path.join(dataDir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
const docs = readJsonl('corpus.jsonl').slice(0, Number(args.docs ?? 1000)).map((d) => `${d.title ?? ''} ${d.text ?? ''}`.trim())
const queries = readJsonl('queries.jsonl').map((q) => q.text)
const modelDir = path.resolve(args.model ?? path.join(root, 'models', 'minilm-colbert'))
const precisions = (args.precisions ?? 'fp32,int8').split(',')

for (const precision of precisions) {
  const file = path.join(modelDir, precision === 'int8' ? 'model_int8.onnx' : 'model.onnx')
  if (!fs.existsSync(file)) {
    console.error(`skip ${precision}: ${file} missing (tools/make_standin.py writes it)`)
    continue
  }
  const model = await ColBERT.fromPretrained(modelDir, { quantized: precision === 'int8', threads: args['model-threads'] === undefined ? undefined : Number(args['model-threads']) })
  await model.encode(docs.slice(0, 32), { isQuery: false }) // warm-up
  let t = performance.now()
  const d = await model.encode(docs, { isQuery: false, batchSize: 32 })
  const docSeconds = (performance.now() - t) / 1000
  t = performance.now()
  await model.encode(queries, { isQuery: true, batchSize: 32 })
  const querySeconds = (performance.now() - t) / 1000
  console.log(
    JSON.stringify({
      engine: 'colbert',
      precision,
      threads,
      docs: docs.length,
      tokens: d.data.length / d.dim,
      docs_per_s: docs.length / docSeconds,
      queries: queries.length,
      queries_per_s: queries.length / querySeconds,
    }),
  )
}
