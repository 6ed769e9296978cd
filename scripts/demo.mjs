// The main job, offline: index this repository's own documentation with the bundled stand-in
// model into a PLAID index (texts and metadata stored with it), then answer sample questions,
// printing ids, scores and snippets. Everything goes through the `colbert` command.
// Usage: npm run demo [-- "your question" ...].
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
process.chdir(root)
const { main } = createRequire(import.meta.url)(path.join(root, 'dist', 'src', 'cli.js'))

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

let code = await main(['index', ...sources, '--index', index, '--overwrite', ...model])
if (code === 0) code = await main(['search', '--index', index, '-k', '3', ...model, ...questions])
process.exitCode = code
