// Evaluation: BEIR loading, metrics checked by hand and against PyLate / trec_eval goldens, the
// model-card table, and end-to-end runs with the stand-in model (exhaustive and through PLAID).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import test from 'ava'

// Internal helpers, tested directly.
import { documentText, maxCutoff } from '../src/evaluate'
import {
  ColBERT,
  ColbertError,
  computeMetrics,
  count,
  evaluate,
  formatMetricsTable,
  loadBeir,
  maxsim,
  PlaidIndex,
  type BeirDataset,
  type Embeddings,
  type EvaluateProgress,
  type MetricOptions,
  type Metrics,
  type Qrels,
  type RankedHit,
} from '../index'
import { DATA, dataTest, FIXTURES, STANDIN, withData } from './helpers'

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-eval-'))

const ranking = (...hits: [string, number][]): RankedHit[] => hits.map(([id, score]) => ({ id, score }))
const qrelsOf = (o: Record<string, Record<string, number>>): Qrels =>
  new Map(Object.entries(o).map(([q, d]) => [q, new Map(Object.entries(d))]))

async function code(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p)
    return undefined
  } catch (e) {
    if (!(e instanceof ColbertError)) throw e
    return e.code
  }
}

// ---------------------------------------------------------------------------------------------
// Hand-computed metrics

test('binary metrics by hand (sentence-transformers definitions)', (t) => {
  // q1 relevant {d1, d3}: ranking d3 d2 d1 d4 → hits at ranks 1 and 3.
  // q2 relevant {d9}:     ranking d5 d6 d7 d8 d9 → hit at rank 5.
  const m = computeMetrics(
    new Map([
      ['q1', ranking(['d3', 0.9], ['d2', 0.8], ['d1', 0.7], ['d4', 0.6])],
      ['q2', ranking(['d5', 0.5], ['d6', 0.4], ['d7', 0.3], ['d8', 0.2], ['d9', 0.1])],
    ]),
    qrelsOf({ q1: { d1: 1, d3: 1 }, q2: { d9: 1 } }),
  )
  t.deepEqual(Object.keys(m), [
    'accuracy@1', 'accuracy@3', 'accuracy@5', 'accuracy@10',
    'precision@1', 'precision@3', 'precision@5', 'precision@10',
    'recall@1', 'recall@3', 'recall@5', 'recall@10',
    'ndcg@10', 'mrr@10', 'map@100',
  ])
  const close = (key: keyof Metrics, want: number) => t.true(Math.abs(m[key] - want) < 1e-12, `${key}: ${m[key]} vs ${want}`)
  // accuracy: q1 hits at 1, q2 only at 5 → @1 = @3 = 1/2, @5 = @10 = 1
  close('accuracy@1', 0.5)
  close('accuracy@3', 0.5)
  close('accuracy@5', 1)
  close('accuracy@10', 1)
  // precision@k = hits / k: @1 (1 + 0)/2; @3 (2/3 + 0)/2; @5 (2/5 + 1/5)/2; @10 (2/10 + 1/10)/2
  close('precision@1', 0.5)
  close('precision@3', 1 / 3)
  close('precision@5', 0.3)
  close('precision@10', 0.15)
  // recall@k = hits / |relevant|: @1 (1/2 + 0)/2; @3 (2/2 + 0)/2; @5 (1 + 1)/2
  close('recall@1', 0.25)
  close('recall@3', 0.5)
  close('recall@5', 1)
  close('recall@10', 1)
  // nDCG@10: q1 DCG = 1/log2(2) + 1/log2(4) = 1.5, IDCG = 1 + 1/log2(3) → 1.5 / 1.6309 = 0.91972
  //          q2 DCG = 1/log2(6) = 0.38685, IDCG = 1 → 0.38685; mean 0.65329
  close('ndcg@10', (1.5 / (1 + 1 / Math.log2(3)) + 1 / Math.log2(6)) / 2)
  // MRR@10: (1/1 + 1/5) / 2 = 0.6
  close('mrr@10', 0.6)
  // MAP@100: q1 (1/1 + 2/3) / min(100, 2) = 0.8333; q2 (1/5) / 1 = 0.2; mean 0.51667
  close('map@100', ((1 + 2 / 3) / 2 + 0.2) / 2)
})

test('graded nDCG by hand (trec_eval ndcg_cut) and its binary counterpart', (t) => {
  // Grades a=3, b=2, c=0, d=-1 (negative counts as 0); ranking c a d b.
  const qrels = qrelsOf({ q: { a: 3, b: 2, c: 0, d: -1 } })
  const run = new Map([['q', ranking(['c', 4], ['a', 3], ['d', 2], ['b', 1])]])
  const graded = computeMetrics(run, qrels, { ndcgAtK: [1, 3, 4] })
  // @1: DCG = 0 → 0
  t.is(graded['ndcg@1'], 0)
  // @3: DCG = 0 + 3/log2(3) + 0 = 1.89279; IDCG = 3/log2(2) + 2/log2(3) = 4.26186 → 0.44412
  const idcg = 3 + 2 / Math.log2(3)
  t.true(Math.abs(graded['ndcg@3'] - 3 / Math.log2(3) / idcg) < 1e-12)
  // @4: DCG += 2/log2(5) = 0.86135 → 2.75414; IDCG is the same (two positive grades) → 0.64623
  t.true(Math.abs(graded['ndcg@4'] - (3 / Math.log2(3) + 2 / Math.log2(5)) / idcg) < 1e-12)

  // Binary (sentence-transformers): relevant {a, b}; @3 DCG = 1/log2(3), IDCG = 1 + 1/log2(3) → 0.38685
  const binary = computeMetrics(run, qrels, { ndcgAtK: [3], gradedNdcg: false })
  t.true(Math.abs(binary['ndcg@3'] - 1 / Math.log2(3) / (1 + 1 / Math.log2(3))) < 1e-12)
  // Graded is the default because a grade is above 1.
  t.is(computeMetrics(run, qrels, { ndcgAtK: [3] })['ndcg@3'], graded['ndcg@3'])
  // With grades 0/1 only, graded and binary agree.
  const flat = qrelsOf({ q: { a: 1, b: 1, c: 0 } })
  const g = computeMetrics(run, flat, { ndcgAtK: [1, 3, 10], gradedNdcg: true })
  const b = computeMetrics(run, flat, { ndcgAtK: [1, 3, 10], gradedNdcg: false })
  for (const k of ['ndcg@1', 'ndcg@3', 'ndcg@10'] as const) t.true(Math.abs(g[k] - b[k]) < 1e-15)
})

test('which queries count, ties, unsorted input and relevanceThreshold', (t) => {
  const qrels = qrelsOf({
    q1: { r: 1 },
    q2: { r: 1 }, // no ranking: counts as empty
    q3: { n: 0 }, // no relevant document: not evaluated
  })
  const run = new Map([
    // a and r tie: the given order is kept, so r is 2nd
    ['q1', ranking(['a', 1], ['r', 1], ['b', 0.5])],
    ['q3', ranking(['n', 1])],
    ['q9', ranking(['r', 1])], // not judged: ignored
  ])
  const m = computeMetrics(run, qrels, { accuracyAtK: [1, 2], mrrAtK: [10] })
  t.is(m['accuracy@1'], 0) // (0 + 0) / 2
  t.is(m['accuracy@2'], 0.5) // (1 + 0) / 2
  t.is(m['mrr@10'], 0.25) // (1/2 + 0) / 2
  // Unsorted input is sorted by score first (stable), as compute_metrics does.
  const unsorted = computeMetrics(new Map([['q1', ranking(['b', 0.1], ['r', 0.9], ['a', 0.5])]]), qrelsOf({ q1: { r: 1 } }), { mrrAtK: [10] })
  t.is(unsorted['mrr@10'], 1)
  // relevanceThreshold 2: q1 (max grade 1) drops out; in q2 only x (grade 2) is relevant.
  const graded = qrelsOf({ q1: { a: 1 }, q2: { x: 2, y: 1 } })
  const run2 = new Map([['q1', ranking(['a', 1])], ['q2', ranking(['y', 2], ['x', 1])]])
  const th = computeMetrics(run2, graded, { relevanceThreshold: 2, mrrAtK: [10], precisionRecallAtK: [1] })
  t.is(th['mrr@10'], 0.5) // q2 only: first relevant at rank 2
  t.is(th['recall@1'], 0)
  // Plain objects work as well as Maps.
  t.deepEqual(computeMetrics({ q1: ranking(['r', 1]) }, { q1: { r: 1 } }), computeMetrics(new Map([['q1', ranking(['r', 1])]]), qrelsOf({ q1: { r: 1 } })))
})

test('computeMetrics rejects bad input with INVALID_ARGUMENT', async (t) => {
  const run = new Map([['q', ranking(['a', 1])]])
  const qrels = qrelsOf({ q: { a: 1 } })
  t.is(await code(() => computeMetrics(run, qrelsOf({ q: { a: 0 } }))), 'INVALID_ARGUMENT') // nothing to evaluate
  t.is(await code(() => computeMetrics(run, qrels, { ndcgAtK: [0] })), 'INVALID_ARGUMENT')
  t.is(await code(() => computeMetrics(run, qrels, { mapAtK: [1.5] })), 'INVALID_ARGUMENT')
  t.is(await code(() => computeMetrics(run, qrels, { relevanceThreshold: 0 })), 'INVALID_ARGUMENT')
  t.is(await code(() => computeMetrics(run, qrels, { ndcg: [10] } as MetricOptions)), 'INVALID_ARGUMENT')
  t.is(await code(() => computeMetrics(new Map([['q', [{ id: 'a', score: NaN }]]]), qrels)), 'INVALID_ARGUMENT')
  t.is(await code(() => computeMetrics(new Map([['q', [{ id: 1, score: 1 }]]]) as never, qrels)), 'INVALID_ARGUMENT')
  t.is(maxCutoff(), 100)
  t.is(maxCutoff({ ndcgAtK: [1000] }), 1000)
})

// ---------------------------------------------------------------------------------------------
// Golden values from PyLate / sentence-transformers and pytrec_eval

interface GoldenCase {
  name: string
  options: MetricOptions
  qrels: Record<string, Record<string, number>>
  rankings: Record<string, [string, number][]>
  expected: Record<string, number>
  ndcg_source: string
}

test('every metric matches PyLate (sentence-transformers) and trec_eval goldens within 1e-9', (t) => {
  const golden = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'metrics', 'golden.json'), 'utf8')) as { cases: GoldenCase[] }
  t.true(golden.cases.length >= 10)
  let maxDelta = 0
  let compared = 0
  for (const c of golden.cases) {
    const rankings = new Map(Object.entries(c.rankings).map(([q, hits]) => [q, ranking(...hits)]))
    const got = computeMetrics(rankings, qrelsOf(c.qrels), c.options)
    t.deepEqual(Object.keys(got).sort(), Object.keys(c.expected).sort(), c.name)
    for (const [key, want] of Object.entries(c.expected)) {
      const delta = Math.abs((got as Record<string, number>)[key] - want)
      maxDelta = Math.max(maxDelta, delta)
      compared++
      t.true(delta <= 1e-9, `${c.name} ${key}: ${(got as Record<string, number>)[key]} vs ${want}`)
    }
  }
  t.true(golden.cases.some((c) => c.ndcg_source.startsWith('pytrec_eval')))
  t.log(`${compared} values over ${golden.cases.length} cases, max |Δ| = ${maxDelta.toExponential(2)}`)
})

dataTest('graded nDCG@10 of the TREC DL BM25 runs equals the published trec_eval values', async (t) => {
  // SOURCE.md of each folder: trec_eval ndcg_cut.10 of bm25-top100.tsv is 0.5058 (DL19), 0.4796 (DL20).
  for (const [folder, want] of [['trec-dl-2019-passage-bm25top100', 0.5058], ['trec-dl-2020-passage-bm25top100', 0.4796]] as const) {
    const dir = path.join(DATA, folder)
    const { qrels } = await loadBeir(dir)
    const run = new Map<string, RankedHit[]>()
    for (const line of fs.readFileSync(path.join(dir, 'bm25-top100.tsv'), 'utf8').trim().split('\n').slice(1)) {
      const [q, d, , score] = line.split('\t')
      if (!run.has(q)) run.set(q, [])
      run.get(q)!.push({ id: d, score: Number(score) })
    }
    const m = computeMetrics(run, qrels)
    t.true(Math.abs(m['ndcg@10'] - want) < 5e-5, `${folder}: ${m['ndcg@10']}`)
  }
})

// ---------------------------------------------------------------------------------------------
// Model-card table

test('formatMetricsTable matches the model card layout and Python rounding', (t) => {
  const m: Metrics = { 'accuracy@1': 1, 'precision@10': 0.03125, 'recall@10': 0.09375, 'ndcg@10': 0.6532867981913646, 'mrr@10': 0.6, 'map@100': 0.516666666 }
  t.is(
    formatMetricsTable(m, 'ADI'),
    [
      '| Metric              | ADI        |',
      '|:--------------------|:-----------|',
      '| MaxSim_accuracy@1   | 1.0        |',
      // Python round(0.03125, 4) = 0.0312 and round(0.09375, 4) = 0.0938: exact ties go to even
      '| MaxSim_precision@10 | 0.0312     |',
      '| MaxSim_recall@10    | 0.0938     |',
      '| **MaxSim_ndcg@10**  | **0.6533** |',
      '| MaxSim_mrr@10       | 0.6        |',
      '| MaxSim_map@100      | 0.5167     |',
      '',
    ].join('\n'),
  )
  const two = formatMetricsTable({ A: { 'ndcg@10': 0.5, 'mrr@10': 0.25 }, B: { 'ndcg@10': 0.123456 } })
  t.is(
    two,
    ['| Metric             | A       | B          |', '|:-------------------|:--------|:-----------|', '| **MaxSim_ndcg@10** | **0.5** | **0.1235** |', '| MaxSim_mrr@10      | 0.25    | -          |', ''].join('\n'),
  )
  t.regex(formatMetricsTable(m), /^\| Metric +\| Value +\|/)
})

// ---------------------------------------------------------------------------------------------
// loadBeir

dataTest('loadBeir reads ADI (82 documents, 35 queries, 170 judgements)', async (t) => {
  const adi = await loadBeir(path.join(DATA, 'adi'))
  t.is(adi.corpus.length, 82) // wc -l corpus.jsonl
  t.is(adi.queries.length, 35) // wc -l queries.jsonl
  t.is(adi.qrels.size, 35) // distinct query-id in qrels.tsv
  t.is([...adi.qrels.values()].reduce((n, m) => n + m.size, 0), 170) // wc -l qrels.tsv minus the header
  t.is(adi.corpus[0].id, '1')
  t.true(adi.corpus[0].title.startsWith('the ibm dsd technical information center'))
  t.is(documentText(adi.corpus[0]), `${adi.corpus[0].title} ${adi.corpus[0].text}`)
  t.is(adi.qrels.get('1')?.get('17'), 1)
  t.is(documentText({ title: '', text: ' x ' }), 'x')
})

dataTest('loadBeir reads graded Cranfield qrels and the SciFact train split', async (t) => {
  const cran = await loadBeir(path.join(DATA, 'cranfield'))
  t.is(cran.corpus.length, 1400)
  t.is(cran.queries.length, 225)
  const grades = [...cran.qrels.values()].flatMap((m) => [...m.values()])
  t.is(grades.length, 1612)
  t.deepEqual([1, 2, 3, 4].map((g) => grades.filter((x) => x === g).length), [363, 734, 387, 128])
  // split 'train' reads qrels-train.tsv and queries-train.jsonl
  const train = await loadBeir(path.join(DATA, 'scifact'), { split: 'train' })
  t.is(train.queries.length, 809)
  t.is(train.qrels.size, 809)
  t.is([...train.qrels.values()].reduce((n, m) => n + m.size, 0), 919)
  t.is(train.corpus.length, 5183)
})

test('loadBeir reads the BEIR qrels/<split>.tsv layout and reports bad folders and lines', async (t) => {
  const dir = tmp()
  fs.mkdirSync(path.join(dir, 'qrels'))
  fs.writeFileSync(path.join(dir, 'corpus.jsonl'), '\uFEFF{"_id": "d1", "title": "T", "text": "one"}\r\n\n{"_id": 2, "text": "two"}\n')
  fs.writeFileSync(path.join(dir, 'queries.jsonl'), '{"_id": "q1", "text": "first?"}\n')
  fs.writeFileSync(path.join(dir, 'qrels', 'test.tsv'), 'query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\t2\t0\n')
  const ds = await loadBeir(dir)
  t.deepEqual(ds.corpus, [{ id: 'd1', title: 'T', text: 'one' }, { id: '2', title: '', text: 'two' }])
  t.deepEqual([...ds.qrels.get('q1')!], [['d1', 2], ['2', 0]])

  const expectError = async (p: Promise<unknown>, want: RegExp) => {
    const err = await t.throwsAsync(p, { instanceOf: ColbertError })
    t.is(err?.code, 'INVALID_ARGUMENT')
    t.regex(err!.message, want)
  }
  await expectError(loadBeir(path.join(dir, 'missing')), /dataset folder not found/)
  await expectError(loadBeir(dir, { split: 'dev' }), /no qrels for split 'dev'.*qrels\/dev\.tsv, qrels-dev\.tsv/)
  fs.mkdirSync(path.join(dir, 'raw'))
  await expectError(loadBeir(path.join(dir, 'raw')), /corpus\.jsonl is missing/)

  fs.writeFileSync(path.join(dir, 'corpus.jsonl'), '{"_id": "d1", "text": "one"}\n{"_id": "d2", "text": \n')
  await expectError(loadBeir(dir), /corpus\.jsonl:2: not valid JSON/)
  fs.writeFileSync(path.join(dir, 'corpus.jsonl'), '{"_id": "d1", "text": "one"}\n{"_id": "d1", "text": "again"}\n')
  await expectError(loadBeir(dir), /corpus\.jsonl:2: duplicate _id "d1" \(first on line 1\)/)
  fs.writeFileSync(path.join(dir, 'corpus.jsonl'), '{"_id": "d1", "title": "no text"}\n')
  await expectError(loadBeir(dir), /corpus\.jsonl:1: "text" is missing/)
  fs.writeFileSync(path.join(dir, 'corpus.jsonl'), '{"_id": "d1", "text": "one"}\n')
  fs.writeFileSync(path.join(dir, 'queries.jsonl'), '["q1", "text"]\n')
  await expectError(loadBeir(dir), /queries\.jsonl:1: expected a JSON object/)
  fs.writeFileSync(path.join(dir, 'queries.jsonl'), '{"_id": "q1", "text": "first?"}\n')
  fs.writeFileSync(path.join(dir, 'qrels', 'test.tsv'), 'query-id\tcorpus-id\tscore\nq1\td1\thigh\n')
  await expectError(loadBeir(dir), /test\.tsv:2: score must be a number/)
  fs.writeFileSync(path.join(dir, 'qrels', 'test.tsv'), 'q1\td1\t1\nq1 d1 1\n')
  await expectError(loadBeir(dir), /test\.tsv:2: expected 3 tab-separated fields/)
  fs.writeFileSync(path.join(dir, 'qrels', 'test.tsv'), 'q1\td1\t1\nq1\td1\t2\n')
  await expectError(loadBeir(dir), /test\.tsv:2: q1 d1 is judged twice/)
})

// ---------------------------------------------------------------------------------------------
// evaluate() with a fake model: exact ranking semantics

/** Single-token, one-dimensional embeddings: MaxSim(query 1, doc v) = v. */
function oneDim(values: number[]): Embeddings {
  return { dim: 1, offsets: Uint32Array.from({ length: values.length + 1 }, (_, i) => i), data: Float32Array.from(values) }
}

test('exhaustive ranking keeps the top k across chunks; ties go to the earlier document', async (t) => {
  // Document i's score is value[i]; several ties, spread over chunks of 3.
  const values = [0.5, 0.9, 0.5, 0.1, 0.9, 0.7, 0.5, 0.3, 0.9, 0.2]
  const corpus = values.map((v, i) => ({ id: `d${i}`, title: '', text: String(v) }))
  const fake = {
    encode: async (texts: string[], o: { isQuery?: boolean; onProgress?: (p: { done: number; total: number }) => void }) => {
      o.onProgress?.({ done: texts.length, total: texts.length })
      return oneDim(o.isQuery ? texts.map(() => 1) : texts.map(Number))
    },
  } as unknown as ColBERT
  const dataset: BeirDataset = { corpus, queries: [{ id: 'q', text: 'x' }, { id: 'unjudged', text: 'y' }], qrels: qrelsOf({ q: { d4: 1, d6: 1 } }) }
  const events: EvaluateProgress[] = []
  const r = await evaluate({ model: fake, dataset, k: 5, chunkSize: 3, onProgress: (p) => events.push(p) })
  // Best first; among 0.9s d1 < d4 < d8, among 0.5s d0 < d2 < d6.
  t.deepEqual(r.rankings.get('q')!.map((h) => h.id), ['d1', 'd4', 'd8', 'd5', 'd0'])
  t.deepEqual([...r.rankings.keys()], ['q'])
  t.is(r.queries, 1)
  t.is(r.documents, 10)
  t.is(r.metrics['accuracy@1'], 0) // d1 is not relevant
  t.is(r.metrics['mrr@10'], 0.5) // d4 at rank 2
  t.is(r.metrics['recall@10'], 0.5) // d6 (0.5, after d0 and d2) is cut by k = 5
  t.deepEqual(events.filter((e) => e.stage === 'search').map((e) => e.done), [3, 6, 9, 10])
  t.true(events.some((e) => e.stage === 'encode-queries'))
  t.deepEqual(events.filter((e) => e.stage === 'encode-documents').at(-1), { stage: 'encode-documents', done: 10, total: 10 })

  const all = await evaluate({ model: fake, dataset, chunkSize: 4 })
  t.deepEqual(all.rankings.get('q')!.map((h) => h.id), ['d1', 'd4', 'd8', 'd5', 'd0', 'd2', 'd6', 'd7', 'd9', 'd3'])

  // Re-ranking pools: only each query's candidates (d6 comes back once d1, d4, d8 are left out).
  const pooled = await evaluate({ model: fake, dataset, chunkSize: 3, pools: new Map([['q', ['d3', 'd6', 'd0', 'd9', 'd6']]]) })
  t.deepEqual(pooled.rankings.get('q')!.map((h) => h.id), ['d0', 'd6', 'd9', 'd3'])
  t.is(pooled.documents, 4) // distinct candidates encoded
  t.is(pooled.metrics['mrr@10'], 0.5)
  const noPool = await evaluate({ model: fake, dataset, pools: {} })
  t.deepEqual(noPool.rankings.get('q'), [])
  t.is(noPool.metrics['ndcg@10'], 0)
  t.is(await code(evaluate({ model: fake, dataset, pools: { q: ['d1', 'nope'] } })), 'INVALID_ARGUMENT')

  const controller = new AbortController()
  controller.abort()
  t.is(await code(evaluate({ model: fake, dataset, signal: controller.signal })), 'ABORTED')
  t.is(await code(evaluate({ model: fake, dataset, chunkSize: 0 })), 'INVALID_ARGUMENT')
  t.is(await code(evaluate({ model: fake, dataset, bogus: 1 } as never)), 'INVALID_ARGUMENT')
  t.is(await code(evaluate({ model: fake, dataset: { ...dataset, qrels: qrelsOf({ q: { d4: 0 } }) } })), 'INVALID_ARGUMENT')
  t.is(await code(evaluate({ model: fake, dataset: path.join(DATA, 'no-such-collection') })), 'INVALID_ARGUMENT')
})

// ---------------------------------------------------------------------------------------------
// evaluate() end to end with the stand-in model

/** 30 ADI documents, the queries judged on them and their judgements restricted to them. */
async function adiSubset(): Promise<BeirDataset> {
  const adi = await loadBeir(path.join(DATA, 'adi'))
  const corpus = adi.corpus.slice(0, 30)
  const ids = new Set(corpus.map((d) => d.id))
  const qrels: Qrels = new Map()
  for (const [q, judged] of adi.qrels) {
    const kept = new Map([...judged].filter(([d]) => ids.has(d)))
    if (kept.size > 0) qrels.set(q, kept)
  }
  return { corpus, queries: adi.queries.filter((q) => qrels.has(q.id)), qrels }
}

/** Concatenates embedding batches. */
function concat(parts: Embeddings[]): Embeddings {
  const offsets = [0]
  for (const p of parts) for (let i = 1; i < p.offsets.length; i++) offsets.push(offsets[offsets.length - 1] + p.offsets[i] - p.offsets[i - 1])
  const data = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0))
  let o = 0
  for (const p of parts) {
    data.set(p.data, o)
    o += p.data.length
  }
  return { dim: parts[0].dim, offsets: Uint32Array.from(offsets), data }
}

/** Best-first ids by exact MaxSim, ties by corpus order. */
function argsort(q: Embeddings, d: Embeddings, ids: string[], qi: number, k: number): RankedHit[] {
  const s = maxsim(q, d)
  const n = count(d)
  const row = s.subarray(qi * n, (qi + 1) * n)
  return [...row.keys()].sort((a, b) => row[b] - row[a] || a - b).slice(0, k).map((i) => ({ id: ids[i], score: row[i] }))
}

const e2e = withData(async () => {
  const model = await ColBERT.fromPretrained(STANDIN, { quantized: true })
  const dataset = await adiSubset()
  return { model, dataset }
})

dataTest('evaluate on 30 ADI documents: exhaustive equals a direct maxsim argsort, PLAID agrees', async (t) => {
  const { model, dataset } = await e2e
  const judged = dataset.queries
  t.true(judged.length >= 10, `${judged.length} judged queries`)
  const ids = dataset.corpus.map((d) => d.id)

  const exhaustive = await evaluate({ model, dataset })
  t.is(exhaustive.queries, judged.length)
  t.is(exhaustive.documents, 30)
  t.false(exhaustive.gradedNdcg)
  for (const [key, v] of Object.entries(exhaustive.metrics)) t.true(v >= 0 && v <= 1, `${key} = ${v}`)
  t.true(exhaustive.metrics['ndcg@10'] > 0.2, `ndcg@10 = ${exhaustive.metrics['ndcg@10']}`)
  t.true(exhaustive.timings.encodeDocumentsMs > 0 && exhaustive.timings.encodeQueriesMs > 0 && exhaustive.timings.searchMs >= 0)

  // One chunk: the same encode calls as here, so the same embeddings and scores.
  const q = await model.encode(judged.map((x) => x.text), { isQuery: true })
  const d = await model.encode(dataset.corpus.map(documentText), { isQuery: false })
  judged.forEach((query, qi) => t.deepEqual(exhaustive.rankings.get(query.id), argsort(q, d, ids, qi, 30), query.id))
  t.deepEqual(exhaustive.metrics, computeMetrics(exhaustive.rankings, dataset.qrels))

  // Chunks of 7 documents and k = 5: encoding per chunk changes int8 activations' scales, so the
  // reference encodes the same chunks.
  const chunked = await evaluate({ model, dataset, chunkSize: 7, k: 5 })
  const parts: Embeddings[] = []
  for (let s = 0; s < 30; s += 7) parts.push(await model.encode(dataset.corpus.slice(s, s + 7).map(documentText), { isQuery: false }))
  const dc = concat(parts)
  judged.forEach((query, qi) => t.deepEqual(chunked.rankings.get(query.id), argsort(q, dc, ids, qi, 5), query.id))

  // Through a PLAID index holding the same documents.
  const dir = tmp()
  const index = await PlaidIndex.create(dir)
  try {
    await index.add(ids, d)
    const viaIndex = await evaluate({ model, dataset, index })
    t.is(viaIndex.documents, 30)
    t.is(viaIndex.timings.encodeDocumentsMs, 0)
    let worst = 0
    for (const [key, v] of Object.entries(viaIndex.metrics)) {
      t.true(v >= 0 && v <= 1, `${key} = ${v}`)
      worst = Math.max(worst, Math.abs(v - (exhaustive.metrics as Record<string, number>)[key]))
    }
    t.log(`exhaustive ndcg@10 ${exhaustive.metrics['ndcg@10'].toFixed(4)}, PLAID ${viaIndex.metrics['ndcg@10'].toFixed(4)}; max |Δ| over metrics ${worst.toFixed(4)}`)
    t.true(worst <= 0.1, `PLAID vs exhaustive max |Δ| ${worst}`)
    t.log('\n' + formatMetricsTable({ exhaustive: exhaustive.metrics, plaid: viaIndex.metrics }))
  } finally {
    await index.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

dataTest('evaluate reads a BEIR folder path', async (t) => {
  const { model } = await e2e
  const dir = tmp()
  const ds = await adiSubset()
  const few = ds.queries.slice(0, 3)
  fs.writeFileSync(path.join(dir, 'corpus.jsonl'), ds.corpus.map((d) => JSON.stringify({ _id: d.id, title: d.title, text: d.text })).join('\n') + '\n')
  fs.writeFileSync(path.join(dir, 'queries.jsonl'), few.map((q) => JSON.stringify({ _id: q.id, text: q.text })).join('\n') + '\n')
  const rows = few.flatMap((q) => [...ds.qrels.get(q.id)!].map(([d, g]) => `${q.id}\t${d}\t${g}`))
  fs.writeFileSync(path.join(dir, 'qrels.tsv'), ['query-id\tcorpus-id\tscore', ...rows].join('\n') + '\n')
  const r = await evaluate({ model, dataset: dir, metricOptions: { ndcgAtK: [5, 10] } })
  t.is(r.queries, 3)
  t.deepEqual(Object.keys(r.metrics).filter((k) => k.startsWith('ndcg')), ['ndcg@5', 'ndcg@10'])
  fs.rmSync(dir, { recursive: true, force: true })
})
