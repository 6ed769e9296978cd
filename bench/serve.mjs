// Load on `colbert serve` over loopback (autocannon): end-to-end query text → encode → search
// against an index of a BEIR corpus (SciFact by default), at 1/16/64 connections, with encode
// batching on and off (two servers in turn, same model and index), alone and with a concurrent
// upsert stream. Or a mixed soak (searches + upserts + deletes) with the server's RSS sampled
// every minute. Bounded in count and time; prints Markdown tables and writes JSON.
//
//   node bench/serve.mjs [--corpus ../shared/data/scifact] [--docs 5183] [--seconds 10]
//                        [--connections 1,16,64] [--tag int8] [--out bench/out/serve.json]
//   node bench/serve.mjs --soak-minutes 30 [--corpus …] [--out bench/out/soak.json]
//
// The index is built once into bench/out/serve-data-<tag>/ (the server's data folder; a run
// refuses a folder that holds anything but a previous run's index). --tag names it (default int8).
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import autocannon from 'autocannon'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: path.join(root, 'models', 'minilm-colbert') },
    corpus: { type: 'string', default: path.join(root, '..', 'shared', 'data', 'scifact') },
    docs: { type: 'string', default: '5183' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '1,16,64' },
    'soak-minutes': { type: 'string' },
    out: { type: 'string' },
    // Names the data folder, so indexes built with different models stay apart.
    tag: { type: 'string', default: 'int8' },
  },
})
const seconds = Number(values.seconds)
const soakMinutes = values['soak-minutes'] === undefined ? undefined : Number(values['soak-minutes'])
const out = values.out ?? path.join(root, 'bench', 'out', soakMinutes ? 'soak.json' : 'serve.json')
const readJsonl = (f) =>
  fs
    .readFileSync(f, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
const corpus = readJsonl(path.join(values.corpus, 'corpus.jsonl')).slice(0, Number(values.docs))
const queries = readJsonl(path.join(values.corpus, 'queries.jsonl')).map((q) => q.text)
const docText = (d) => (d.title ? `${d.title}. ${d.text}` : d.text)

const dataDir = path.join(root, 'bench', 'out', `serve-data-${values.tag}`)
const indexDir = path.join(dataDir, 'corpus')
if (fs.existsSync(dataDir)) {
  const entries = fs.readdirSync(dataDir)
  if (entries.some((e) => e !== 'corpus') || (entries.length && !fs.existsSync(path.join(indexDir, 'MANIFEST')))) {
    throw new Error(`${dataDir} holds something else than a previous run's index: remove it yourself`)
  }
}

/** Starts `colbert serve`; resolves with its address and pid once it listens. */
async function serve(extra = []) {
  const child = spawn(process.execPath, [path.join(root, 'bin', 'colbert.js'), 'serve', '--model', values.model, '--data-dir', dataDir, '--port', '0', '--max-queued', '4096', ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  const address = await new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      stderr += d
      const m = /listening on (http:\/\/\S+)/.exec(stderr)
      if (m) resolve(m[1])
    })
    child.on('exit', (code) => reject(new Error(`colbert serve exited (${code}): ${stderr}`)))
  })
  const stop = async () => {
    const exited = new Promise((r) => child.on('exit', r))
    child.kill('SIGTERM')
    return exited
  }
  return { address, child, stop }
}

const post = async (address, route, body, method = 'POST') => {
  const r = await fetch(address + route, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  if (!r.ok) throw new Error(`${method} ${route}: ${r.status} ${await r.text()}`)
  return r.json()
}
const metric = async (address, name) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(await (await fetch(`${address}/metrics`)).text())?.[1])

// Build the index through the server (upserts of 128 documents), once.
if (!fs.existsSync(path.join(indexDir, 'MANIFEST'))) {
  fs.mkdirSync(dataDir, { recursive: true })
  const s = await serve()
  const t = performance.now()
  for (let i = 0; i < corpus.length; i += 128) {
    const documents = corpus.slice(i, i + 128).map((d) => ({ id: String(d._id), text: docText(d) }))
    await post(s.address, '/indexes/corpus/documents', { documents }, 'PUT')
  }
  console.error(`indexed ${corpus.length} documents through the server in ${((performance.now() - t) / 1000).toFixed(1)} s`)
  await s.stop()
}

let q = 0
const searchRequest = () => ({ method: 'POST', path: '/indexes/corpus/search', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ queries: [queries[q++ % queries.length]], k: 10 }) })

/** A loop of upserts (8 documents each, re-sending corpus documents under new ids) until stopped. */
function upsertStream(address, prefix) {
  let stop = false
  const state = { committed: 0 }
  const done = (async () => {
    while (!stop) {
      const n = state.committed
      const documents = Array.from({ length: 8 }, (_, j) => ({ id: `${prefix}-${n}-${j}`, text: docText(corpus[(n * 8 + j) % corpus.length]) }))
      await post(address, '/indexes/corpus/documents', { documents }, 'PUT')
      state.committed++
    }
    return state.committed * 8
  })()
  return { state, stop: () => ((stop = true), done) }
}

async function load(address, connections, duration) {
  const result = await autocannon({ url: address, connections, duration, requests: [{ setupRequest: (req) => ({ ...req, ...searchRequest() }) }] })
  return {
    requests: result.requests.total,
    qps: +result.requests.average.toFixed(1),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
  }
}

if (soakMinutes === undefined) {
  const rows = []
  for (const mode of ['batched', 'unbatched']) {
    const s = await serve(mode === 'unbatched' ? ['--max-batch', '1'] : [])
    const pid = s.child.pid
    await load(s.address, 4, 2) // warm-up
    for (const connections of values.connections.split(',').map(Number)) {
      for (const withUpserts of [false, true]) {
        const stream = withUpserts ? upsertStream(s.address, `${mode}-${connections}`) : undefined
        const r = await load(s.address, connections, seconds)
        const upserted = stream ? await stream.stop() : 0
        const rss = await metric(s.address, 'process_resident_memory_bytes')
        const lag = await metric(s.address, 'nodejs_eventloop_lag_p99_seconds')
        rows.push({ mode, connections, upserts: withUpserts, ...r, upserted, rssMiB: +(rss / 2 ** 20).toFixed(0), eventLoopP99ms: +(lag * 1000).toFixed(1) })
        console.error(JSON.stringify(rows.at(-1)))
      }
    }
    await s.stop()
    console.error(`server ${pid} stopped`)
  }
  console.log('| connections | upserts | batched q/s | p50 / p99 ms | unbatched q/s | p50 / p99 ms | batched ÷ unbatched | errors | RSS MiB | event-loop p99 ms |')
  console.log('|---:|---|---:|---|---:|---|---:|---:|---:|---:|')
  for (const b of rows.filter((r) => r.mode === 'batched')) {
    const u = rows.find((r) => r.mode === 'unbatched' && r.connections === b.connections && r.upserts === b.upserts)
    console.log(
      `| ${b.connections} | ${b.upserts ? `${b.upserted} docs` : 'no'} | ${b.qps} | ${b.p50} / ${b.p99} | ${u.qps} | ${u.p50} / ${u.p99} | ${(b.qps / u.qps).toFixed(2)}× | ${b.errors} / ${u.errors} | ${b.rssMiB} / ${u.rssMiB} | ${b.eventLoopP99ms} / ${u.eventLoopP99ms} |`,
    )
  }
  fs.mkdirSync(path.dirname(out), { recursive: true })
  fs.writeFileSync(out, JSON.stringify({ corpus: values.corpus, docs: corpus.length, seconds, rows }, null, 2))
} else {
  // Soak: 8 search connections, an upsert stream and a delete stream (removing what it upserted),
  // for soakMinutes; the server's RSS and counts every minute.
  const s = await serve()
  const samples = []
  const end = Date.now() + soakMinutes * 60_000
  const stream = upsertStream(s.address, 'soak')
  // Deletes follow the upserts 16 batches behind, so the index stays about the same size and
  // RSS can be read as a leak check.
  let deleted = 0
  let stopDeletes = false
  const deletes = (async () => {
    for (let n = 0; !stopDeletes; ) {
      if (n + 16 >= stream.state.committed) {
        await new Promise((r) => setTimeout(r, 100))
        continue
      }
      const ids = Array.from({ length: 8 }, (_, j) => `soak-${n}-${j}`)
      await post(s.address, '/indexes/corpus/documents', { ids }, 'DELETE')
      deleted += ids.length
      n++
    }
  })()
  let minute = 0
  while (Date.now() < end) {
    const r = await load(s.address, 8, Math.min(60, Math.max(1, Math.round((end - Date.now()) / 1000))))
    minute++
    const rss = await metric(s.address, 'process_resident_memory_bytes')
    const docs = await metric(s.address, 'colbert_index_documents')
    samples.push({ minute, ...r, rssMiB: +(rss / 2 ** 20).toFixed(0), documents: docs, deleted })
    console.error(JSON.stringify(samples.at(-1)))
  }
  const upserted = await stream.stop()
  stopDeletes = true
  await deletes
  const code = await s.stop()
  console.log(`soak: ${soakMinutes} min, ${samples.reduce((a, x) => a + x.requests, 0)} searches, ${upserted} documents upserted, ${deleted} deleted, exit ${code}`)
  console.log('| minute | searches/s | p50 / p99 ms | errors | RSS MiB | documents |')
  console.log('|---:|---:|---|---:|---:|---:|')
  for (const x of samples) console.log(`| ${x.minute} | ${x.qps} | ${x.p50} / ${x.p99} | ${x.errors} | ${x.rssMiB} | ${x.documents} |`)
  fs.mkdirSync(path.dirname(out), { recursive: true })
  fs.writeFileSync(out, JSON.stringify({ corpus: values.corpus, docs: corpus.length, soakMinutes, upserted, deleted, samples }, null, 2))
}
