// rerank against PyLate's rank.rerank on the same embeddings (fixture made by
// tools/make_rerank_golden.py), including PyLate's zero-padding semantics.
import fs from 'node:fs'
import path from 'node:path'

import test from 'ava'

import { ColbertError, maxsim, rerank, type Embeddings } from '../index'
import { FIXTURES } from './helpers'

interface Golden {
  dim: number
  queries: number[][]
  query_tokens: number[]
  documents: number[][][]
  documents_ids: string[][]
  pylate: { id: string; score: number }[][]
}

const golden: Golden = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'rerank', 'golden.json'), 'utf8'))

function batch(dim: number, items: number[][]): Embeddings {
  const offsets = new Uint32Array(items.length + 1)
  items.forEach((it, i) => (offsets[i + 1] = offsets[i] + it.length / dim))
  return { dim, offsets, data: Float32Array.from(items.flat()) }
}

const queries = batch(golden.dim, golden.queries)
const documents = golden.documents.map((c) => batch(golden.dim, c))

test('rerank reproduces PyLate rank.rerank: same order, scores within 1e-5', (t) => {
  const ranked = rerank({ documentsIds: golden.documents_ids, queriesEmbeddings: queries, documentsEmbeddings: documents })
  t.is(ranked.length, golden.pylate.length)
  let maxDiff = 0
  ranked.forEach((r, i) => {
    t.deepEqual(
      r.map((x) => x.id),
      golden.pylate[i].map((x) => x.id),
    )
    r.forEach((x, j) => (maxDiff = Math.max(maxDiff, Math.abs(x.score - golden.pylate[i][j].score))))
  })
  t.log(`max |score − PyLate| = ${maxDiff.toExponential(2)}`)
  t.true(maxDiff <= 1e-5)
})

test('the fixture exercises zero padding: plain MaxSim differs for some shorter candidates', (t) => {
  let differs = 0
  golden.documents_ids.forEach((ids, i) => {
    const q = batch(golden.dim, [golden.queries[i]])
    const plain = maxsim(q, documents[i])
    const padded = maxsim(q, documents[i], { zeroPadded: true })
    ids.forEach((_, j) => {
      t.true(padded[j] >= plain[j] - 1e-6)
      if (padded[j] > plain[j] + 1e-6) differs++
    })
  })
  t.true(differs > 0, 'some candidate must score higher with padding')
})

test('ties keep the input order; empty candidate lists give empty results', (t) => {
  const q = batch(2, [[1, 0]])
  const d = batch(2, [[0, 1], [0, 1], [1, 0]])
  const [r] = rerank({ documentsIds: [['a', 'b', 'c']], queriesEmbeddings: q, documentsEmbeddings: [d] })
  t.deepEqual(
    r.map((x) => x.id),
    ['c', 'a', 'b'],
  )
  const empty = rerank({ documentsIds: [[]], queriesEmbeddings: q, documentsEmbeddings: [batch(2, [])] })
  t.deepEqual(empty, [[]])
})

test('rerank rejects mismatched input with INVALID_ARGUMENT', (t) => {
  const q = batch(2, [[1, 0]])
  const d = batch(2, [[0, 1]])
  const bad: unknown[] = [
    null,
    { documentsIds: [], queriesEmbeddings: q, documentsEmbeddings: [d] },
    { documentsIds: [['a', 'b']], queriesEmbeddings: q, documentsEmbeddings: [d] },
    { documentsIds: [['a']], queriesEmbeddings: q, documentsEmbeddings: [] },
    { documentsIds: [[1]], queriesEmbeddings: q, documentsEmbeddings: [d] },
    { documentsIds: [['a']], queriesEmbeddings: q, documentsEmbeddings: [batch(3, [[1, 0, 0]])] },
  ]
  for (const input of bad) {
    const err = t.throws(() => rerank(input as never))
    t.is((err as ColbertError).code, 'INVALID_ARGUMENT')
  }
})
