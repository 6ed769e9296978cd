// Encodes a BEIR collection (corpus + queries) once with this package and stores the embeddings,
// so that every index engine in the PLAID benchmark works on the very same vectors.
// Usage: node bench/dump-embeddings.mjs --data ../shared/data/scifact --out bench/out/scifact [--model models/minilm-colbert] [--quantized true]
// Writes: docs.f32, docs.offsets.u32, queries.f32, queries.offsets.u32 (little-endian) and meta.json
// (dim, document ids, query ids, model, timings).
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
)
const { ColBERT } = createRequire(import.meta.url)(path.join(root, 'dist', 'index.js'))
const data = path.resolve(args.data ?? path.join(root, '..', 'shared', 'data', 'scifact'))
const out = path.resolve(args.out ?? path.join(root, 'bench', 'out', path.basename(data)))
const readJsonl = (f) => fs.readFileSync(path.join(data, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
const corpus = readJsonl('corpus.jsonl')
const queries = readJsonl('queries.jsonl')
const modelDir = path.resolve(args.model ?? path.join(root, 'models', 'minilm-colbert'))
const model = await ColBERT.fromPretrained(modelDir, args.quantized === undefined ? {} : { quantized: args.quantized === 'true' })
fs.mkdirSync(out, { recursive: true })
const write = (name, typed) => fs.writeFileSync(path.join(out, name), Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength))
let t = performance.now()
const d = await model.encode(
  corpus.map((c) => `${c.title ?? ''} ${c.text ?? ''}`.trim()),
  { isQuery: false, onProgress: ({ done, total }) => process.stderr.write(`\rdocuments ${done}/${total}`) },
)
const docSeconds = (performance.now() - t) / 1000
process.stderr.write('\n')
t = performance.now()
const q = await model.encode(queries.map((x) => x.text), { isQuery: true })
const querySeconds = (performance.now() - t) / 1000
write('docs.f32', d.data)
write('docs.offsets.u32', d.offsets)
write('queries.f32', q.data)
write('queries.offsets.u32', q.offsets)
fs.writeFileSync(
  path.join(out, 'meta.json'),
  JSON.stringify({
    dim: d.dim,
    model: path.relative(root, model.onnxPath),
    documents: corpus.map((c) => String(c._id)),
    queries: queries.map((x) => String(x._id)),
    tokens: d.data.length / d.dim,
    encode_seconds: { documents: docSeconds, queries: querySeconds },
  }),
)
console.log(`${out}: ${corpus.length} documents (${d.data.length / d.dim} tokens), ${queries.length} queries, dim ${d.dim}`)
