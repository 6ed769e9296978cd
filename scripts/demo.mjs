// The main job, offline: index this repository's own documentation with the bundled stand-in
// model into a PLAID index (texts and metadata stored with it), then answer sample questions,
// printing ids, scores and snippets. Everything goes through the `colbert` command.
// Usage: npm run demo [-- "your question" ...].
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
process.chdir(root)
const { main } = createRequire(import.meta.url)(path.join(root, 'dist', 'src', 'cli', 'index.js'))

const questions = process.argv.slice(2).length
  ? process.argv.slice(2)
  : [
      'How does the package find the ONNX Runtime library?',
      'What happens to the index if the process crashes during an add?',
      'How can I restrict a search to documents with some metadata?',
    ]

// The corpus: the project's Markdown documentation (MIT, ships with the repository).
const sources = ['README.md', 'ARCHITECTURE.md', 'BENCHMARKS.md', 'tools/README.md', ...fs.readdirSync('crates').map((c) => `crates/${c}/README.md`)].filter((f) =>
  fs.existsSync(f),
)
const model = ['--model', 'models/minilm-colbert', '--quantized']
const index = path.join('bench', 'out', 'demo-index')

// The index is rebuilt only when what it is made of changed: the documents, the model's files
// and the command's options (a fingerprint kept beside it).
const args = ['index', ...sources, '--index', index, '--overwrite', ...model]
const hash = crypto.createHash('sha256')
hash.update(JSON.stringify(args))
for (const f of [...sources, ...fs.readdirSync('models/minilm-colbert').map((n) => `models/minilm-colbert/${n}`)].sort()) {
  if (fs.statSync(f).isFile()) hash.update(f).update(fs.readFileSync(f).toString('base64'))
}
const fingerprint = hash.digest('hex')
const stampFile = `${index}.fingerprint`
let code = 0
if (fs.existsSync(path.join(index, 'MANIFEST')) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === fingerprint) {
  console.log(`reusing ${index}: the documents and the model have not changed since it was built`)
} else {
  fs.rmSync(stampFile, { force: true })
  code = await main(args)
  if (code === 0) fs.writeFileSync(stampFile, fingerprint)
}
if (code === 0) code = await main(['search', '--index', index, '-k', '3', ...model, ...questions])
process.exitCode = code
