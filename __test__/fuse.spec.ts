// fuse: reciprocal-rank and relative-score fusion on hand-computed cases.
import test from 'ava'

import { ColbertError, fuse, type FusedResult } from '../index'

const close = (a: number, b: number) => Math.abs(a - b) < 1e-12

function summary(r: FusedResult[]) {
  return r.map((x) => [x.id, x.ranks])
}

test('rrf: Σ 1/(60 + rank), 1-based ranks, missing ids add nothing', (t) => {
  const a = [{ id: 'a' }, { id: 'b' }, { id: 'c' }]
  const b = [{ id: 'c' }, { id: 'a' }, { id: 'd' }]
  const fused = fuse([a, b])
  // a: 1/61 + 1/62, c: 1/63 + 1/61, b: 1/62, d: 1/63
  t.deepEqual(summary(fused), [
    ['a', [1, 2]],
    ['c', [3, 1]],
    ['b', [2, null]],
    ['d', [null, 3]],
  ])
  const expected = [1 / 61 + 1 / 62, 1 / 63 + 1 / 61, 1 / 62, 1 / 63]
  fused.forEach((x, i) => t.true(close(x.score, expected[i]), `${x.id}: ${x.score} vs ${expected[i]}`))
  t.is(fused[0].item, a[0], 'item is the entry of the first list holding the id')
  t.is(fused[3].item, b[2])
})

test('rrf: weights and k', (t) => {
  const fused = fuse(
    [
      [{ id: 'a' }, { id: 'b' }],
      [{ id: 'b' }, { id: 'c' }],
    ],
    { method: 'rrf', weights: [1, 2], k: 1 },
  )
  // a: 1/2, b: 1/3 + 2/2, c: 2/3
  t.deepEqual(
    fused.map((x) => x.id),
    ['b', 'c', 'a'],
  )
  t.true(close(fused[0].score, 1 / 3 + 1))
  t.true(close(fused[1].score, 2 / 3))
  t.true(close(fused[2].score, 1 / 2))
})

test('rrf: equal fused scores keep the order of first appearance; limit keeps the best', (t) => {
  const fused = fuse([[{ id: 'x' }], [{ id: 'y' }]])
  t.deepEqual(
    fused.map((x) => x.id),
    ['x', 'y'],
  )
  t.true(close(fused[0].score, fused[1].score))
  t.deepEqual(
    fuse([[{ id: 'a' }, { id: 'b' }, { id: 'c' }]], { limit: 2 }).map((x) => x.id),
    ['a', 'b'],
  )
})

test('relative: min-max normalised per list, then a weighted sum', (t) => {
  const a = [
    { id: 'a', score: 10 },
    { id: 'b', score: 6 },
    { id: 'c', score: 2 },
  ]
  const b = [
    { id: 'c', score: 0.9 },
    { id: 'd', score: 0.5 },
    { id: 'a', score: 0.1 },
  ]
  // normalised: a 1 | 0, b 0.5 | –, c 0 | 1, d – | 0.5
  const even = fuse([a, b], { method: 'relative' })
  t.deepEqual(
    even.map((x) => [x.id, x.score]),
    [
      ['a', 1],
      ['c', 1],
      ['b', 0.5],
      ['d', 0.5],
    ],
  )
  const weighted = fuse([a, b], { method: 'relative', weights: [0.7, 0.3] })
  t.deepEqual(
    weighted.map((x) => x.id),
    ['a', 'b', 'c', 'd'],
  )
  const expected = [0.7, 0.35, 0.3, 0.15]
  weighted.forEach((x, i) => t.true(close(x.score, expected[i]), `${x.id}: ${x.score}`))
})

test('relative: a list whose scores are all equal counts each entry as 1; order within a list does not matter', (t) => {
  const fused = fuse(
    [
      [
        { id: 'x', score: 3 },
        { id: 'y', score: 3 },
      ],
      [
        { id: 'z', score: 0 },
        { id: 'y', score: 1 },
      ],
    ],
    { method: 'relative' },
  )
  t.deepEqual(
    fused.map((x) => [x.id, x.score]),
    [
      ['y', 2],
      ['x', 1],
      ['z', 0],
    ],
  )
  t.deepEqual(
    fuse([[{ id: 'only', score: -5 }]], { method: 'relative' }).map((x) => x.score),
    [1],
  )
})

test('empty input fuses to nothing', (t) => {
  t.deepEqual(fuse([]), [])
  t.deepEqual(fuse([[], []], { method: 'relative' }), [])
})

test('mistakes are INVALID_ARGUMENT', (t) => {
  const bad = (f: () => unknown, re: RegExp) => {
    const e = t.throws(f, { instanceOf: ColbertError })
    t.is(e?.code, 'INVALID_ARGUMENT')
    t.regex(e?.message ?? '', re)
  }
  bad(() => fuse([[{ id: 'a' }, { id: 'a' }]]), /twice/)
  bad(() => fuse([[{ id: 'a' }]], { method: 'relative' }), /score must be a finite number/)
  bad(() => fuse([[{ id: 'a', score: Number.NaN }]], { method: 'relative' }), /score must be a finite number/)
  bad(() => fuse([[{ id: 'a' }]], { weights: [1, 1] }), /one weight per list/)
  bad(() => fuse([[{ id: 'a' }]], { weights: [-1] }), /weights\[0\]/)
  bad(() => fuse([[{ id: 'a' }]], { k: -1 }), /k must be/)
  bad(() => fuse([[{ id: 'a', score: 1 }]], { method: 'relative', k: 60 }), /'rrf' only/)
  bad(() => fuse([[{ id: 'a' }]], { method: 'borda' as 'rrf' }), /method must be/)
  bad(() => fuse([[{ id: 'a' }]], { topK: 3 } as object), /unknown fuse option "topK"/)
  bad(() => fuse([[{ id: 'a' }]], { limit: 0 }), /limit must be a positive integer/)
  bad(() => fuse([[{ id: 1 } as unknown as { id: string }]]), /string id/)
  bad(() => fuse({} as never), /array of ranked lists/)
})
