// Index in a worker thread, search on the main thread: the worker (indexer.mjs) encodes this
// repository's documentation and commits it batch by batch; the main thread opens the same index,
// picks up each commit with `refresh()` and answers a question while indexing goes on. Encoding,
// index writes and searches all run on colbert's own threads, never on the event loop, so the
// main thread stays responsive (the timer lag printed at the end).
//
//   npm run example:worker -- "how are errors reported?"
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'

import { ColBERT, PlaidIndex } from 'colbert'

import { markdownSections } from '../markdown.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..', '..')
const modelDir = path.join(root, 'models', 'minilm-colbert')
const question = process.argv[2] ?? 'How are errors reported?'
const indexDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-worker-')), 'index')
const sections = markdownSections(root, ['README.md', 'ARCHITECTURE.md', 'RELIABILITY.md'])

// Event-loop lag: how late a 10 ms timer fires, at worst, while the work runs.
let worstLag = 0
let last = performance.now()
const timer = setInterval(() => {
  const now = performance.now()
  worstLag = Math.max(worstLag, now - last - 10)
  last = now
}, 10)

const model = await ColBERT.fromPretrained(modelDir, { quantized: true })
const worker = new Worker(path.join(here, 'indexer.mjs'), { workerData: { modelDir, indexDir, sections, batchSize: 16 } })
process.once('SIGINT', () => worker.postMessage('stop')) // Ctrl-C: the worker aborts its batch and exits
const workerDone = new Promise((resolve, reject) => {
  worker.once('error', reject)
  worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`the indexer exited with code ${code}`))))
})

let index
const queries = await model.encode([question], { isQuery: true })
const search = async (label) => {
  await index.refresh() // see the worker's latest commit
  const [hits] = await index.search(queries, { k: 3, withDocuments: true })
  console.log(`${label}: ${index.info.documents} documents indexed, best: ${hits.map((h) => `${h.id} (${h.score.toFixed(2)})`).join(', ')}`)
  return hits
}
let searching = Promise.resolve()
let best = []
await new Promise((resolve, reject) => {
  worker.on('message', (m) => {
    if (m.type === 'committed') {
      // Search after every commit, while the worker goes on with the next batch.
      searching = searching.then(async () => {
        index ??= await PlaidIndex.open(indexDir)
        await search(`after commit ${m.generation}`)
      })
      searching.catch(reject)
    } else if (m.type === 'done') resolve()
  })
  workerDone.catch(reject)
})
await workerDone
await searching
best = await search('done')
clearInterval(timer)
console.log(`\nQ: ${question}\n${best[0].text.slice(0, 300)}…`)
console.log(`\nworst event-loop lag on the main thread: ${worstLag.toFixed(0)} ms`)
await index.close()
fs.rmSync(path.dirname(indexDir), { recursive: true, force: true })
