// The PLAID index through the public API, on real embeddings: the stand-in model encodes Medline
// documents and queries in setup (no Python, no network).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { Worker } from 'node:worker_threads'

import test from 'ava'

import { ColBERT, ColbertError, maxsim, PlaidIndex, Retriever, type Embeddings } from '../index'
import { DATA, dataTest, ROOT, STANDIN, withData } from './helpers'

const MEDLINE = path.join(DATA, 'medline')
const readJsonl = (f: string) =>
  fs
    .readFileSync(path.join(MEDLINE, f), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { _id: string; title?: string; text: string })

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-plaid-'))

/** Rows of items [a, b) as a new batch. */
function slice(e: Embeddings, a: number, b: number): Embeddings {
  const base = e.offsets[a]
  return {
    dim: e.dim,
    offsets: Uint32Array.from(e.offsets.subarray(a, b + 1), (o) => o - base),
    data: e.data.slice(base * e.dim, e.offsets[b] * e.dim),
  }
}

const setup = withData(async () => {
  const docs = readJsonl('corpus.jsonl').slice(0, 300)
  const queries = readJsonl('queries.jsonl')
  const model = await ColBERT.fromPretrained(STANDIN, { quantized: true })
  const d = await model.encode(docs.map((x) => `${x.title ?? ''} ${x.text}`.trim()), { isQuery: false })
  const q = await model.encode(queries.map((x) => x.text), { isQuery: true })
  const ids = docs.map((x) => `med-${x._id}`)
  const dir = tmp()
  // Default options: K = 2^floor(log2(16·sqrt(tokens))) centroids, nbits 4.
  const index = await PlaidIndex.create(dir)
  await index.add(ids, d)
  return { ids, d, q, dir, index }
})

/** Exact top-k ids per query over the given documents. */
function exactTop(q: Embeddings, d: Embeddings, ids: string[], k: number): string[][] {
  const s = maxsim(q, d)
  const n = ids.length
  return Array.from({ length: q.offsets.length - 1 }, (_, qi) => {
    const row = s.subarray(qi * n, (qi + 1) * n)
    return [...row.keys()].sort((a, b) => row[b] - row[a]).slice(0, k).map((i) => ids[i])
  })
}

dataTest('recall@10 against exact MaxSim is at least 0.95 with default search settings', async (t) => {
  const { ids, d, q, index } = await setup
  const hits = await index.search(q, { k: 10 })
  const truth = exactTop(q, d, ids, 10)
  let recall = 0
  hits.forEach((h, i) => {
    t.true(h.length === 10)
    for (let j = 1; j < h.length; j++) t.true(h[j - 1].score >= h[j].score, 'best first')
    recall += h.filter((x) => truth[i].includes(x.id)).length / 10
  })
  recall /= hits.length
  t.log(`recall@10 = ${recall.toFixed(4)} over ${hits.length} Medline queries, 300 documents`)
  t.true(recall >= 0.95, `recall@10 ${recall}`)
})

dataTest('info describes the committed state and reopening gives the same results', async (t) => {
  const { q, dir, index } = await setup
  const info = index.info
  t.is(info.documents, 300)
  t.is(info.dim, 128)
  t.is(info.nbits, 4)
  t.is(info.formatVersion, 3)
  t.true(info.bytesOnDisk > 0)
  const again = await PlaidIndex.open(dir)
  t.deepEqual(await again.search(q, { k: 5 }), await index.search(q, { k: 5 }))
  await again.close()
})

dataTest('subset restricts the search to the given ids', async (t) => {
  const { ids, q, index } = await setup
  const subset = ids.filter((_, i) => i % 3 === 0)
  const hits = await index.search(q, { k: 10, subset })
  const allowed = new Set(subset)
  for (const h of hits) for (const x of h) t.true(allowed.has(x.id))
})

dataTest('add, delete and reopen keep ids stable; deleted documents never come back', async (t) => {
  const { ids, d, q } = await setup
  const dir = tmp()
  const index = await PlaidIndex.create(dir, { numCentroids: 128, nbits: 2 })
  const first = await index.add(ids.slice(0, 200), slice(d, 0, 200))
  t.true(first.trained)
  t.like(index.info.drift, { embeddings: 0, outlierFraction: 0 })
  t.true(index.info.drift.trainedResidualNorm > 0)
  const second = await index.add(ids.slice(200), slice(d, 200, 300))
  t.false(second.trained, 'later adds reuse the codebook')
  // Drift: the later add is counted; Medline documents are one distribution, so their
  // residuals are like the training sample's.
  const drift = index.info.drift
  t.is(drift.embeddings, d.offsets[300] - d.offsets[200])
  t.true(drift.outlierFraction > 0 && drift.outlierFraction < 0.6, JSON.stringify(drift))
  t.true(Math.abs(drift.meanResidualNorm / drift.trainedResidualNorm - 1) < 0.3, JSON.stringify(drift))
  t.is(index.info.documents, 300)
  const victims = ids.slice(0, 50)
  t.is(await index.delete([...victims, 'no-such-id']), 50)
  t.is(index.info.documents, 250)
  const reopened = await PlaidIndex.open(dir)
  t.is(reopened.info.documents, 250)
  const hits = await reopened.search(q, { k: 20 })
  const gone = new Set(victims)
  for (const h of hits) for (const x of h) t.false(gone.has(x.id))
  // The survivors keep their ids: searching the subset of survivors finds them by id.
  const some = await reopened.search(q, { k: 3, subset: ids.slice(250) })
  for (const h of some) for (const x of h) t.true(ids.slice(250).includes(x.id))
  // A deleted id can be added again.
  await reopened.add(victims.slice(0, 1), slice(d, 0, 1))
  t.is(reopened.info.documents, 251)
  // Rebuild compacts the tombstones away and keeps every live id searchable.
  const stages = new Set<string>()
  const rebuilt = await reopened.rebuild({ onProgress: (p) => stages.add(p.stage) })
  t.true(rebuilt.trained)
  t.is(reopened.info.documents, 251)
  t.is(reopened.info.deleted, 0)
  t.true(stages.has('kmeans'))
  const after = await reopened.search(q, { k: 5, subset: ids.slice(250) })
  for (const h of after) for (const x of h) t.true(ids.slice(250).includes(x.id))
})

dataTest('replace upserts in one transaction; small adds merge segments; compact reclaims deleted space', async (t) => {
  const { ids, d, q } = await setup
  const dir = tmp()
  const index = await PlaidIndex.create(dir, { numCentroids: 64, nbits: 2 })
  await index.add(ids.slice(0, 100), slice(d, 0, 100))
  const targets = ids.slice(0, 10)
  const fresh = slice(d, 100, 110)
  const err = await t.throwsAsync(index.add(targets, fresh), { instanceOf: ColbertError })
  t.is(err?.code, 'INVALID_ARGUMENT', 'live ids need replace')
  await t.throwsAsync(index.add(targets, fresh, { replace: 'yes' as unknown as boolean }), { message: /replace must be a boolean/ })
  const before = index.info.generation
  const r = await index.add(targets, fresh, { replace: true })
  t.like(r, { added: 10, replaced: 10, generation: before + 1 })
  t.is(index.info.documents, 100)
  t.is(index.info.deleted, 10)
  // The ids now hold the new embeddings: scores are near exact MaxSim against them.
  const hits = await index.search(q, { k: 10, subset: targets })
  const exactNew = maxsim(q, fresh)
  const exactOld = maxsim(q, slice(d, 0, 10))
  let errNew = 0
  let errOld = 0
  hits.forEach((h, qi) => {
    t.deepEqual(h.map((x) => x.id).sort(), [...targets].sort())
    for (const x of h) {
      const j = targets.indexOf(x.id)
      errNew += Math.abs(x.score - exactNew[qi * 10 + j])
      errOld += Math.abs(x.score - exactOld[qi * 10 + j])
    }
  })
  t.true(errNew * 2 < errOld, `mean error against the new embeddings ${errNew} vs the old ${errOld}`)
  // One document per add: segments are merged as they go (binary counter), nothing is lost.
  let merges = 0
  for (let i = 110; i < 150; i++) merges += (await index.add([ids[i]], slice(d, i, i + 1))).mergedSegments > 0 ? 1 : 0
  t.true(merges >= 10, `${merges} merging adds`)
  t.true(index.info.segments <= 7, `${index.info.segments} segments`)
  t.is(index.info.documents, 140)
  const reopened = await PlaidIndex.open(dir)
  t.is(reopened.info.documents, 140)
  const again = await reopened.search(q, { k: 10, subset: ids.slice(110, 150) })
  for (const h of again) t.is(h.length, 10)
  const results = await reopened.search(q, { k: 5 })
  t.deepEqual(results, await index.search(q, { k: 5 }))
  // compact: one segment, deleted documents gone, the same results (nothing is retrained).
  await reopened.delete(ids.slice(20, 40))
  const deleted = reopened.info.deleted
  const beforeCompact = await reopened.search(q, { k: 5 })
  t.true(deleted >= 20)
  const aborted = new AbortController()
  aborted.abort()
  const abortErr = await t.throwsAsync(reopened.compact({ signal: aborted.signal }), { instanceOf: ColbertError })
  t.is(abortErr?.code, 'ABORTED')
  t.is(reopened.info.deleted, deleted, 'an aborted compaction changes nothing')
  const compacted = await reopened.compact()
  t.like(compacted, { reclaimed: deleted, trained: false, added: 0 })
  t.like(reopened.info, { documents: 120, deleted: 0, segments: 1 })
  t.deepEqual(await reopened.search(q, { k: 5 }), beforeCompact)
  t.deepEqual(await (await PlaidIndex.open(dir)).search(q, { k: 5 }), beforeCompact)
})

dataTest('a streamed add from an async iterable equals a single add', async (t) => {
  const { ids, d, q } = await setup
  async function* batches() {
    for (let a = 0; a < 300; a += 64) yield { ids: ids.slice(a, a + 64), embeddings: slice(d, a, Math.min(a + 64, 300)) }
  }
  const events: string[] = []
  const streamed = await PlaidIndex.create(tmp(), { numCentroids: 256 })
  await streamed.add(batches(), { onProgress: (p) => events.push(p.stage) })
  const whole = await PlaidIndex.create(tmp(), { numCentroids: 256 })
  await whole.add(ids, d)
  t.deepEqual(await streamed.search(q, { k: 10 }), await whole.search(q, { k: 10 }))
  t.true(events.includes('push') && events.includes('kmeans') && events.includes('compress'), events.join(','))
})

dataTest('bad input gives coded errors and changes nothing', async (t) => {
  const { ids, d } = await setup
  const dir = tmp()
  const index = await PlaidIndex.create(dir, { numCentroids: 64 })
  const code = async (p: Promise<unknown>) => (await t.throwsAsync(p, { instanceOf: ColbertError }))?.code
  t.is(await code(index.add(ids.slice(0, 2), slice(d, 0, 3))), 'INVALID_ARGUMENT', 'ids vs documents')
  t.is(await code(index.add(['a', 'a'], slice(d, 0, 2))), 'INVALID_ARGUMENT', 'duplicate ids')
  t.is(await code(index.add(['a', ''], slice(d, 0, 2))), 'INVALID_ARGUMENT', 'empty id')
  const nan = slice(d, 0, 1)
  nan.data[3] = Number.NaN
  t.is(await code(index.add(['x'], nan)), 'INVALID_ARGUMENT', 'non-finite')
  await index.add(ids.slice(0, 100), slice(d, 0, 100))
  const wrongDim = { dim: 64, offsets: Uint32Array.of(0, 1), data: new Float32Array(64) }
  t.is(await code(index.add(['y'], wrongDim)), 'INVALID_ARGUMENT', 'wrong dim')
  t.is(await code(index.add(ids.slice(0, 1), slice(d, 0, 1))), 'INVALID_ARGUMENT', 'id already present')
  t.is(await code(index.search(wrongDim)), 'INVALID_ARGUMENT', 'query dim')
  t.is(await code(index.search(slice(d, 0, 1), { k: 0 })), 'INVALID_ARGUMENT')
  t.is(index.info.documents, 100, 'failed calls changed nothing')
  t.is(await code(PlaidIndex.create(dir)), 'INDEX_EXISTS')
  t.is(await code(PlaidIndex.open(path.join(dir, 'missing'))), 'INDEX_NOT_FOUND')
  await index.close()
  t.is(await code(index.search(slice(d, 0, 1))), 'CLOSED')
})

dataTest('writes from one process queue in order; another process gets INDEX_LOCKED; an aborted add leaves the index unchanged', async (t) => {
  const { ids, d } = await setup
  const index = await PlaidIndex.create(tmp(), { numCentroids: 64 })
  await index.add(ids.slice(0, 50), slice(d, 0, 50))
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  let opened!: () => void
  const transactionOpen = new Promise<void>((r) => (opened = r))
  async function* slow() {
    yield { ids: ids.slice(50, 60), embeddings: slice(d, 50, 60) }
    // Asked for the next batch: the first was pushed, so the transaction holds the lock.
    opened()
    await gate
  }
  const controller = new AbortController()
  const pending = index.add(slow(), { signal: controller.signal })
  await transactionOpen
  // Behind the open transaction: an add on this handle, a delete on a second handle.
  const other = await PlaidIndex.open(index.dir)
  const order: string[] = []
  const second = index.add(ids.slice(60, 61), slice(d, 60, 61)).then((r) => (order.push('add'), r))
  const deleted = other.delete([ids[0]]).then((n) => (order.push('delete'), n))
  // A queued add that is aborted rejects at once and never runs.
  const abortQueued = new AbortController()
  const queued = index.add(ids.slice(61, 62), slice(d, 61, 62), { signal: abortQueued.signal })
  abortQueued.abort()
  t.is((await t.throwsAsync(queued, { instanceOf: ColbertError }))?.code, 'ABORTED')
  // Another process is refused while this one writes.
  const child = spawnSync(
    process.execPath,
    ['-e', `require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))}).PlaidIndex.open(process.argv[1]).then((i) => i.delete(['x'])).then(() => console.log('deleted'), (e) => console.log(e.code))`, index.dir],
    { encoding: 'utf8' },
  )
  t.is(child.stdout.trim(), 'INDEX_LOCKED', child.stderr)
  t.deepEqual(order, [], 'nothing queued ran while the transaction was open')
  controller.abort()
  release()
  const aborted = await t.throwsAsync(pending, { instanceOf: ColbertError })
  t.is(aborted?.code, 'ABORTED')
  t.is((await second).added, 1)
  t.is(await deleted, 1)
  t.deepEqual(order, ['add', 'delete'], 'queued writes ran in the order they were called')
  await index.refresh()
  t.is(index.info.documents, 50, '50 + 1 added - 1 deleted; the aborted adds left nothing')
  t.deepEqual(await index.documents([ids[61]]), [null])
  await other.close()
  await index.close()
})

dataTest('searches running while an add commits see the old or the new state, never a mix', async (t) => {
  const { ids, d, q } = await setup
  const index = await PlaidIndex.create(tmp(), { numCentroids: 128 })
  await index.add(ids.slice(0, 150), slice(d, 0, 150))
  const before = new Set(ids.slice(0, 150))
  const adding = index.add(ids.slice(150), slice(d, 150, 300))
  const during = await Promise.all(Array.from({ length: 6 }, () => index.search(q, { k: 10 })))
  await adding
  for (const hits of during) for (const h of hits) for (const x of h) t.true(ids.includes(x.id))
  const after = await index.search(q, { k: 10, subset: ids.slice(150) })
  t.true(after.some((h) => h.length > 0), 'new documents are searchable after the commit')
  t.true(before.size === 150)
})

dataTest('many concurrent searches from the event loop and worker_threads agree', async (t) => {
  const { q, dir, index } = await setup
  const want = await index.search(q, { k: 10 })
  const local = await Promise.all(Array.from({ length: 8 }, () => index.search(q, { k: 10 })))
  for (const r of local) t.deepEqual(r, want)
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    const { PlaidIndex } = require(workerData.entry)
    const q = { dim: workerData.dim, offsets: Uint32Array.from(workerData.offsets), data: Float32Array.from(workerData.data) }
    PlaidIndex.open(workerData.dir)
      .then((i) => i.search(q, { k: 10 }))
      .then((hits) => parentPort.postMessage({ hits }))
      .catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }))
  `
  const run = () =>
    new Promise<{ hits?: unknown; error?: string }>((resolve, reject) => {
      const w = new Worker(code, {
        eval: true,
        workerData: { entry: path.join(ROOT, 'dist', 'index.js'), dir, dim: q.dim, offsets: Array.from(q.offsets), data: Array.from(q.data) },
      })
      w.once('message', (m) => {
        resolve(m)
        void w.terminate()
      })
      w.once('error', reject)
    })
  const results = await Promise.all([run(), run(), run()])
  for (const r of results) {
    t.falsy(r.error, r.error)
    t.deepEqual(r.hits, want)
  }
})

dataTest('stored text and metadata come back with hits, survive reopen and rebuild, and filters restrict the search', async (t) => {
  const { ids, d, q } = await setup
  const n = 120
  const docs = readJsonl('corpus.jsonl').slice(0, n)
  const stored = docs.map((x, i) => ({
    text: x.text,
    metadata: { title: x.title ?? '', half: i < n / 2 ? 'first' : 'second', n: i, tags: i % 3 === 0 ? ['three'] : [] },
  }))
  const dir = tmp()
  const index = await PlaidIndex.create(dir)
  // Half with documents in one batch, half streamed; the rest of the fields absent on purpose.
  await index.add([
    { ids: ids.slice(0, 60), embeddings: slice(d, 0, 60), documents: stored.slice(0, 60) },
    { ids: ids.slice(60, n), embeddings: slice(d, 60, n), documents: stored.slice(60, n) },
  ])
  t.true(index.info.storedBytes > 0)
  const got = await index.documents([ids[0], 'missing', ids[n - 1]])
  t.deepEqual(got, [stored[0], null, stored[n - 1]])

  const hits = await index.search(q, { k: 5, withDocuments: true })
  for (const h of hits.flat()) {
    const i = ids.indexOf(h.id)
    t.is(h.text, stored[i].text)
    t.deepEqual(h.metadata, stored[i].metadata)
  }

  // A filter equals a subset search over the ids it selects.
  const filter = { half: 'second', n: { $lt: 100 } }
  const selected = await index.select(filter)
  t.deepEqual(selected, ids.slice(60, 100))
  const viaFilter = await index.search(q, { k: 10, filter })
  const viaSubset = await index.search(q, { k: 10, subset: selected })
  t.deepEqual(viaFilter, viaSubset)
  t.true(viaFilter.flat().every((h) => selected.includes(h.id)))
  t.deepEqual(await index.select({ tags: 'three', half: 'first' }), ids.slice(0, 60).filter((_, i) => i % 3 === 0))
  t.deepEqual(await index.select({ $or: [{ n: 0 }, { n: { $gte: 119 } }] }), [ids[0], ids[119]])

  // The Retriever is the index's search (PyLate's retrieve.ColBERT over a PLAID index).
  const retriever = new Retriever(index)
  t.deepEqual(await retriever.retrieve(q, { k: 10, filter }), viaFilter)
  t.deepEqual(await retriever.retrieve(q), await index.search(q, { k: 10 }))

  // Bad stored documents and filters are coded errors and change nothing.
  const before = index.info.generation
  const e1 = slice(d, n, n + 1)
  for (const documents of [[{ metadata: [1] }], [{ text: 3 }], [{ body: 'x' }], [], [{ metadata: { big: 1n } }]] as unknown[]) {
    const err = await t.throwsAsync(index.add([ids[n]], e1, { documents: documents as never }))
    t.is((err as ColbertError).code, 'INVALID_ARGUMENT', JSON.stringify(documents, (_, v) => (typeof v === 'bigint' ? 'bigint' : v)))
  }
  for (const f of [{ n: { $regex: 'x' } }, { $or: [] }, [1], 'x']) {
    const err = await t.throwsAsync(index.search(q, { filter: f as never }))
    t.is((err as ColbertError).code, 'INVALID_ARGUMENT')
    t.regex(err!.message, /filter/)
  }
  t.is(index.info.generation, before)

  // Reopen, delete, rebuild: the fields stay with their ids.
  await index.close()
  const again = await PlaidIndex.open(dir)
  await again.delete([ids[1]])
  await again.rebuild()
  const after = await again.documents([ids[0], ids[1], ids[2]])
  t.deepEqual(after, [stored[0], null, stored[2]])
  t.deepEqual(await again.select(filter), ids.slice(60, 100))
  await again.close()
})

test('an index written by the format-2 release opens, searches as it did, and compact() upgrades it', async (t) => {
  // The fixture the Rust compatibility test uses (crates/colbert-plaid/tests/compat.rs), through
  // the public API. No collection needed: it carries its own query embeddings and results.
  const fixture = path.join(ROOT, 'crates', 'colbert-plaid', 'tests', 'fixtures', 'format-2')
  const dir = tmp()
  for (const f of fs.readdirSync(path.join(fixture, 'index'))) fs.copyFileSync(path.join(fixture, 'index', f), path.join(dir, f))
  const raw = (f: string) => {
    const b = fs.readFileSync(path.join(fixture, f))
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)
  }
  const queries: Embeddings = { dim: 64, offsets: new Uint32Array(raw('queries.offsets.u32')), data: new Float32Array(raw('queries.f32')) }
  const expected = JSON.parse(fs.readFileSync(path.join(fixture, 'expected.json'), 'utf8')) as Record<string, [string, number][][]>
  const index = await PlaidIndex.open(dir)
  try {
    const check = async (when: string) => {
      const hits = await index.search(queries, { k: 10 })
      t.is(hits.length, expected.default.length)
      hits.forEach((h, i) => {
        t.deepEqual(h.map((x) => x.id), expected.default[i].map((x) => x[0]), `${when}, query ${i}`)
        h.forEach((x, j) => t.true(Math.abs(x.score - expected.default[i][j][1]) <= 1e-4, `${when}, query ${i}`))
      })
    }
    t.is(index.info.formatVersion, 2)
    await check('as written')
    await index.compact()
    t.is(index.info.formatVersion, 3)
    await check('after compact')
  } finally {
    await index.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
