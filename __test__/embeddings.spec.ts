// Exact MaxSim and the Embeddings helpers.
import test from 'ava'

import { ColbertError, count, item, maxsim, type Embeddings } from '../index'

function batch(dim: number, items: number[][][]): Embeddings {
  const offsets = new Uint32Array(items.length + 1)
  const rows: number[] = []
  items.forEach((it, i) => {
    for (const r of it) rows.push(...r)
    offsets[i + 1] = offsets[i] + it.length
  })
  return { dim, offsets, data: Float32Array.from(rows) }
}

function bruteForce(q: Embeddings, d: Embeddings): number[] {
  const out: number[] = []
  for (let i = 0; i < count(q); i++) {
    const qi = item(q, i)
    for (let j = 0; j < count(d); j++) {
      const dj = item(d, j)
      let total = 0
      for (let a = 0; a < qi.length / q.dim; a++) {
        let best = -Infinity
        for (let b = 0; b < dj.length / d.dim; b++) {
          let s = 0
          for (let k = 0; k < q.dim; k++) s += qi[a * q.dim + k] * dj[b * d.dim + k]
          best = Math.max(best, s)
        }
        total += dj.length ? best : 0
      }
      out.push(total)
    }
  }
  return out
}

test('maxsim equals a brute-force computation on random data, negatives included', (t) => {
  let seed = 7
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1
  const mk = (n: number, lens: number[]) =>
    batch(
      n,
      lens.map((l) => Array.from({ length: l }, () => Array.from({ length: n }, rand))),
    )
  const q = mk(24, [5, 1, 9])
  const d = mk(24, [3, 17, 1, 0, 8])
  const got = Array.from(maxsim(q, d))
  const want = bruteForce(q, d)
  t.is(got.length, 15)
  got.forEach((g, i) => t.true(Math.abs(g - want[i]) < 1e-4, `cell ${i}: ${g} vs ${want[i]}`))
})

test('maxsim is hand-checkable', (t) => {
  const q = batch(2, [[[1, 0], [0, 1]]])
  const d = batch(2, [[[1, 0], [0.5, 0.5]], [[-1, 0]]])
  t.deepEqual(Array.from(maxsim(q, d)), [1.5, -1])
})

test('wrong shapes give INVALID_ARGUMENT', (t) => {
  const q = batch(2, [[[1, 0]]])
  const bad: Array<[unknown, string]> = [
    [{ dim: 3, offsets: Uint32Array.from([0, 1]), data: new Float32Array(3) }, 'dim'],
    [{ dim: 2, offsets: Uint32Array.from([0, 2]), data: new Float32Array(2) }, 'last offset'],
    [{ dim: 2, offsets: Uint32Array.from([1, 1]), data: new Float32Array(2) }, 'offsets[0]'],
    [{ dim: 2, offsets: Uint32Array.from([0, 1]), data: Float32Array.from([NaN, 0]) }, 'non-finite'],
    [{ dim: 2, offsets: [0, 1], data: new Float32Array(2) }, 'Embeddings'],
    [null, 'Embeddings'],
  ]
  for (const [d, what] of bad) {
    const err = t.throws(() => maxsim(q, d as Embeddings), { instanceOf: ColbertError })
    t.is(err?.code, 'INVALID_ARGUMENT', what)
  }
})

test('item and count read a batch without copying', (t) => {
  const e = batch(2, [[[1, 2]], [], [[3, 4], [5, 6]]])
  t.is(count(e), 3)
  t.deepEqual(Array.from(item(e, 2)), [3, 4, 5, 6])
  t.is(item(e, 1).length, 0)
  t.is(item(e, 2).buffer, e.data.buffer)
  t.throws(() => item(e, 3), { instanceOf: ColbertError })
})
