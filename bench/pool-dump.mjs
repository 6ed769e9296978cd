// Pools the documents of a dump made by dump-embeddings.mjs (`poolEmbeddings`, PyLate's
// hierarchical token pooling) into a new dump that every engine then indexes: same queries, the
// unpooled dump's exact MaxSim ground truth (exact_top100.json), and meta.tokens_unpooled.
//   node bench/pool-dump.mjs <dump> <out> --pool-factor 2
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { readDump } from './dump.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const [dumpDir, outDir, flag, value] = process.argv.slice(2)
if (!dumpDir || !outDir || flag !== '--pool-factor') throw new Error('usage: pool-dump.mjs <dump> <out> --pool-factor <k>')
const poolFactor = Number(value)
const { poolEmbeddings } = createRequire(import.meta.url)(path.join(root, 'dist', 'index.js'))
const { meta, docs } = readDump(dumpDir)
const t = performance.now()
const pooled = await poolEmbeddings(docs, { poolFactor })
const seconds = (performance.now() - t) / 1000
fs.mkdirSync(outDir, { recursive: true })
const write = (name, typed) => fs.writeFileSync(path.join(outDir, name), Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength))
write('docs.f32', pooled.data)
write('docs.offsets.u32', pooled.offsets)
for (const f of ['queries.f32', 'queries.offsets.u32', 'exact_top100.json']) fs.copyFileSync(path.join(dumpDir, f), path.join(outDir, f))
const tokens = pooled.data.length / pooled.dim
fs.writeFileSync(
  path.join(outDir, 'meta.json'),
  JSON.stringify({ ...meta, tokens, tokens_unpooled: meta.tokens_unpooled ?? meta.tokens, pool_factor: poolFactor, pool_seconds: seconds }),
)
console.log(`${outDir}: pool factor ${poolFactor}, ${meta.tokens} → ${tokens} tokens in ${seconds.toFixed(1)} s`)
