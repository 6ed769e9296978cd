// Micro-batching across callers: N concurrent callers, each encoding one query at a time back to
// back, with batching on (the default) and off (`batching: false`), in one run. Prints queries/s
// and per-call p50/p99 latency for each N and both modes, and writes them as JSON.
//
//   node bench/batching.mjs [--model models/minilm-colbert] [--queries <queries.jsonl>]
//                           [--callers 1,16,64] [--seconds 10] [--fp32] [--out bench/out/batching.json]
//
// Queries default to SciFact's (../shared/data/scifact/queries.jsonl); each caller cycles through
// them from its own offset. Modes alternate per N (on, off) on one loaded model each.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { ColBERT, threadBudget } = await import(path.join(root, 'dist', 'index.js'))

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: path.join(root, 'models', 'minilm-colbert') },
    queries: { type: 'string', default: path.join(root, '..', 'shared', 'data', 'scifact', 'queries.jsonl') },
    callers: { type: 'string', default: '1,16,64' },
    seconds: { type: 'string', default: '10' },
    fp32: { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(root, 'bench', 'out', 'batching.json') },
  },
})

const queries = fs
  .readFileSync(values.queries, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l).text)
const seconds = Number(values.seconds)
const quantized = values.fp32 ? false : undefined
const sizes = []
const on = await ColBERT.fromPretrained(values.model, { quantized, batching: { onBatch: (n) => sizes.push(n) } })
const off = await ColBERT.fromPretrained(values.model, { quantized, batching: false })
console.error(`model ${on.onnxPath}, ${on.threads} intra-op thread(s), budget ${threadBudget()}, ${queries.length} queries, ${seconds} s per case`)

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]

async function run(model, callers) {
  // Warm up: every caller once.
  await Promise.all(Array.from({ length: callers }, (_, c) => model.encode([queries[c % queries.length]])))
  sizes.length = 0
  const ms = []
  const end = performance.now() + seconds * 1000
  await Promise.all(
    Array.from({ length: callers }, async (_, c) => {
      let i = c * 7
      while (performance.now() < end) {
        const t = performance.now()
        await model.encode([queries[i++ % queries.length]])
        ms.push(performance.now() - t)
      }
    }),
  )
  const s = ms.sort((a, b) => a - b)
  const elapsed = seconds + (s.at(-1) ?? 0) / 1000
  return {
    calls: s.length,
    qps: +(s.length / elapsed).toFixed(1),
    p50: +pct(s, 50).toFixed(2),
    p99: +pct(s, 99).toFixed(2),
    meanBatch: sizes.length ? +(sizes.reduce((a, b) => a + b, 0) / sizes.length).toFixed(1) : 1,
  }
}

const rows = []
for (const callers of values.callers.split(',').map(Number)) {
  const batched = await run(on, callers)
  const unbatched = await run(off, callers)
  rows.push({ callers, batched, unbatched, ratio: +(batched.qps / unbatched.qps).toFixed(2) })
  console.error(JSON.stringify(rows.at(-1)))
}

console.log('| callers | batched q/s | p50 / p99 ms | mean batch | unbatched q/s | p50 / p99 ms | batched ÷ unbatched |')
console.log('|---:|---:|---|---:|---:|---|---:|')
for (const r of rows) {
  console.log(
    `| ${r.callers} | ${r.batched.qps} | ${r.batched.p50} / ${r.batched.p99} | ${r.batched.meanBatch} | ${r.unbatched.qps} | ${r.unbatched.p50} / ${r.unbatched.p99} | ${r.ratio}× |`,
  )
}
fs.mkdirSync(path.dirname(values.out), { recursive: true })
fs.writeFileSync(values.out, JSON.stringify({ model: on.onnxPath, threads: on.threads, budget: threadBudget(), seconds, rows }, null, 2))
