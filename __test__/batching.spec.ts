// Micro-batching across callers and backpressure: concurrent small encodes share inference
// batches yet each caller gets exactly its own rows; aborted callers leave the others alone;
// beyond maxQueued a call fails at once with BUSY.
import path from 'node:path'

import test from 'ava'

import { ColBERT, ColbertError, count, item, PlaidIndex, type Embeddings } from '../index'
import { EncodeBatcher, type EncodeRun } from '../src/batch'
import { FIXTURES, STANDIN, tempDir } from './helpers'

const QUERIES = Array.from({ length: 64 }, (_, i) => `what is the effect of compound ${i} on cell growth ${'and more '.repeat(i % 5)}`)

function maxDiff(a: Embeddings, b: Embeddings): number {
  if (a.dim !== b.dim || count(a) !== count(b)) return Infinity
  let d = 0
  for (let i = 0; i < count(a); i++) {
    const x = item(a, i)
    const y = item(b, i)
    if (x.length !== y.length) return Infinity
    for (let j = 0; j < x.length; j++) d = Math.max(d, Math.abs(x[j] - y[j]))
  }
  return d
}

test('64 concurrent single-query callers share batches and get exactly their own rows (int8)', async (t) => {
  const sizes: number[] = []
  // int8 runs each text in an inference of its own, so sharing is off unless asked for.
  const byDefault = await ColBERT.fromPretrained(STANDIN, { batching: { onBatch: (n) => sizes.push(n) } })
  await Promise.all(QUERIES.slice(0, 8).map((q) => byDefault.encode([q])))
  t.deepEqual(sizes, [])
  const batched = await ColBERT.fromPretrained(STANDIN, { batching: { maxBatchSize: 64, onBatch: (n) => sizes.push(n) } })
  const alone = await ColBERT.fromPretrained(STANDIN, { batching: false })
  const got = await Promise.all(QUERIES.map((q) => batched.encode([q])))
  t.true(sizes.length < QUERIES.length, `64 calls ran as ${sizes.length} batches`)
  t.true(Math.max(...sizes) > 1)
  t.is(sizes.reduce((a, b) => a + b, 0), QUERIES.length)
  for (let i = 0; i < QUERIES.length; i++) {
    const want = await alone.encode([QUERIES[i]])
    // int8 runs one text per inference: batch-independent, so exactly equal.
    t.is(maxDiff(got[i], want), 0, `query ${i}`)
  }
  t.like(batched.load, { pending: 0, waiting: 0, running: 0, batches: sizes.length, batchedTexts: QUERIES.length })
})

test('mixed query and document calls, some of several texts: each caller gets its own rows in order (fp32, within 1e-5)', async (t) => {
  const dir = path.join(FIXTURES, 'tiny-bert')
  const batched = await ColBERT.fromPretrained(dir, { quantized: false, batching: { maxBatchSize: 16 } })
  const alone = await ColBERT.fromPretrained(dir, { quantized: false, batching: false })
  const calls = QUERIES.slice(0, 24).map((q, i) => ({ texts: i % 3 === 0 ? [q, `${q} again`, 'short'] : [q], isQuery: i % 2 === 0 }))
  const got = await Promise.all(calls.map((c) => batched.encode(c.texts, { isQuery: c.isQuery })))
  for (let i = 0; i < calls.length; i++) {
    const want = await alone.encode(calls[i].texts, { isQuery: calls[i].isQuery })
    t.is(count(got[i]), calls[i].texts.length)
    t.true(maxDiff(got[i], want) <= 1e-5, `call ${i}: ${maxDiff(got[i], want)}`)
  }
})

test('an aborted caller is answered at once and the others of its batch are not disturbed', async (t) => {
  const model = await ColBERT.fromPretrained(STANDIN, { batching: { maxBatchSize: 64 } })
  const alone = await ColBERT.fromPretrained(STANDIN, { batching: false })
  const controllers = QUERIES.slice(0, 32).map(() => new AbortController())
  const calls = QUERIES.slice(0, 32).map((q, i) => model.encode([q], { signal: controllers[i].signal }))
  // Every third caller gives up at once: queued ones are dropped, running ones discarded.
  for (let i = 0; i < controllers.length; i += 3) controllers[i].abort()
  const settled = await Promise.allSettled(calls)
  for (let i = 0; i < settled.length; i++) {
    const s = settled[i]
    if (i % 3 === 0) {
      t.is(s.status, 'rejected', `caller ${i}`)
      t.is(((s as PromiseRejectedResult).reason as ColbertError).code, 'ABORTED')
    } else {
      t.is(s.status, 'fulfilled', `caller ${i}`)
      t.is(maxDiff((s as PromiseFulfilledResult<Embeddings>).value, await alone.encode([QUERIES[i]])), 0)
    }
  }
  t.like(model.load, { pending: 0, waiting: 0, running: 0 })
})

test('beyond maxQueued an encode fails at once with BUSY; the admitted ones complete', async (t) => {
  const model = await ColBERT.fromPretrained(STANDIN, { batching: { maxQueued: 4 } })
  const started = Date.now()
  const settled = await Promise.allSettled(QUERIES.slice(0, 40).map((q) => model.encode([q])))
  const busy = settled.filter((s) => s.status === 'rejected' && (s.reason as ColbertError).code === 'BUSY')
  const ok = settled.filter((s) => s.status === 'fulfilled')
  t.is(ok.length, 4)
  t.is(busy.length, 36)
  t.regex(((busy[0] as PromiseRejectedResult).reason as Error).message, /maxQueued 4/)
  t.true(Date.now() - started < 60_000)
  // The bound frees as calls finish.
  t.is(count(await model.encode(['after the burst'])), 1)
})

test('batching options are checked', async (t) => {
  for (const batching of [{ maxBatchSize: 0 }, { maxWaitMs: -1 }, { maxQueued: 1.5 }, { onBatch: 3 }, { other: 1 }, 'yes']) {
    const e = await t.throwsAsync(ColBERT.fromPretrained(STANDIN, { batching: batching as never }))
    t.is((e as ColbertError).code, 'INVALID_ARGUMENT', JSON.stringify(batching))
  }
})

test('an index handle refuses searches beyond maxQueued with BUSY', async (t) => {
  const dir = tempDir(t, 'busy-index')
  const model = await ColBERT.fromPretrained(STANDIN)
  const docs = QUERIES.slice(0, 40)
  const index = await PlaidIndex.create(dir, { numCentroids: 8, maxQueued: 2 })
  await index.add(docs.map((_, i) => `d${i}`), await model.encode(docs, { isQuery: false }))
  const q = await model.encode(['compound growth'])
  const settled = await Promise.allSettled(Array.from({ length: 12 }, () => index.search(q, { k: 3 })))
  t.is(settled.filter((s) => s.status === 'fulfilled').length, 2)
  t.true(settled.every((s) => s.status === 'fulfilled' || (s.reason as ColbertError).code === 'BUSY'))
  t.is(index.load.searches, 0)
  const reopened = await PlaidIndex.open(dir, { maxQueued: 1 })
  t.is((await reopened.search(q, { k: 3 }))[0].length, 3)
  await t.throwsAsync(PlaidIndex.open(dir, { maxQueued: 0 }), { message: /maxQueued/ })
  await index.close()
  await reopened.close()
})

test('maxWaitMs: while a batch of its kind runs, a call waits for company, then leaves; never more lanes than the model has', async (t) => {
  const batches: string[][] = []
  const releases: (() => void)[] = []
  let running = 0
  let peak = 0
  const run: EncodeRun = async (texts) => {
    batches.push(texts)
    peak = Math.max(peak, ++running)
    await new Promise<void>((r) => releases.push(r))
    running--
    return { dim: 1, offsets: Uint32Array.from(texts.map((_, i) => i).concat(texts.length)), data: Float32Array.from(texts.map((_, i) => i)) }
  }
  const batcher = new EncodeBatcher(run, 2, { maxWaitMs: 40 })
  const calls = [batcher.submit(['a'], true)]
  // The model is idle: 'a' left at once. A lane is free, but a query batch runs: b, c, d wait.
  t.deepEqual(batches, [['a']])
  calls.push(...['b', 'c', 'd'].map((x) => batcher.submit([x], true)))
  t.deepEqual(batches, [['a']])
  await new Promise((r) => setTimeout(r, 80))
  t.deepEqual(batches, [['a'], ['b', 'c', 'd']])
  // Both lanes busy: e waits for a lane, whatever maxWaitMs says.
  calls.push(batcher.submit(['e'], true))
  await new Promise((r) => setTimeout(r, 80))
  t.is(batches.length, 2)
  releases.shift()!()
  await new Promise((r) => setTimeout(r, 80))
  t.deepEqual(batches.at(-1), ['e'])
  while (releases.length > 0 || running > 0) {
    releases.shift()?.()
    await new Promise((r) => setTimeout(r, 10))
  }
  const out = await Promise.all(calls)
  t.deepEqual(out.map((e) => Array.from(e.data)), [[0], [0], [1], [2], [0]])
  t.is(peak, 2)
})
