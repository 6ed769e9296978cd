// Token pooling through the public API against PyLate's own output (`__test__/fixtures/pool`,
// made by tools/make_pool_golden.py): poolEmbeddings on PyLate's unpooled embeddings, encode with
// poolFactor end to end, PlaidIndex.add with poolFactor, the CLI flag, bad input and cancellation.
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

import test from 'ava'

import { ColBERT, ColbertError, count, PlaidIndex, poolEmbeddings, type Embeddings } from '../index'
import { FIXTURES, ROOT, rowsOf, STANDIN } from './helpers'

const POOL = path.join(FIXTURES, 'pool')

interface PoolSet {
  name: string
  dim: number
  input: { file: string; rows: number[] }
  pooled: { pool_factor: number; file: string; rows: number[] }[]
}

const manifest: { sets: PoolSet[] } = JSON.parse(fs.readFileSync(path.join(POOL, 'manifest.json'), 'utf8'))
const texts: string[] = JSON.parse(fs.readFileSync(path.join(POOL, 'texts.json'), 'utf8'))

function embeddingsFile(file: string, rows: number[], dim: number): Embeddings {
  const buf = fs.readFileSync(path.join(POOL, file))
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength))
  const offsets = new Uint32Array(rows.length + 1)
  rows.forEach((r, i) => (offsets[i + 1] = offsets[i] + r))
  return { dim, offsets, data }
}

/** Largest |Δ| between two batches with the same row counts per document (fails the test otherwise). */
function maxDelta(t: { is: (a: unknown, b: unknown, m?: string) => void }, got: Embeddings, want: Embeddings, what: string): number {
  t.is(count(got), count(want), `${what}: documents`)
  let max = 0
  for (let d = 0; d < count(want); d++) {
    const a = rowsOf(got, d)
    const b = rowsOf(want, d)
    t.is(a.length / got.dim, b.length / want.dim, `${what} document ${d}: pooled rows`)
    for (let i = 0; i < Math.min(a.length, b.length); i++) max = Math.max(max, Math.abs(a[i] - b[i]))
  }
  return max
}

test('poolEmbeddings equals PyLate pool_embeddings_hierarchical on its own embeddings (tiny models, stand-in, ties)', async (t) => {
  t.true(manifest.sets.length >= 4)
  for (const set of manifest.sets) {
    const input = embeddingsFile(set.input.file, set.input.rows, set.dim)
    for (const p of set.pooled) {
      const got = await poolEmbeddings(input, { poolFactor: p.pool_factor })
      const delta = maxDelta(t, got, embeddingsFile(p.file, p.rows, set.dim), `${set.name} pool factor ${p.pool_factor}`)
      t.true(delta <= 1e-5, `${set.name} pool factor ${p.pool_factor}: max |Δ| ${delta}`)
    }
  }
})

test('encode with poolFactor pools documents as PyLate encode(pool_factor=k) does (tiny-modernbert, fp32)', async (t) => {
  const model = await ColBERT.fromPretrained(path.join(FIXTURES, 'tiny-modernbert'), { quantized: false })
  const set = manifest.sets.find((s) => s.name === 'tiny-modernbert')!
  for (const p of set.pooled) {
    const got = await model.encode(texts, { isQuery: false, poolFactor: p.pool_factor })
    // Our ONNX embeddings equal PyTorch's to ~1e-6 here (the model goldens), and the clusters
    // they pool to are the same.
    const delta = maxDelta(t, got, embeddingsFile(p.file, p.rows, set.dim), `encode pool factor ${p.pool_factor}`)
    t.true(delta <= 1e-4, `encode pool factor ${p.pool_factor}: max |Δ| ${delta}`)
  }
  const plain = await model.encode(texts, { isQuery: false })
  t.deepEqual(await model.encode(texts, { isQuery: false, poolFactor: 1 }), plain)
})

test('bad pooling options are INVALID_ARGUMENT; queries are never pooled', async (t) => {
  const model = await ColBERT.fromPretrained(path.join(FIXTURES, 'tiny-modernbert'), { quantized: false })
  const input = embeddingsFile(manifest.sets[0].input.file, manifest.sets[0].input.rows, manifest.sets[0].dim)
  for (const poolFactor of [0, 1.5, -2, 70_000, Number.NaN]) {
    const e = await t.throwsAsync(poolEmbeddings(input, { poolFactor }), { instanceOf: ColbertError })
    t.is(e?.code, 'INVALID_ARGUMENT')
    t.regex(e?.message ?? '', /poolFactor must be an integer from 1 to 65536/)
  }
  const q = await t.throwsAsync(model.encode(['a query'], { poolFactor: 2 }), { instanceOf: ColbertError })
  t.is(q?.code, 'INVALID_ARGUMENT')
  t.regex(q?.message ?? '', /documents only/)
  const shape = await t.throwsAsync(poolEmbeddings({ dim: 2, offsets: new Uint32Array([0, 3]), data: new Float32Array(4) }, { poolFactor: 2 }))
  t.is((shape as ColbertError).code, 'INVALID_ARGUMENT')
  const long = await t.throwsAsync(poolEmbeddings({ dim: 1, offsets: new Uint32Array([0, 8193]), data: new Float32Array(8193).fill(1) }, { poolFactor: 2 }))
  t.is((long as ColbertError).code, 'INVALID_ARGUMENT')
  t.regex((long as ColbertError).message, /document 0 has 8193 token embeddings; pooling takes at most 8192/)
  const extra = await t.throwsAsync(poolEmbeddings(input, { poolFactor: 2, pool: 3 } as never))
  t.is((extra as ColbertError).code, 'INVALID_ARGUMENT')
})

/** Many long random documents: enough pooling work to abort in the middle and to watch the event loop. */
function bigBatch(documents: number, rows: number, dim = 64): Embeddings {
  let s = 12345
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5
  const data = new Float32Array(documents * rows * dim)
  for (let r = 0; r < documents * rows; r++) {
    let n = 0
    for (let j = 0; j < dim; j++) n += (data[r * dim + j] = rnd()) ** 2
    for (let j = 0; j < dim; j++) data[r * dim + j] /= Math.sqrt(n)
  }
  const offsets = Uint32Array.from({ length: documents + 1 }, (_, i) => i * rows)
  return { dim, offsets, data }
}

// Serial (ava runs serial tests first, alone): nothing else in this process may hold the event loop.
test.serial('pooling runs off the event loop and an AbortSignal stops it with ABORTED', async (t) => {
  const big = bigBatch(400, 180)
  let ticks = 0
  const timer = setInterval(() => ticks++, 5)
  const started = performance.now()
  const pooled = await poolEmbeddings(big, { poolFactor: 2 })
  const ms = performance.now() - started
  clearInterval(timer)
  t.is(count(pooled), 400)
  t.is(pooled.offsets[400], 400 * (89 + 1))
  t.true(ticks >= Math.min(3, Math.floor(ms / 20)), `the event loop ran ${ticks} timer ticks in ${ms.toFixed(0)} ms`)

  const early = new AbortController()
  early.abort()
  t.is((await t.throwsAsync(poolEmbeddings(big, { poolFactor: 2, signal: early.signal })) as ColbertError).code, 'ABORTED')
  const late = new AbortController()
  const pending = poolEmbeddings(big, { poolFactor: 2, signal: late.signal })
  setTimeout(() => late.abort(), 5)
  t.is((await t.throwsAsync(pending) as ColbertError).code, 'ABORTED')
})

test('PlaidIndex.add with poolFactor stores the pooled tokens and searches like adding pooled embeddings', async (t) => {
  const set = manifest.sets.find((s) => s.name === 'minilm-colbert')!
  const input = embeddingsFile(set.input.file, set.input.rows, set.dim)
  const ids = Array.from({ length: count(input) }, (_, i) => `doc${i}`)
  const queries = { dim: input.dim, offsets: new Uint32Array([0, 4, 8]), data: input.data.slice(0, 8 * input.dim) }
  const pooled = await poolEmbeddings(input, { poolFactor: 2 })
  const dirs = [fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-pool-')), fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-pool-'))]
  t.teardown(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })))
  const viaOption = await PlaidIndex.create(dirs[0], { seed: 7 })
  const direct = await PlaidIndex.create(dirs[1], { seed: 7 })
  await viaOption.add(ids, input, { poolFactor: 2 })
  await direct.add(ids, pooled)
  t.is(viaOption.info.embeddings, pooled.offsets[count(pooled)])
  t.true(viaOption.info.embeddings < input.offsets[count(input)] * 0.6)
  t.deepEqual(await viaOption.search(queries, { k: 5 }), await direct.search(queries, { k: 5 }))
  await t.throwsAsync(viaOption.add(ids, pooled, { poolFactor: 0 }), { message: /poolFactor/ })
  await viaOption.close()
  await direct.close()
})

test('colbert index --pool-factor 2 stores about half the token embeddings', async (t) => {
  const src = fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-pool-src-'))
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-pool-out-'))
  t.teardown(() => [src, out].forEach((d) => fs.rmSync(d, { recursive: true, force: true })))
  fs.writeFileSync(path.join(src, 'docs.jsonl'), texts.slice(32).map((text, i) => JSON.stringify({ id: `p${i}`, text })).join('\n') + '\n')
  const index = async (dir: string, extra: string[]) => {
    const args = [path.join(ROOT, 'bin', 'colbert.js'), 'index', path.join(src, 'docs.jsonl'), '--index', dir, '--model', STANDIN, '--quantized', '--json', ...extra]
    try {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, args, { encoding: 'utf8', timeout: 170_000 })
      return { status: 0, stdout, stderr }
    } catch (e) {
      const err = e as { code?: number; stdout?: string; stderr?: string }
      return { status: err.code ?? -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' }
    }
  }
  const full = await index(path.join(out, 'full'), [])
  const half = await index(path.join(out, 'half'), ['--pool-factor', '2'])
  t.is(full.status, 0, full.stderr)
  t.is(half.status, 0, half.stderr)
  const [a, b] = [JSON.parse(full.stdout), JSON.parse(half.stdout)]
  t.is(b.documents, a.documents)
  t.true(b.embeddings <= Math.ceil(a.embeddings / 2) + b.documents, `${b.embeddings} pooled of ${a.embeddings}`)
  const bad = await index(path.join(out, 'bad'), ['--pool-factor', '0'])
  t.is(bad.status, 2)
  t.regex(bad.stderr, /--pool-factor must be an integer/)
})
