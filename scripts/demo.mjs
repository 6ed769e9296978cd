// The main job, offline: encode this repository's own documentation with the bundled stand-in
// model and answer sample questions by exact MaxSim, printing ids, scores and snippets.
// Usage: npm run demo [-- "your question" ...]. The stand-in model was never trained with query
// expansion, so the demo encodes queries without it (EXPANSION=1 turns it back on).
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const { ColBERT, maxsim } = createRequire(import.meta.url)(path.join(root, 'dist', 'index.js'))

const questions = process.argv.slice(2).length
  ? process.argv.slice(2)
  : [
      'How does the package find the ONNX Runtime library?',
      'Why are query embeddings padded with mask tokens?',
      'How many threads does encoding use?',
    ]

// Documents: the paragraphs of the project's Markdown files, with "file#n" ids.
const docs = []
for (const file of ['README.md', 'ARCHITECTURE.md', 'BENCHMARKS.md']) {
  const text = fs.readFileSync(path.join(root, file), 'utf8')
  text
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter((p) => p.length > 80 && !p.startsWith('```') && !p.startsWith('|'))
    .forEach((p, i) => docs.push({ id: `${file}#${i}`, text: p.replace(/\s+/g, ' ') }))
}

const started = performance.now()
const model = await ColBERT.fromPretrained(path.join(root, 'models', 'minilm-colbert'), { doQueryExpansion: process.env.EXPANSION === '1' })
const d = await model.encode(
  docs.map((x) => x.text),
  { isQuery: false, onProgress: ({ done, total }) => process.stderr.write(`\rencoding documents ${done}/${total}`) },
)
process.stderr.write('\n')
const q = await model.encode(questions, { isQuery: true })
const scores = maxsim(q, d)
console.log(`${docs.length} paragraphs encoded with ${path.basename(model.onnxPath)} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`)
questions.forEach((question, qi) => {
  const row = scores.subarray(qi * docs.length, (qi + 1) * docs.length)
  const top = Array.from(row.keys()).sort((a, b) => row[b] - row[a]).slice(0, 3)
  console.log(`Q: ${question}`)
  for (const i of top) console.log(`  ${row[i].toFixed(2).padStart(6)}  ${docs[i].id.padEnd(20)} ${docs[i].text.slice(0, 100)}…`)
  console.log()
})
