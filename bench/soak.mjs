// Soak run: one process keeps searching, upserting, deleting and compacting one index (and
// rebuilds it once, half-way) while a second process searches it, for a bounded time. Every
// minute it samples both processes' memory and open file descriptors; at the end every
// acknowledged document must be present with its text and metadata, and no deleted one.
//
//   node bench/soak.mjs [--minutes 60] [--dir bench/out/soak-index] [--docs 2000] [--out bench/out/soak.json]
//
// Writes are issued concurrently on purpose: they queue in the process (ARCHITECTURE.md §9).
// Exits 1 if the final check fails or any operation failed unexpectedly.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { generator } from './synthetic.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { PlaidIndex } = await import(path.join(root, 'dist', 'index.js'))

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '60' },
    dir: { type: 'string', default: path.join(root, 'bench', 'out', 'soak-index') },
    docs: { type: 'string', default: '2000' },
    out: { type: 'string', default: path.join(root, 'bench', 'out', 'soak.json') },
    'searcher-child': { type: 'boolean' },
  },
})

if (values['searcher-child']) {
  // The second process: search and refresh until stdin closes, reporting counts once a minute.
  const index = await PlaidIndex.open(values.dir)
  const gen = generator({ seed: 7, minTokens: 8, maxTokens: 24, streamSeed: 99 })
  const queries = gen.queries(64)
  let searches = 0
  let errors = 0
  let lastError = ''
  let stop = false
  process.stdin.on('end', () => (stop = true)).resume()
  const report = () => process.stdout.write(JSON.stringify({ searches, errors, lastError }) + '\n')
  const timer = setInterval(report, 60_000)
  while (!stop) {
    try {
      await index.search(queries[searches % queries.length], { k: 10 })
      if (searches % 50 === 0) await index.refresh()
      searches++
    } catch (e) {
      errors++
      lastError = `${e.code}: ${e.message}`
    }
    await new Promise((r) => setTimeout(r, 5))
  }
  clearInterval(timer)
  report()
  await index.close()
  process.exit(0)
}

const minutes = Number(values.minutes)
const dir = path.resolve(values.dir)
const started = Date.now()
const deadline = started + minutes * 60_000
// The soak's own folder: it is removed and recreated only if it is a previous soak index.
if (fs.existsSync(dir)) {
  if (!fs.existsSync(path.join(dir, 'MANIFEST'))) throw new Error(`${dir} exists and is not an index: choose another --dir`)
  fs.rmSync(dir, { recursive: true })
}
fs.mkdirSync(path.dirname(dir), { recursive: true })

const gen = generator({ seed: 7, minTokens: 8, maxTokens: 24 })
const index = await PlaidIndex.create(dir)
/** What the index must hold: id → { text, metadata } of every acknowledged write. */
const expected = new Map()
const deleted = new Set()
const stored = (id, version) => ({ text: `document ${id}, version ${version}`, metadata: { id, version, even: Number(id.slice(4)) % 2 === 0 } })

const n0 = Number(values.docs)
const first = gen.batch(0, n0)
await index.add(first.ids, first.embeddings, { documents: first.ids.map((id) => stored(id, 0)) })
for (const id of first.ids) expected.set(id, stored(id, 0))
let nextId = n0

const counts = { searches: 0, upserts: 0, upsertedDocs: 0, deletes: 0, deletedDocs: 0, compactions: 0, rebuilds: 0, failures: 0 }
const failures = []
const fail = (what, e) => {
  counts.failures++
  if (failures.length < 20) failures.push(`${what}: ${e?.code ?? ''} ${e?.message ?? e}`)
}
const rand = gen.rand
const pick = () => {
  const ids = [...expected.keys()]
  return ids[Math.floor(rand() * ids.length)]
}

const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--searcher-child', '--dir', dir], { stdio: ['pipe', 'pipe', 'inherit'] })
let childReport = { searches: 0, errors: 0, lastError: '' }
child.stdout.on('data', (b) => {
  for (const line of String(b).trim().split('\n')) if (line) childReport = JSON.parse(line)
})

const fds = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length
const rssMb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024
const samples = []
const sample = () => {
  const info = index.info
  samples.push({
    minute: Math.round((Date.now() - started) / 60_000),
    rssMb: +rssMb(process.pid).toFixed(1),
    fds: fds(process.pid),
    childRssMb: child.exitCode === null ? +rssMb(child.pid).toFixed(1) : null,
    childFds: child.exitCode === null ? fds(child.pid) : null,
    documents: info.documents,
    deleted: info.deleted,
    segments: info.segments,
    bytesOnDisk: info.bytesOnDisk,
    ...counts,
    childSearches: childReport.searches,
    childErrors: childReport.errors,
  })
  console.log(JSON.stringify(samples.at(-1)))
}
sample()
const sampler = setInterval(sample, 60_000)

const running = () => Date.now() < deadline
const queries = gen.queries(64)

async function searcher() {
  while (running()) {
    try {
      await index.search(queries[counts.searches % queries.length], { k: 10, filter: counts.searches % 3 === 0 ? { even: true } : undefined })
      counts.searches++
    } catch (e) {
      fail('search', e)
    }
    await new Promise((r) => setTimeout(r, 5)) // a steady load, not a benchmark: leave the cores to the writers
  }
}

async function upserter() {
  let version = 1
  while (running()) {
    // Half new documents, half replacements of live ones.
    const fresh = gen.batch(nextId, 10)
    nextId += 10
    const replaced = Array.from({ length: 10 }, pick).filter((id, i, a) => id && a.indexOf(id) === i)
    const again = gen.batch(0, replaced.length)
    const ids = [...fresh.ids, ...replaced]
    const embeddings = concat(fresh.embeddings, again.embeddings)
    const v = version++
    try {
      await index.add(ids, embeddings, { replace: true, documents: ids.map((id) => stored(id, v)) })
      for (const id of ids) {
        expected.set(id, stored(id, v))
        deleted.delete(id)
      }
      counts.upserts++
      counts.upsertedDocs += ids.length
    } catch (e) {
      fail('upsert', e)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function deleter() {
  while (running()) {
    const ids = Array.from({ length: 8 }, pick).filter((id, i, a) => id && a.indexOf(id) === i)
    try {
      await index.delete(ids)
      for (const id of ids) {
        expected.delete(id)
        deleted.add(id)
      }
      counts.deletes++
      counts.deletedDocs += ids.length
    } catch (e) {
      fail('delete', e)
    }
    await new Promise((r) => setTimeout(r, 80))
  }
}

async function maintainer() {
  let rebuilt = false
  while (running()) {
    await new Promise((r) => setTimeout(r, Math.min(120_000, Math.max(0, deadline - Date.now()))))
    if (!running()) break
    try {
      if (!rebuilt && Date.now() > started + (deadline - started) / 2) {
        await index.rebuild()
        rebuilt = true
        counts.rebuilds++
      } else {
        await index.compact()
        counts.compactions++
      }
    } catch (e) {
      fail('maintenance', e)
    }
  }
}

function concat(a, b) {
  const offsets = new Uint32Array(a.offsets.length + b.offsets.length - 1)
  offsets.set(a.offsets)
  const base = a.offsets.at(-1)
  for (let i = 1; i < b.offsets.length; i++) offsets[a.offsets.length - 1 + i] = base + b.offsets[i]
  const data = new Float32Array(a.data.length + b.data.length)
  data.set(a.data)
  data.set(b.data, a.data.length)
  return { dim: a.dim, offsets, data }
}

await Promise.all([searcher(), searcher(), upserter(), deleter(), maintainer()])
clearInterval(sampler)
child.stdin.end()
await new Promise((r) => child.on('exit', r))
sample()

// The final check, through a fresh handle.
const check = await PlaidIndex.open(dir)
const ids = [...expected.keys()]
const docs = await check.documents(ids)
let missing = 0
let wrong = 0
docs.forEach((d, i) => {
  if (d === null) missing++
  else if (JSON.stringify(d) !== JSON.stringify(expected.get(ids[i]))) wrong++
})
const resurrected = (await check.documents([...deleted])).filter((d) => d !== null).length
const result = {
  minutes,
  acknowledged: ids.length,
  deletedIds: deleted.size,
  missing,
  wrong,
  resurrected,
  liveInIndex: check.info.documents,
  counts,
  child: childReport,
  failures,
  samples,
}
await check.close()
await index.close()
fs.mkdirSync(path.dirname(values.out), { recursive: true })
fs.writeFileSync(values.out, JSON.stringify(result, null, 2) + '\n')
console.log(JSON.stringify({ ...result, samples: undefined }))
const pass = missing === 0 && wrong === 0 && resurrected === 0 && result.liveInIndex === ids.length && counts.failures === 0 && childReport.errors === 0
console.log(pass ? 'soak: PASS' : 'soak: FAIL')
process.exit(pass ? 0 : 1)
