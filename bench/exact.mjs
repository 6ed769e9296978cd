// Exact MaxSim ranking (the ground truth for recall) of a dump made by dump-embeddings.mjs: the
// top 100 documents of every query, written to <dump>/exact_top100.json.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { readDump } from './dump.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { maxsim } = createRequire(import.meta.url)(path.join(root, 'dist', 'index.js'))
const dir = path.resolve(process.argv[2] ?? path.join(root, 'bench', 'out', 'scifact'))
const { meta, docs, queries } = readDump(dir)
const t = performance.now()
const scores = maxsim(queries, docs)
const seconds = (performance.now() - t) / 1000
const nd = meta.documents.length
const top = meta.queries.map((_, qi) => {
  const row = scores.subarray(qi * nd, (qi + 1) * nd)
  return Array.from(row.keys())
    .sort((a, b) => row[b] - row[a])
    .slice(0, 100)
    .map((i) => [meta.documents[i], row[i]])
})
fs.writeFileSync(path.join(dir, 'exact_top100.json'), JSON.stringify({ seconds, top }))
console.log(`exact MaxSim: ${meta.queries.length} × ${nd} in ${seconds.toFixed(1)} s`)
