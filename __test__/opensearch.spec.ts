// colbert/opensearch against a real two-node OpenSearch 3.5.0 cluster on loopback (fetched from
// Maven Central by scripts/opensearch/fetch.sh, cached): the PlaidIndex surface, the same scores
// and filter matches as a local index on the same documents, recall against exact MaxSim on 5,000
// documents, a node SIGKILLed during searches and during a bulk add (no acknowledged document
// lost), and a whole-cluster restart and reopen. Skips (with the reason) where no JDK 21+ or
// Maven is found, unless COLBERT_REQUIRE_OPENSEARCH=1 (as .ci/run sets), which makes it fail.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import test from 'ava'
import { Client } from '@opensearch-project/opensearch'

import { ColbertError, maxsimAsync, PlaidIndex, type Embeddings } from '../index'
import { OpenSearchIndex, WriteIncompleteError } from '../src/opensearch'
import { ROOT } from './helpers'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any
const harness: Promise<Any> = import(path.join(ROOT, 'scripts', 'opensearch', 'cluster.mjs'))
const synthetic: Promise<Any> = import(path.join(ROOT, 'bench', 'synthetic.mjs'))

function unavailable(h: Any): string | undefined {
  try {
    h.findJavaHome()
  } catch (e) {
    return (e as Error).message
  }
  if (!process.env.COLBERT_OPENSEARCH_HOME && !fs.existsSync('/usr/bin/mvn') && !process.env.PATH?.split(':').some((d) => fs.existsSync(path.join(d, 'mvn')))) {
    return 'Maven (mvn) is not installed, so OpenSearch cannot be fetched'
  }
  return undefined
}

let cluster: Any
let dataDir = ''
let client: Client
let skipReason: string | undefined

test.before(async () => {
  const h = await harness
  skipReason = unavailable(h)
  if (skipReason) {
    if (process.env.COLBERT_REQUIRE_OPENSEARCH === '1') throw new Error(`OpenSearch tests required but cannot run: ${skipReason}`)
    return
  }
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-opensearch-'))
  cluster = await h.startCluster({ nodes: 2, dataDir, heap: '640m' })
  client = new Client({ nodes: cluster.urls })
})

test.after.always(async () => {
  await cluster?.stop().catch(() => undefined)
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
})

const clusterTest = (title: string, fn: (t: Any) => Promise<void>) =>
  test.serial(title, async (t) => {
    if (skipReason) {
      t.log(`skipped: ${skipReason}`)
      t.pass()
      return
    }
    t.timeout(300_000)
    await fn(t)
  })

function localDir(t: Any): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-os-local-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

function sliceQueries(e: Embeddings, n: number, tokens: number): Embeddings {
  const offsets = new Uint32Array(n + 1)
  const parts: Float32Array[] = []
  for (let i = 0; i < n; i++) {
    const a = e.offsets[i]
    const len = Math.min(tokens, e.offsets[i + 1] - a)
    parts.push(e.data.subarray(a * e.dim, (a + len) * e.dim))
    offsets[i + 1] = offsets[i] + len
  }
  const data = new Float32Array(offsets[n] * e.dim)
  let at = 0
  for (const p of parts) {
    data.set(p, at)
    at += p.length
  }
  return { dim: e.dim, offsets, data }
}

const METADATA = (i: number): Record<string, unknown> => {
  const m: Record<string, unknown> = { lang: ['en', 'fr', 'de'][i % 3], year: 2000 + (i % 17), score: (i % 7) / 2 }
  if (i % 4 === 0) m.tags = ['a', i % 8 === 0 ? 'b' : 'c']
  if (i % 5 === 0) m.tags = 'a'
  if (i % 6 === 0) m.src = { kind: i % 12 === 0 ? 'pdf' : 'html', pages: i % 9 }
  if (i % 7 === 0) m.note = null
  if (i % 11 === 0) m.year = String(2000 + (i % 17))
  if (i % 13 === 0) m.flag = i % 2 === 0
  if (i % 10 === 0) m.pair = [1, 2]
  return m
}

clusterTest('create/open/add/search/delete/documents/select on a two-node cluster, with the local index scores', async (t) => {
  const { generator } = await synthetic
  const g = generator({ seed: 3, minTokens: 8, maxTokens: 40 })
  const b = g.batch(0, 300)
  const documents = b.ids.map((id: string, i: number) => ({ text: `text of ${id}`, metadata: METADATA(i) }))
  const index = await OpenSearchIndex.create(client, 'lifecycle', { shards: 2, replicas: 1, numCentroids: 64 })
  t.teardown(() => index.drop().catch(() => undefined))
  await t.throwsAsync(OpenSearchIndex.create(client, 'lifecycle'), { instanceOf: ColbertError, message: /already exists/ })
  await t.throwsAsync(OpenSearchIndex.open(client, 'no-such-index'), { instanceOf: ColbertError, message: /no colbert index/ })
  await t.throwsAsync(OpenSearchIndex.create(client, 'Bad Name'), { message: /lowercase OpenSearch index name/ })
  // overwrite replaces colbert indexes only: someone else's index of that name is left alone.
  await client.indices.create({ index: 'not-colbert', body: { settings: { number_of_replicas: 0 } } })
  t.teardown(() => client.indices.delete({ index: 'not-colbert' }).then(() => undefined, () => undefined))
  await t.throwsAsync(OpenSearchIndex.create(client, 'not-colbert', { overwrite: true }), { instanceOf: ColbertError, message: /not a colbert index/ })
  t.true((await client.indices.exists({ index: 'not-colbert' })).body)
  t.is(index.info.dim, null)
  const added = await index.add(b.ids, b.embeddings, { documents })
  t.deepEqual(added, { added: 300, replaced: 0, trained: true, numCentroids: 64 })
  t.like(index.info, { documents: 300, embeddings: b.embeddings.offsets[300], dim: 128, nbits: 4, numCentroids: 64, shards: 2, replicas: 1 })

  // The same documents in a local index: the same codebook (same training), so the same scores.
  const local = await PlaidIndex.create(localDir(t), { numCentroids: 64 })
  await local.add(b.ids, b.embeddings, { documents })
  const q = sliceQueries(g.batch(0, 8, 'q-').embeddings, 8, 16)
  const everything = { k: 20, subset: b.ids as string[], exactCandidates: 300 }
  const mine = await index.search(q, everything)
  const theirs = await local.search(q, { k: 20, nProbe: 64, candidates: 300, exactCandidates: 300, centroidScoreThreshold: -1e9 })
  for (let i = 0; i < 8; i++) {
    t.deepEqual(mine[i].map((h) => h.id), theirs[i].map((h) => h.id))
    mine[i].forEach((h, j) => t.true(Math.abs(h.score - theirs[i][j].score) <= 1e-4 * Math.max(1, Math.abs(h.score)), `${h.score} vs ${theirs[i][j].score}`))
  }
  // Default knobs: a candidate search, mostly the exact top 10 (the exhaustive search above).
  const fast = await index.search(q, { withDocuments: true })
  const overlap = fast.reduce((s, h, i) => s + h.filter((x) => theirs[i].slice(0, 10).some((y) => y.id === x.id)).length, 0) / 80
  t.true(overlap >= 0.9, `recall@10 against the exhaustive search ${overlap}`)
  t.is(fast[0][0].text, `text of ${fast[0][0].id}`)
  t.deepEqual(fast[0][0].metadata, METADATA(b.ids.indexOf(fast[0][0].id)))

  // add without replace: existing ids are refused before anything is written.
  const more = g.batch(300, 2)
  await t.throwsAsync(index.add([b.ids[0], more.ids[0]], sliceQueries(more.embeddings, 2, 100)), { message: /already in the index.*replace: true/ })
  t.deepEqual(await index.documents([more.ids[0]]), [null])
  // replace: an upsert, idempotent.
  for (let round = 0; round < 2; round++) {
    const r = await index.add([b.ids[0], more.ids[0]], sliceQueries(more.embeddings, 2, 100), { replace: true, documents: [{ text: 'new' }, { text: 'newer' }] })
    t.deepEqual([r.added, r.replaced, r.trained], [2, round === 0 ? 1 : 2, false])
  }
  t.deepEqual(await index.documents([b.ids[0], more.ids[0], 'missing']), [{ text: 'new' }, { text: 'newer' }, null])
  t.is(index.info.documents, 301)
  t.is(await index.delete([more.ids[0], 'missing']), 1)
  t.is(index.info.documents, 300)
  t.deepEqual(await index.documents([more.ids[0]]), [null])
  await t.throwsAsync(index.search(q, { k: 0 }), { message: /k must be a positive integer/ })
  await t.throwsAsync(index.search(q, { filter: { year: { $foo: 1 } } }), { message: /unknown operator \$foo/ })
  await t.throwsAsync(index.add(['x'], { dim: 64, offsets: new Uint32Array([0, 1]), data: new Float32Array(64) }), { message: /dim 64.*dim 128/ })

  // Another handle (another process, say) opens it and sees the same.
  const again = await OpenSearchIndex.open(client, 'lifecycle')
  t.like(again.info, { documents: 300, numCentroids: 64 })
  t.deepEqual((await again.search(q, everything))[0], (await index.search(q, everything))[0])
  await again.close()
  await t.throwsAsync(again.search(q), { message: /closed/ })
})

clusterTest('refused writes are reported per id, never dropped; AbortSignal cancels searches and adds', async (t) => {
  const { generator } = await synthetic
  const g = generator({ seed: 8, minTokens: 5, maxTokens: 20 })
  const b = g.batch(0, 120)
  const index = await OpenSearchIndex.create(client, 'refusals', { shards: 2, replicas: 1, numCentroids: 16, maxRetries: 1 })
  t.teardown(() => index.drop().catch(() => undefined))
  await index.add(b.ids.slice(0, 60), sliceQueries(b.embeddings, 60, 100))
  // The cluster refuses every write to a blocked index: each id comes back with its status.
  await client.indices.putSettings({ index: 'refusals', body: { 'index.blocks.write': true } })
  const rest = g.batch(60, 60)
  const err = (await t.throwsAsync(index.add(rest.ids, rest.embeddings), { instanceOf: WriteIncompleteError })) as WriteIncompleteError
  t.is(err.code, 'WRITE_INCOMPLETE')
  t.deepEqual(err.failed.map((f) => f.id).sort(), [...rest.ids].sort())
  t.true(err.failed.every((f) => f.status === 403 && /cluster_block/.test(f.type)), JSON.stringify(err.failed[0]))
  t.deepEqual(err.written, [])
  await client.indices.putSettings({ index: 'refusals', body: { 'index.blocks.write': false } })
  t.deepEqual((await index.add(rest.ids, rest.embeddings, { replace: true })).added, 60)
  t.is(index.info.documents, 120)
  // Cancellation: an aborted signal rejects with ABORTED and writes nothing.
  const q = sliceQueries(g.batch(0, 2, 'q-').embeddings, 2, 8)
  await t.throwsAsync(index.search(q, { signal: AbortSignal.abort() }), { instanceOf: ColbertError, message: /aborted/ })
  const late = g.batch(500, 5, 'late-')
  await t.throwsAsync(index.add(late.ids, late.embeddings, { signal: AbortSignal.abort() }), { message: /aborted/ })
  t.deepEqual(await index.documents(late.ids), [null, null, null, null, null])
  const controller = new AbortController()
  const pending = index.search(q, { signal: controller.signal })
  controller.abort()
  await t.throwsAsync(pending, { message: /aborted/ })
  t.is((await index.search(q))[0].length, 10, 'the handle still searches after an abort')
})

clusterTest('every filter operator matches what the local engine matches', async (t) => {
  const { generator } = await synthetic
  const g = generator({ seed: 5, minTokens: 5, maxTokens: 12 })
  const n = 156
  const b = g.batch(0, n)
  const documents = b.ids.map((_: string, i: number) => (i % 19 === 0 ? {} : { metadata: METADATA(i) }))
  const index = await OpenSearchIndex.create(client, 'filters', { shards: 2, replicas: 1, numCentroids: 16 })
  t.teardown(() => index.drop().catch(() => undefined))
  await index.add(b.ids, b.embeddings, { documents })
  const local = await PlaidIndex.create(localDir(t), { numCentroids: 16 })
  await local.add(b.ids, b.embeddings, { documents })
  const filters: Record<string, unknown>[] = [
    { lang: 'en' },
    { lang: { $ne: 'en' } },
    { year: 2003 },
    { year: { $gte: 2005, $lt: 2010 } },
    { year: { $gt: '2005' } },
    { year: { $lte: 2001 } },
    { score: { $gt: 1.5 } },
    { score: 0 },
    { tags: 'b' },
    { tags: ['a', 'b'] },
    { tags: { $in: ['b', 'c'] } },
    { tags: { $nin: ['a'] } },
    { tags: { $exists: false } },
    { 'src.kind': 'pdf' },
    { 'src.pages': { $gte: 4 } },
    { src: { kind: 'html', pages: 6 } },
    { note: null },
    { note: { $exists: true } },
    { note: { $ne: null } },
    { flag: true },
    { flag: { $ne: false } },
    { pair: [1, 2] },
    { pair: 2 },
    { pair: { $in: [[1, 2]] } },
    { $or: [{ lang: 'de' }, { 'src.kind': 'pdf' }] },
    { $and: [{ lang: 'fr' }, { $not: { year: { $lt: 2008 } } }] },
    { $not: { tags: ['a', 'c'] } },
    { lang: { $gt: 'de', $lte: 'fr' } },
    { missing: null },
    { missing: { $nin: [1] } },
    { lang: { $in: [] } },
  ]
  const q = sliceQueries(g.batch(0, 1, 'q-').embeddings, 1, 8)
  for (const filter of filters) {
    const want = (await local.select(filter)).sort()
    t.deepEqual((await index.select(filter)).sort(), want, JSON.stringify(filter))
    const hits = await index.search(q, { k: n, filter, exactCandidates: n })
    t.deepEqual(hits[0].map((h) => h.id).sort(), want, `search ${JSON.stringify(filter)}`)
  }
  t.true(filters.every((f) => f !== undefined))
})

clusterTest('recall@10 against exact MaxSim on 5,000 documents is within 0.02 of the local index', async (t) => {
  const { generator } = await synthetic
  const g = generator({ seed: 11 })
  const b = g.batch(0, 5000)
  const queries = sliceQueries(generator({ seed: 11, streamSeed: 99 }).batch(0, 40, 'q-').embeddings, 40, 32)
  const scores = await maxsimAsync(queries, b.embeddings)
  const truth = Array.from({ length: 40 }, (_, qi) => {
    const row = scores.subarray(qi * 5000, (qi + 1) * 5000)
    return new Set(Array.from(row.keys()).sort((x, y) => row[y] - row[x]).slice(0, 10).map((i) => b.ids[i]))
  })
  const recall = (hits: { id: string }[][]) => hits.reduce((s, h, i) => s + h.filter((x) => truth[i].has(x.id)).length / 10, 0) / hits.length
  const local = await PlaidIndex.create(localDir(t))
  await local.add(b.ids, b.embeddings)
  const index = await OpenSearchIndex.create(client, 'recall', { shards: 2, replicas: 1, refresh: 'false', overwrite: true })
  await index.add(b.ids, b.embeddings)
  await client.indices.refresh({ index: 'recall' })
  const localRecall = recall(await local.search(queries, { k: 10 }))
  const clusterRecall = recall(await index.search(queries, { k: 10 }))
  t.log(`recall@10: local ${localRecall.toFixed(3)}, cluster ${clusterRecall.toFixed(3)}`)
  t.true(clusterRecall >= localRecall - 0.02, `cluster ${clusterRecall} vs local ${localRecall}`)
  await index.close()
})

clusterTest('a node SIGKILLed during searches: every search still answers, from the replicas', async (t) => {
  const index = await OpenSearchIndex.open(client, 'recall')
  const { generator } = await synthetic
  const queries = sliceQueries(generator({ seed: 11, streamSeed: 7 }).batch(0, 4, 'q-').embeddings, 4, 32)
  const before = await index.search(queries, { k: 10 })
  let answered = 0
  let running = true
  let failed: unknown
  const loop = (async () => {
    while (running) {
      const hits = await index.search(queries, { k: 10 })
      t.deepEqual(hits, before)
      answered++
    }
  })().catch((e) => {
    failed = e
  })
  await new Promise((r) => setTimeout(r, 1500))
  await cluster.nodes[1].kill('SIGKILL')
  const killedAt = answered
  const since = Date.now()
  // At least 4 s and 3 searches after the kill, however slow a loaded machine is.
  while (failed === undefined && (Date.now() - since < 4000 || answered - killedAt < 3)) await new Promise((r) => setTimeout(r, 200))
  running = false
  await loop
  if (failed !== undefined) t.fail(`a search failed after the kill: ${String(failed)}`)
  t.log(`${killedAt} searches before the kill, ${answered - killedAt} after`)
  t.true(answered - killedAt >= 3)
  await cluster.nodes[1].restart()
  await cluster.waitForHealth({ status: 'green', nodes: 2, timeoutMs: 120_000 })
  t.deepEqual(await index.search(queries, { k: 10 }), before)
})

clusterTest('a node SIGKILLed during a bulk add: no acknowledged document is lost', async (t) => {
  const index = await OpenSearchIndex.open(client, 'recall', { bulkDocuments: 50, maxRetries: 5 })
  const { generator } = await synthetic
  const b = generator({ seed: 11, streamSeed: 1234 }).batch(0, 3000, 'late-')
  const adding = index.add(b.ids, b.embeddings, { replace: true })
  await new Promise((r) => setTimeout(r, 1200))
  await cluster.nodes[1].kill('SIGKILL')
  let acknowledged: string[]
  try {
    await adding
    acknowledged = b.ids
  } catch (e) {
    t.true(e instanceof WriteIncompleteError, String(e))
    const err = e as WriteIncompleteError
    acknowledged = err.written
    t.true(err.failed.length > 0)
    t.log(`${err.written.length} acknowledged, ${err.failed.length} refused (${err.failed[0].type})`)
  }
  t.true(acknowledged.length > 0)
  await cluster.nodes[1].restart()
  await cluster.waitForHealth({ status: 'green', nodes: 2, timeoutMs: 120_000 })
  const docs = await index.documents(acknowledged)
  t.is(docs.filter((d) => d === null).length, 0, 'every acknowledged document is there')
  await index.refresh()
  t.true(index.info.documents >= 5000 + acknowledged.length)
})

clusterTest('the whole cluster restarted on its data: the index reopens with the same results', async (t) => {
  const h = await harness
  const index = await OpenSearchIndex.open(client, 'recall')
  const { generator } = await synthetic
  const queries = sliceQueries(generator({ seed: 11, streamSeed: 5 }).batch(0, 3, 'q-').embeddings, 3, 32)
  const before = await index.search(queries, { k: 10, withDocuments: true })
  const count = index.info.documents
  await cluster.stop({ keepData: true })
  cluster = await h.startCluster({ nodes: 2, dataDir, heap: '640m' })
  await cluster.waitForHealth({ status: 'green', nodes: 2, timeoutMs: 120_000 })
  client = new Client({ nodes: cluster.urls })
  const reopened = await OpenSearchIndex.open(client, 'recall')
  t.is(reopened.info.documents, count)
  t.deepEqual(await reopened.search(queries, { k: 10, withDocuments: true }), before)
})
