// Many calls in flight at once, from the event loop and from worker_threads, return the same
// results as one call at a time; progress callbacks that throw never crash the process.
import path from 'node:path'
import { Worker } from 'node:worker_threads'

import test from 'ava'

import { ColBERT, threadBudget, type Embeddings } from '../index'
import { compareRows, FIXTURES, ROOT, rowsOf } from './helpers'

const MODEL = path.join(FIXTURES, 'tiny-modernbert')
const TEXTS = Array.from({ length: 40 }, (_, i) => `text ${i}: ${'the quick brown fox jumps over the lazy dog '.repeat(1 + (i % 9))}`)

test('concurrent encodes on one model equal sequential ones', async (t) => {
  const model = await ColBERT.fromPretrained(MODEL, { threads: 1 })
  const sequential: Embeddings[] = []
  for (let i = 0; i < 8; i++) sequential.push(await model.encode(TEXTS.slice(i * 5, i * 5 + 5), { isQuery: i % 2 === 0 }))
  const concurrent = await Promise.all(
    Array.from({ length: 8 }, (_, i) => model.encode(TEXTS.slice(i * 5, i * 5 + 5), { isQuery: i % 2 === 0, batchSize: 2 })),
  )
  concurrent.forEach((c, i) => {
    t.deepEqual(Array.from(c.offsets), Array.from(sequential[i].offsets))
    t.true(compareRows(c.dim, c.data, sequential[i].data).maxAbs <= 1e-5)
  })
})

test('the event loop stays responsive while encoding', async (t) => {
  const model = await ColBERT.fromPretrained(MODEL)
  let ticks = 0
  const timer = setInterval(() => ticks++, 5)
  await model.encode(Array.from({ length: 200 }, (_, i) => TEXTS[i % TEXTS.length]), { isQuery: false, batchSize: 8 })
  clearInterval(timer)
  t.true(ticks > 0, 'timers fired during the call')
})

test('encodes from worker_threads match the main thread', async (t) => {
  const model = await ColBERT.fromPretrained(MODEL)
  const want = await model.encode(TEXTS, { isQuery: false })
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    const { ColBERT } = require(workerData.entry)
    ColBERT.fromPretrained(workerData.model)
      .then((m) => m.encode(workerData.texts, { isQuery: false, batchSize: 3 }))
      .then((e) => parentPort.postMessage({ offsets: Array.from(e.offsets), data: Array.from(e.data) }))
      .catch((err) => parentPort.postMessage({ error: String(err && err.stack || err) }))
  `
  const run = () =>
    new Promise<{ offsets: number[]; data: number[]; error?: string }>((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { entry: path.join(ROOT, 'dist', 'index.js'), model: MODEL, texts: TEXTS } })
      w.once('message', (m) => {
        resolve(m)
        void w.terminate()
      })
      w.once('error', reject)
    })
  const results = await Promise.all([run(), run(), run(), model.encode(TEXTS, { isQuery: false })])
  for (const r of results.slice(0, 3) as Array<{ offsets: number[]; data: number[]; error?: string }>) {
    t.falsy(r.error, r.error)
    t.deepEqual(r.offsets, Array.from(want.offsets))
    t.true(compareRows(want.dim, Float32Array.from(r.data), want.data).maxAbs <= 1e-5)
  }
})

test('a progress callback that throws is reported as a warning and the call still succeeds', async (t) => {
  const model = await ColBERT.fromPretrained(MODEL)
  const warnings: string[] = []
  const onWarning = (w: Error) => warnings.push(w.message)
  process.on('warning', onWarning)
  const events: number[] = []
  const out = await model.encode(TEXTS, {
    isQuery: false,
    batchSize: 4,
    onProgress: ({ done, total }) => {
      events.push(done)
      t.is(total, TEXTS.length)
      throw new Error('callback bug')
    },
  })
  await new Promise((r) => setImmediate(r))
  process.off('warning', onWarning)
  t.is(out.offsets.length, TEXTS.length + 1)
  t.true(events.length >= 1)
  t.is(Math.max(...events), TEXTS.length, 'the last event reports every text done')
  t.true(warnings.some((w) => w.includes('callback bug')))
})

test('results come back in input order whatever the batching', async (t) => {
  const model = await ColBERT.fromPretrained(MODEL)
  const all = await model.encode(TEXTS, { isQuery: false, batchSize: 5 })
  for (const i of [0, 7, 39]) {
    const one = await model.encode([TEXTS[i]], { isQuery: false })
    t.true(compareRows(all.dim, rowsOf(all, i), rowsOf(one, 0)).maxAbs <= 1e-5)
  }
  t.true(threadBudget() >= 1)
})
