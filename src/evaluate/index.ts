// Retrieval evaluation as PyLate does it: BEIR-layout folders, exhaustive MaxSim (or a PLAID
// index) and sentence-transformers' InformationRetrievalEvaluator metrics, with trec_eval-style
// graded nDCG on top.
// The BEIR loader is in collection.ts, the metrics and their table in metrics.ts; this file holds
// the runner, `evaluate`, and re-exports the other two.
import { checkSignal, optionKeys, positiveInt } from '../arguments'
import { count, maxsimAsync, type Embeddings } from '../embeddings'
import { abortError, invalidArgument } from '../errors'
import type { ColBERT } from '../model'
import type { PlaidIndex, SearchOptions } from '../plaid_index'
import { guard } from '../progress'
import { documentText, loadBeir, type BeirDataset, type Qrels } from './collection'
import {
  computeMetrics,
  maxCutoff,
  resolveMetricOptions,
  toQrels,
  type MetricOptions,
  type Metrics,
  type Rankings,
} from './metrics'

export { documentText, loadBeir } from './collection'
export type { BeirDataset, BeirDocument, BeirQuery, LoadBeirOptions, Qrels } from './collection'
export { computeMetrics, formatMetricsTable, maxCutoff } from './metrics'
export type {
  FormatMetricsTableOptions,
  MetricFamily,
  MetricName,
  MetricOptions,
  Metrics,
  RankedHit,
  Rankings,
} from './metrics'

/** One progress event of `evaluate`. */
export interface EvaluateProgress {
  /** What runs: queries are encoded first, then documents are encoded and scored chunk by chunk (`search` after each chunk), or the index is searched. */
  stage: 'encode-documents' | 'encode-queries' | 'search'
  /** Documents (encode-documents, exhaustive search) or queries (encode-queries, index search) done. */
  done: number
  /** Documents or queries in all, counted as `done` is. */
  total: number
}

/** Options of `evaluate`. Unknown keys are `INVALID_ARGUMENT`. */
export interface EvaluateOptions {
  /** The model that encodes the queries (and, without `index`, the documents). */
  model: ColBERT
  /** A BEIR folder (read with `loadBeir`) or a loaded dataset. */
  dataset: string | BeirDataset
  /** Split to read when `dataset` is a folder (default `'test'`). */
  split?: string
  /** Rank through this index (holding the corpus under its BEIR ids) instead of exhaustive MaxSim. */
  index?: PlaidIndex
  /**
   * Re-rank per-query candidate pools instead (query id → corpus ids, e.g. a BM25 top-100 as in
   * the TREC DL folders): each judged query is scored by exact MaxSim against its own candidates
   * only; a judged query without a pool gets an empty ranking. Not with `index`.
   */
  pools?: ReadonlyMap<string, readonly string[]> | Record<string, readonly string[]>
  /** Documents ranked per query (default: the largest cutoff of the metrics, 100 by default). */
  k?: number
  /** Texts per encoder batch (default 32). */
  batchSize?: number
  /**
   * Documents encoded and scored at a time in exhaustive mode (default 512). Bounds memory; scoring
   * runs off the event loop (`maxsimAsync`) on the shared thread budget.
   */
  chunkSize?: number
  /** Which metrics to compute and how relevance is judged (see `computeMetrics`); its largest cutoff is the default `k`. */
  metricOptions?: MetricOptions
  /** Extra `PlaidIndex.search` settings in index mode. */
  searchOptions?: Omit<SearchOptions, 'k' | 'signal'>
  /** Aborts the evaluation: it rejects with `ABORTED`. */
  signal?: AbortSignal
  /** Called as documents and queries are encoded and ranked. A throw is only warned about. */
  onProgress?: (progress: EvaluateProgress) => void
}

/** What `evaluate` measured. */
export interface EvaluateResult {
  /** The metrics, as `computeMetrics` gives them (means over the evaluated queries). */
  metrics: Metrics
  /** Queries evaluated (those with at least one relevant document). */
  queries: number
  /** Documents ranked against: the corpus, the index's live documents, or the pools' distinct candidates. */
  documents: number
  /** Whether nDCG used graded gains. */
  gradedNdcg: boolean
  /** Wall-clock time of each phase, in milliseconds. */
  timings: {
    /** Encoding the documents (0 with `index`). */
    encodeDocumentsMs: number
    /** Encoding the queries. */
    encodeQueriesMs: number
    /** Ranking: the index search, or exact MaxSim over the documents. */
    searchMs: number
  }
  /** The top-k of every evaluated query, best first. */
  rankings: Rankings
}

// ---------------------------------------------------------------------------------------------
// evaluate()

const EVALUATE_KEYS = optionKeys<EvaluateOptions>()(
  'model',
  'dataset',
  'split',
  'index',
  'pools',
  'k',
  'batchSize',
  'chunkSize',
  'metricOptions',
  'searchOptions',
  'signal',
  'onProgress',
)

function toPools(value: unknown): Map<string, readonly string[]> {
  const bad = () => invalidArgument('pools must be a Map<queryId, corpusId[]> (or a plain object of arrays)')
  if (value === null || typeof value !== 'object') throw bad()
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value)
  for (const [, ids] of entries) if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string')) throw bad()
  return new Map(entries.map(([q, ids]) => [String(q), ids as string[]]))
}

function checkDataset(value: unknown): BeirDataset {
  const d = value as Partial<BeirDataset> | null
  if (!d || typeof d !== 'object' || !Array.isArray(d.corpus) || !Array.isArray(d.queries) || !(d.qrels instanceof Map)) {
    throw invalidArgument('dataset must be a BEIR folder path or { corpus: { id, title, text }[], queries: { id, text }[], qrels: Map }')
  }
  const seen = new Set<string>()
  d.corpus.forEach((doc, i) => {
    if (!doc || typeof doc.id !== 'string' || typeof doc.text !== 'string' || (doc.title !== undefined && typeof doc.title !== 'string')) {
      throw invalidArgument(`dataset.corpus[${i}] must be { id: string, title?: string, text: string }`)
    }
    if (seen.has(doc.id)) throw invalidArgument(`dataset.corpus has the id ${JSON.stringify(doc.id)} twice`)
    seen.add(doc.id)
  })
  seen.clear()
  d.queries.forEach((q, i) => {
    if (!q || typeof q.id !== 'string' || typeof q.text !== 'string') throw invalidArgument(`dataset.queries[${i}] must be { id: string, text: string }`)
    if (seen.has(q.id)) throw invalidArgument(`dataset.queries has the id ${JSON.stringify(q.id)} twice`)
    seen.add(q.id)
  })
  return { corpus: d.corpus, queries: d.queries, qrels: toQrels(d.qrels) }
}

/** A bounded min-heap of (score, document index) keeping the best `k`: higher score, then lower index. */
class TopK {
  readonly scores: Float64Array
  readonly docs: Int32Array
  size = 0

  constructor(readonly k: number) {
    this.scores = new Float64Array(k)
    this.docs = new Int32Array(k)
  }

  /** `a` ranks below `b`. */
  #worse(sa: number, da: number, sb: number, db: number): boolean {
    return sa < sb || (sa === sb && da > db)
  }

  push(score: number, doc: number) {
    const { scores, docs } = this
    if (this.size < this.k) {
      let i = this.size++
      while (i > 0) {
        const p = (i - 1) >> 1
        if (!this.#worse(score, doc, scores[p], docs[p])) break
        scores[i] = scores[p]
        docs[i] = docs[p]
        i = p
      }
      scores[i] = score
      docs[i] = doc
      return
    }
    if (this.k === 0 || !this.#worse(scores[0], docs[0], score, doc)) return
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= this.k) break
      const r = l + 1
      const c = r < this.k && this.#worse(scores[r], docs[r], scores[l], docs[l]) ? r : l
      if (!this.#worse(scores[c], docs[c], score, doc)) break
      scores[i] = scores[c]
      docs[i] = docs[c]
      i = c
    }
    scores[i] = score
    docs[i] = doc
  }

  /** Best first. */
  sorted(): { score: number; doc: number }[] {
    const out = Array.from({ length: this.size }, (_, i) => ({ score: this.scores[i], doc: this.docs[i] }))
    return out.sort((a, b) => b.score - a.score || a.doc - b.doc)
  }
}

const now = () => performance.now()

/**
 * Evaluates a model on a BEIR collection as PyLate's `PyLateInformationRetrievalEvaluator` does:
 * the judged queries (at least one relevant document) are encoded with `isQuery: true` and ranked,
 * and `computeMetrics` scores the top `k`.
 *
 * Without `index`, ranking is exhaustive exact MaxSim (`maxsimAsync`) over the whole corpus: documents
 * (`(title + ' ' + text).trim()`, `isQuery: false`) are encoded and scored `chunkSize` at a time,
 * off the event loop, and each query keeps its `k` best. Equal scores rank
 * the document that comes first in the corpus first (PyLate's order among ties is arbitrary).
 * One difference from PyLate: PyLate zero-pads documents before scoring, so a query token's
 * contribution to a document shorter than the longest one is at least 0; `maxsim` scores real
 * tokens only. With normalised embeddings a token's best match is almost never negative.
 *
 * With `index` (a `PlaidIndex` holding the corpus under its BEIR ids) the queries are searched
 * with `index.search(queries, { k, ...searchOptions })` and no document is encoded.
 *
 * With `pools` (re-ranking, as TREC DL's BM25 top-100), only the pools' documents are encoded and
 * each query keeps its best `k` among its own candidates, ties again in corpus order. The cost is
 * that of exhaustive MaxSim over the union of the pools.
 */
export async function evaluate(options: EvaluateOptions): Promise<EvaluateResult> {
  if (options === null || typeof options !== 'object') throw invalidArgument('evaluate takes an options object')
  for (const key of Object.keys(options)) if (!EVALUATE_KEYS.has(key)) throw invalidArgument(`unknown option ${JSON.stringify(key)}`)
  const { model, index } = options
  if (!model || typeof (model as { encode?: unknown }).encode !== 'function') throw invalidArgument('model must be a ColBERT')
  if (index !== undefined && (index === null || typeof (index as { search?: unknown }).search !== 'function')) {
    throw invalidArgument('index must be a PlaidIndex')
  }
  const pools = options.pools === undefined ? undefined : toPools(options.pools)
  if (index && pools) throw invalidArgument('pass either index or pools, not both')
  const signal = checkSignal(options.signal)
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw invalidArgument('onProgress must be a function')
  const progress = guard(options.onProgress, 'onProgress')
  const batchSize = positiveInt(options.batchSize, 'batchSize') ?? 32
  const chunkSize = positiveInt(options.chunkSize, 'chunkSize') ?? 512
  const metricOptions = options.metricOptions ?? {}
  const k = positiveInt(options.k, 'k') ?? maxCutoff(metricOptions)
  const searchOptions = options.searchOptions ?? {}
  if (searchOptions === null || typeof searchOptions !== 'object') throw invalidArgument('searchOptions must be an object')
  if ('k' in searchOptions || 'signal' in searchOptions) throw invalidArgument('pass k and signal to evaluate itself, not in searchOptions')

  let dataset: BeirDataset
  if (typeof options.dataset === 'string') {
    dataset = await loadBeir(options.dataset, { split: options.split })
  } else {
    if (options.split !== undefined) throw invalidArgument('split applies only when dataset is a folder path')
    dataset = checkDataset(options.dataset)
  }
  if (signal?.aborted) throw abortError(signal)

  const resolved = resolveMetricOptions(metricOptions, dataset.qrels)
  // As sentence-transformers: only queries with at least one relevant document, in file order.
  const threshold = resolved.relevanceThreshold
  const judged = dataset.queries.filter((q) => [...(dataset.qrels.get(q.id)?.values() ?? [])].some((g) => g >= threshold))
  if (judged.length === 0) throw invalidArgument('no query of the dataset has a relevant document in its qrels')
  const qrels: Qrels = new Map(judged.map((q) => [q.id, dataset.qrels.get(q.id)!]))

  const timings = { encodeDocumentsMs: 0, encodeQueriesMs: 0, searchMs: 0 }
  let t0 = now()
  const queryEmbeddings = await model.encode(
    judged.map((q) => q.text),
    { isQuery: true, batchSize, signal, onProgress: progress && (({ done, total }) => progress({ stage: 'encode-queries', done, total })) },
  )
  timings.encodeQueriesMs = now() - t0

  const rankings: Rankings = new Map()
  let documents: number
  if (index) {
    progress?.({ stage: 'search', done: 0, total: judged.length })
    t0 = now()
    const hits = await index.search(queryEmbeddings, { ...searchOptions, k, signal })
    timings.searchMs = now() - t0
    progress?.({ stage: 'search', done: judged.length, total: judged.length })
    judged.forEach((q, i) => rankings.set(q.id, hits[i].map((h) => ({ id: h.id, score: h.score }))))
    documents = index.info.documents
  } else {
    // The documents to encode, in corpus order: all of them, or the union of the judged queries' pools.
    let corpus = dataset.corpus
    // With pools: per query, the sorted positions of its candidates in `corpus`.
    let candidates: Int32Array[] | undefined
    if (pools) {
      const position = new Map(corpus.map((d, i) => [d.id, i]))
      const wanted = judged.map((q) =>
        (pools.get(q.id) ?? []).map((id) => {
          const i = position.get(id)
          if (i === undefined) throw invalidArgument(`the pool of query ${JSON.stringify(q.id)} names ${JSON.stringify(id)}, which is not in the corpus`)
          return i
        }),
      )
      const used = [...new Set(wanted.flat())].sort((a, b) => a - b)
      const renumber = new Map(used.map((ci, j) => [ci, j]))
      corpus = used.map((ci) => dataset.corpus[ci])
      candidates = wanted.map((list) => Int32Array.from(new Set(list.map((ci) => renumber.get(ci)!))).sort())
    }
    documents = corpus.length
    const heaps = judged.map(() => new TopK(Math.min(k, corpus.length)))
    const cursor = new Int32Array(judged.length)
    const nq = judged.length
    for (let start = 0; start < corpus.length; start += chunkSize) {
      const end = Math.min(corpus.length, start + chunkSize)
      t0 = now()
      const docEmbeddings: Embeddings = await model.encode(
        corpus.slice(start, end).map(documentText),
        {
          isQuery: false,
          batchSize,
          signal,
          onProgress: progress && (({ done }) => progress({ stage: 'encode-documents', done: start + done, total: corpus.length })),
        },
      )
      timings.encodeDocumentsMs += now() - t0
      if (signal?.aborted) throw abortError(signal)
      t0 = now()
      const m = count(docEmbeddings)
      const scores = await maxsimAsync(queryEmbeddings, docEmbeddings)
      for (let qi = 0; qi < nq; qi++) {
        const heap = heaps[qi]
        const row = qi * m - start
        if (candidates) {
          const mine = candidates[qi]
          let c = cursor[qi]
          for (; c < mine.length && mine[c] < end; c++) heap.push(scores[row + mine[c]], mine[c])
          cursor[qi] = c
        } else {
          for (let j = start; j < end; j++) heap.push(scores[row + j], j)
        }
      }
      timings.searchMs += now() - t0
      progress?.({ stage: 'search', done: end, total: corpus.length })
      await new Promise(setImmediate)
      if (signal?.aborted) throw abortError(signal)
    }
    judged.forEach((q, i) => rankings.set(q.id, heaps[i].sorted().map((h) => ({ id: corpus[h.doc].id, score: h.score }))))
  }

  const metrics = computeMetrics(rankings, qrels, { ...metricOptions, gradedNdcg: resolved.gradedNdcg })
  return { metrics, queries: judged.length, documents, gradedNdcg: resolved.gradedNdcg, timings, rankings }
}
