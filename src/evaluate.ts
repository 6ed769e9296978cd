// Retrieval evaluation as PyLate does it: BEIR-layout folders, exhaustive MaxSim (or a PLAID
// index) and sentence-transformers' InformationRetrievalEvaluator metrics, with trec_eval-style
// graded nDCG on top.
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'

import { checkSignal, optionKeys, positiveInt } from './arguments'
import { count, maxsimAsync, type Embeddings } from './embeddings'
import { abortError, ColbertError, invalidArgument } from './errors'
import type { ColBERT } from './model'
import type { PlaidIndex, SearchOptions } from './plaid_index'
import { badLine, parseJsonLine } from './jsonl'
import { guard } from './progress'

/** One corpus document of a BEIR folder (`corpus.jsonl`: `_id`, `title`, `text`). */
export interface BeirDocument {
  id: string
  /** `''` when the line has no title. */
  title: string
  text: string
}

/** One query of a BEIR folder (`queries.jsonl`: `_id`, `text`). */
export interface BeirQuery {
  id: string
  text: string
}

/** Relevance judgements: query id → document id → grade (`qrels/*.tsv`, column `score`). */
export type Qrels = Map<string, Map<string, number>>

/** A BEIR collection in memory, in file order. */
export interface BeirDataset {
  corpus: BeirDocument[]
  /** Every query of the file, judged or not (`evaluate` keeps the judged ones). */
  queries: BeirQuery[]
  qrels: Qrels
}

export interface LoadBeirOptions {
  /** Which qrels (and queries) to read (default `'test'`), see `loadBeir`. */
  split?: string
}

/** One ranked document. */
export interface RankedHit {
  id: string
  score: number
}

/** Query id → ranked documents, best first. */
export type Rankings = Map<string, RankedHit[]>

export type MetricFamily = 'accuracy' | 'precision' | 'recall' | 'ndcg' | 'mrr' | 'map'
/** A metric key such as `'ndcg@10'`. */
export type MetricName = `${MetricFamily}@${number}`
/** Metric values in sentence-transformers' order: accuracy, precision, recall, nDCG, MRR, MAP. */
export type Metrics = { [metric: MetricName]: number }

export interface MetricOptions {
  /** Default `[1, 3, 5, 10]`. */
  accuracyAtK?: readonly number[]
  /** Default `[1, 3, 5, 10]`. */
  precisionRecallAtK?: readonly number[]
  /** Default `[10]`. */
  mrrAtK?: readonly number[]
  /** Default `[10]`. */
  ndcgAtK?: readonly number[]
  /** Default `[100]`. */
  mapAtK?: readonly number[]
  /**
   * nDCG with the grades as gains, as trec_eval's `ndcg_cut` (default: `true` when some grade is
   * above 1, e.g. TREC DL or Cranfield; otherwise the binary nDCG of sentence-transformers). Both
   * agree when every judged grade is 0 or 1.
   */
  gradedNdcg?: boolean
  /**
   * The smallest grade that counts as relevant for the binary metrics and for choosing which
   * queries are evaluated (default 1, i.e. grade > 0; trec_eval's `-l`). TREC DL practice is 2.
   */
  relevanceThreshold?: number
}

export interface EvaluateProgress {
  stage: 'encode-documents' | 'encode-queries' | 'search'
  /** Documents (encode-documents, exhaustive search) or queries (encode-queries, index search) done. */
  done: number
  total: number
}

export interface EvaluateOptions {
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
  metricOptions?: MetricOptions
  /** Extra `PlaidIndex.search` settings in index mode. */
  searchOptions?: Omit<SearchOptions, 'k' | 'signal'>
  signal?: AbortSignal
  /** Called as documents and queries are encoded and ranked. A throw is only warned about. */
  onProgress?: (progress: EvaluateProgress) => void
}

export interface EvaluateResult {
  metrics: Metrics
  /** Queries evaluated (those with at least one relevant document). */
  queries: number
  /** Documents ranked against: the corpus, the index's live documents, or the pools' distinct candidates. */
  documents: number
  /** Whether nDCG used graded gains. */
  gradedNdcg: boolean
  timings: { encodeDocumentsMs: number; encodeQueriesMs: number; searchMs: number }
  /** The top-k of every evaluated query, best first. */
  rankings: Rankings
}

// ---------------------------------------------------------------------------------------------
// Loading BEIR folders

function ioError(message: string, cause: unknown): ColbertError {
  return new ColbertError('IO', `${message}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(file)).isFile()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return false
    throw ioError(`cannot read ${file}`, e)
  }
}

/** Streams the lines of a UTF-8 file (BOM, `\r` and blank lines dropped) with 1-based numbers. */
async function readLines(file: string, onLine: (line: string, lineNo: number) => void): Promise<void> {
  const input = fs.createReadStream(file, { encoding: 'utf8' })
  const lines = readline.createInterface({ input, crlfDelay: Infinity })
  let lineNo = 0
  try {
    for await (let line of lines) {
      lineNo++
      if (lineNo === 1 && line.charCodeAt(0) === 0xfeff) line = line.slice(1)
      if (line.trim() === '') continue
      onLine(line, lineNo)
    }
  } catch (e) {
    if (e instanceof ColbertError) throw e
    throw ioError(`cannot read ${file}`, e)
  } finally {
    lines.close()
    input.destroy()
  }
}

function idField(file: string, lineNo: number, obj: Record<string, unknown>): string {
  const id = obj._id
  if (typeof id === 'number' && Number.isFinite(id)) return String(id)
  if (typeof id !== 'string' || id.length === 0) throw badLine(file, lineNo, '"_id" must be a non-empty string')
  return id
}

function textField(file: string, lineNo: number, obj: Record<string, unknown>, key: string, optional: boolean): string {
  const value = obj[key]
  if (value === undefined || value === null) {
    if (optional) return ''
    throw badLine(file, lineNo, `"${key}" is missing`)
  }
  if (typeof value !== 'string') throw badLine(file, lineNo, `"${key}" must be a string`)
  return value
}

async function firstFile(candidates: string[]): Promise<string | undefined> {
  for (const c of candidates) if (await isFile(c)) return c
  return undefined
}

/**
 * Reads a BEIR-layout folder:
 * - `corpus.jsonl` (`_id`, `title` optional, `text`), streamed line by line;
 * - queries from `queries-<split>.jsonl` when present, else `queries.jsonl` (`_id`, `text`);
 * - qrels from `qrels/<split>.tsv` (BEIR), else `qrels-<split>.tsv`, else `qrels.tsv` for the
 *   `'test'` split: tab-separated `query-id corpus-id score`, with an optional header line (a
 *   first line whose score is not a number). Every row is kept, grade 0 and negative included.
 *
 * Ids must be unique (a qrels pair may repeat only with the same grade). A missing folder or
 * file, or a malformed line, is `INVALID_ARGUMENT` naming the file and line; other file-system
 * failures are `IO`.
 */
export async function loadBeir(dir: string, options: LoadBeirOptions = {}): Promise<BeirDataset> {
  if (typeof dir !== 'string' || dir.length === 0) throw invalidArgument('the dataset path must be a non-empty string')
  if (options === null || typeof options !== 'object') throw invalidArgument('options must be an object')
  const split = options.split ?? 'test'
  if (typeof split !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(split)) throw invalidArgument(`split must be a simple name such as 'test', got ${JSON.stringify(split)}`)
  let stat: fs.Stats
  try {
    stat = await fs.promises.stat(dir)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw invalidArgument(`dataset folder not found: ${dir}`)
    throw ioError(`cannot read ${dir}`, e)
  }
  if (!stat.isDirectory()) throw invalidArgument(`the dataset path is not a folder: ${dir}`)

  const corpusFile = path.join(dir, 'corpus.jsonl')
  if (!(await isFile(corpusFile))) throw invalidArgument(`${dir} is not a BEIR folder: corpus.jsonl is missing`)
  const queryCandidates = [path.join(dir, `queries-${split}.jsonl`), path.join(dir, 'queries.jsonl')]
  const queriesFile = await firstFile(queryCandidates)
  if (!queriesFile) throw invalidArgument(`${dir} is not a BEIR folder: none of ${queryCandidates.map((f) => path.basename(f)).join(', ')} exists`)
  const qrelsCandidates = [path.join(dir, 'qrels', `${split}.tsv`), path.join(dir, `qrels-${split}.tsv`)]
  if (split === 'test') qrelsCandidates.push(path.join(dir, 'qrels.tsv'))
  const qrelsFile = await firstFile(qrelsCandidates)
  if (!qrelsFile) {
    throw invalidArgument(`no qrels for split '${split}' in ${dir}: looked for ${qrelsCandidates.map((f) => path.relative(dir, f)).join(', ')}`)
  }

  const corpus: BeirDocument[] = []
  const seenDocs = new Map<string, number>()
  await readLines(corpusFile, (line, lineNo) => {
    const obj = parseJsonLine(corpusFile, lineNo, line)
    const id = idField(corpusFile, lineNo, obj)
    const before = seenDocs.get(id)
    if (before !== undefined) throw badLine(corpusFile, lineNo, `duplicate _id ${JSON.stringify(id)} (first on line ${before})`)
    seenDocs.set(id, lineNo)
    corpus.push({ id, title: textField(corpusFile, lineNo, obj, 'title', true), text: textField(corpusFile, lineNo, obj, 'text', false) })
  })

  const queries: BeirQuery[] = []
  const seenQueries = new Map<string, number>()
  await readLines(queriesFile, (line, lineNo) => {
    const obj = parseJsonLine(queriesFile, lineNo, line)
    const id = idField(queriesFile, lineNo, obj)
    const before = seenQueries.get(id)
    if (before !== undefined) throw badLine(queriesFile, lineNo, `duplicate _id ${JSON.stringify(id)} (first on line ${before})`)
    seenQueries.set(id, lineNo)
    queries.push({ id, text: textField(queriesFile, lineNo, obj, 'text', false) })
  })

  const qrels: Qrels = new Map()
  let first = true
  await readLines(qrelsFile, (line, lineNo) => {
    const fields = line.split('\t').map((f) => f.trim())
    // A first line whose score column is not a number is the header (BEIR: query-id corpus-id score).
    const header = first && fields.length === 3 && !Number.isFinite(Number(fields[2]))
    first = false
    if (header) return
    if (fields.length !== 3) throw badLine(qrelsFile, lineNo, `expected 3 tab-separated fields (query-id, corpus-id, score), got ${fields.length}`)
    const [qid, did, s] = fields
    if (!qid || !did) throw badLine(qrelsFile, lineNo, 'empty query-id or corpus-id')
    const grade = s === '' ? NaN : Number(s)
    if (!Number.isFinite(grade)) throw badLine(qrelsFile, lineNo, `score must be a number, got ${JSON.stringify(s)}`)
    let judged = qrels.get(qid)
    if (!judged) qrels.set(qid, (judged = new Map()))
    const before = judged.get(did)
    if (before !== undefined && before !== grade) throw badLine(qrelsFile, lineNo, `${qid} ${did} is judged twice with different scores (${before}, ${grade})`)
    judged.set(did, grade)
  })
  return { corpus, queries, qrels }
}

/** The text encoded for a document, as PyLate's `load_beir`: `(title + ' ' + text).trim()`. */
export function documentText(doc: Pick<BeirDocument, 'title' | 'text'>): string {
  return `${doc.title ?? ''} ${doc.text}`.trim()
}

// ---------------------------------------------------------------------------------------------
// Metrics

interface ResolvedMetricOptions {
  accuracyAtK: number[]
  precisionRecallAtK: number[]
  mrrAtK: number[]
  ndcgAtK: number[]
  mapAtK: number[]
  gradedNdcg: boolean
  relevanceThreshold: number
}

const METRIC_KEYS = optionKeys<MetricOptions>()(
  'accuracyAtK',
  'precisionRecallAtK',
  'mrrAtK',
  'ndcgAtK',
  'mapAtK',
  'gradedNdcg',
  'relevanceThreshold',
)

function cutoffs(value: unknown, name: string, fallback: number[]): number[] {
  if (value === undefined) return fallback
  if (!Array.isArray(value) || value.some((k) => !Number.isInteger(k) || k < 1)) throw invalidArgument(`${name} must be an array of positive integers`)
  return [...new Set(value as number[])]
}

function resolveMetricOptions(options: MetricOptions, qrels: Qrels): ResolvedMetricOptions {
  if (options === null || typeof options !== 'object') throw invalidArgument('metric options must be an object')
  for (const key of Object.keys(options)) if (!METRIC_KEYS.has(key)) throw invalidArgument(`unknown metric option ${JSON.stringify(key)}`)
  const threshold = options.relevanceThreshold ?? 1
  if (typeof threshold !== 'number' || !(threshold > 0) || !Number.isFinite(threshold)) throw invalidArgument('relevanceThreshold must be a positive number')
  let graded = options.gradedNdcg
  if (graded !== undefined && typeof graded !== 'boolean') throw invalidArgument('gradedNdcg must be a boolean')
  if (graded === undefined) {
    graded = false
    for (const judged of qrels.values()) for (const g of judged.values()) if (g > 1) graded = true
  }
  return {
    accuracyAtK: cutoffs(options.accuracyAtK, 'accuracyAtK', [1, 3, 5, 10]),
    precisionRecallAtK: cutoffs(options.precisionRecallAtK, 'precisionRecallAtK', [1, 3, 5, 10]),
    mrrAtK: cutoffs(options.mrrAtK, 'mrrAtK', [10]),
    ndcgAtK: cutoffs(options.ndcgAtK, 'ndcgAtK', [10]),
    mapAtK: cutoffs(options.mapAtK, 'mapAtK', [100]),
    gradedNdcg: graded,
    relevanceThreshold: threshold,
  }
}

/** The largest cutoff of a set of metric options: how many documents to rank per query. */
export function maxCutoff(options: MetricOptions = {}): number {
  const o = resolveMetricOptions(options, new Map())
  return Math.max(1, ...o.accuracyAtK, ...o.precisionRecallAtK, ...o.mrrAtK, ...o.ndcgAtK, ...o.mapAtK)
}

function toQrels(qrels: unknown): Qrels {
  const bad = () => invalidArgument('qrels must be a Map<queryId, Map<docId, grade>> (or a plain object of objects)')
  if (qrels === null || typeof qrels !== 'object') throw bad()
  const entries = qrels instanceof Map ? [...qrels.entries()] : Object.entries(qrels)
  const out: Qrels = new Map()
  for (const [qid, judged] of entries) {
    if (judged === null || typeof judged !== 'object') throw bad()
    const inner = new Map<string, number>()
    for (const [did, grade] of judged instanceof Map ? judged.entries() : Object.entries(judged)) {
      if (typeof grade !== 'number' || Number.isNaN(grade)) throw invalidArgument(`qrels grade of ${qid}/${did} must be a number`)
      inner.set(String(did), grade)
    }
    out.set(String(qid), inner)
  }
  return out
}

function toRankings(rankings: unknown): Map<string, RankedHit[]> {
  const bad = () => invalidArgument('rankings must be a Map<queryId, { id, score }[]> (or a plain object of arrays)')
  if (rankings === null || typeof rankings !== 'object') throw bad()
  const entries = rankings instanceof Map ? [...rankings.entries()] : Object.entries(rankings)
  const out = new Map<string, RankedHit[]>()
  for (const [qid, hits] of entries) {
    if (!Array.isArray(hits)) throw bad()
    hits.forEach((h: RankedHit, i) => {
      if (h === null || typeof h !== 'object' || typeof h.id !== 'string' || typeof h.score !== 'number' || Number.isNaN(h.score)) {
        throw invalidArgument(`rankings of ${qid}[${i}] must be { id: string, score: number }`)
      }
    })
    out.set(String(qid), hits)
  }
  return out
}

/** Best first by score; equal scores keep their given order (Python's stable `sorted(reverse=True)`). */
function byScore(hits: readonly RankedHit[]): readonly RankedHit[] {
  for (let i = 1; i < hits.length; i++) {
    if (hits[i].score > hits[i - 1].score) return [...hits].sort((a, b) => b.score - a.score)
  }
  return hits
}

function dcg(gains: ArrayLike<number>, k: number): number {
  let sum = 0
  for (let i = 0; i < Math.min(gains.length, k); i++) if (gains[i] > 0) sum += gains[i] / Math.log2(i + 2)
  return sum
}

/**
 * Retrieval metrics exactly as sentence-transformers' `InformationRetrievalEvaluator.compute_metrics`
 * (which PyLate's evaluators use), over the queries of `qrels` that have at least one relevant
 * document; every metric is a plain mean over those queries:
 * - a document is relevant iff its grade is ≥ `relevanceThreshold` (default 1, i.e. > 0). For qrels
 *   whose rows all have positive grades this is sentence-transformers' "is in the qrels set";
 *   judged documents absent from the corpus still count in recall's and MAP's denominators;
 * - each ranking is sorted by score, best first, equal scores keeping their given order (stable);
 *   a query with no ranking counts as an empty one; rankings of unjudged queries are ignored;
 *   document ids should be unique per query (a repeat counts again, as in sentence-transformers);
 * - `accuracy@k`: a relevant document in the top k; `precision@k`: hits ÷ k; `recall@k`: hits ÷
 *   |relevant|; `mrr@k`: 1 / rank of the first hit within k; `map@k`: Σ precision at each hit
 *   within k ÷ min(k, |relevant|);
 * - `ndcg@k`: binary, Σ rel_i / log2(i + 2) over the top k ÷ the same for |relevant| ones; or with
 *   `gradedNdcg`, trec_eval's `ndcg_cut.k`: gain = grade (negative or unjudged = 0) and ideal DCG
 *   from every positive judged grade sorted descending, cut at k. trec_eval itself re-sorts tied
 *   scores by document id; here the order above is kept.
 */
export function computeMetrics(
  rankings: Rankings | Record<string, readonly RankedHit[]>,
  qrels: Qrels | Record<string, Record<string, number>>,
  options: MetricOptions = {},
): Metrics {
  const judgedByQuery = toQrels(qrels)
  const runs = toRankings(rankings)
  const o = resolveMetricOptions(options, judgedByQuery)
  const maxK = Math.max(0, ...o.accuracyAtK, ...o.precisionRecallAtK, ...o.mrrAtK, ...o.ndcgAtK, ...o.mapAtK)

  const sums = {
    accuracy: o.accuracyAtK.map(() => 0),
    precision: o.precisionRecallAtK.map(() => 0),
    recall: o.precisionRecallAtK.map(() => 0),
    ndcg: o.ndcgAtK.map(() => 0),
    mrr: o.mrrAtK.map(() => 0),
    map: o.mapAtK.map(() => 0),
  }
  let n = 0
  for (const [qid, judged] of judgedByQuery) {
    let nRelevant = 0
    for (const g of judged.values()) if (g >= o.relevanceThreshold) nRelevant++
    if (nRelevant === 0) continue
    n++
    const top = byScore(runs.get(qid) ?? []).slice(0, maxK)
    const hit = top.map((h) => (judged.get(h.id) ?? 0) >= o.relevanceThreshold)
    // hitsBefore[i] = hits among the first i documents
    const hitsBefore = [0]
    for (let i = 0; i < hit.length; i++) hitsBefore.push(hitsBefore[i] + (hit[i] ? 1 : 0))
    const hitsAt = (k: number) => hitsBefore[Math.min(k, hit.length)]
    const firstHit = hit.indexOf(true)

    o.accuracyAtK.forEach((k, i) => (sums.accuracy[i] += hitsAt(k) > 0 ? 1 : 0))
    o.precisionRecallAtK.forEach((k, i) => {
      sums.precision[i] += hitsAt(k) / k
      sums.recall[i] += hitsAt(k) / nRelevant
    })
    o.mrrAtK.forEach((k, i) => (sums.mrr[i] += firstHit >= 0 && firstHit < k ? 1 / (firstHit + 1) : 0))
    if (o.ndcgAtK.length > 0) {
      let gains: number[]
      let ideal: number[]
      if (o.gradedNdcg) {
        gains = top.map((h) => Math.max(0, judged.get(h.id) ?? 0))
        ideal = [...judged.values()].filter((g) => g > 0).sort((a, b) => b - a)
      } else {
        gains = hit.map((x) => (x ? 1 : 0))
        ideal = new Array<number>(nRelevant).fill(1)
      }
      o.ndcgAtK.forEach((k, i) => {
        const idcg = dcg(ideal, k)
        sums.ndcg[i] += idcg > 0 ? dcg(gains, k) / idcg : 0
      })
    }
    o.mapAtK.forEach((k, i) => {
      let sum = 0
      for (let r = 0; r < Math.min(k, hit.length); r++) if (hit[r]) sum += hitsBefore[r + 1] / (r + 1)
      sums.map[i] += sum / Math.min(k, nRelevant)
    })
  }
  if (n === 0) throw invalidArgument('no query has a relevant document: nothing to evaluate')

  const metrics: Metrics = {}
  o.accuracyAtK.forEach((k, i) => (metrics[`accuracy@${k}`] = sums.accuracy[i] / n))
  o.precisionRecallAtK.forEach((k, i) => (metrics[`precision@${k}`] = sums.precision[i] / n))
  o.precisionRecallAtK.forEach((k, i) => (metrics[`recall@${k}`] = sums.recall[i] / n))
  o.ndcgAtK.forEach((k, i) => (metrics[`ndcg@${k}`] = sums.ndcg[i] / n))
  o.mrrAtK.forEach((k, i) => (metrics[`mrr@${k}`] = sums.mrr[i] / n))
  o.mapAtK.forEach((k, i) => (metrics[`map@${k}`] = sums.map[i] / n))
  return metrics
}

// ---------------------------------------------------------------------------------------------
// The model-card table

/** Python's `round(x, 4)` (exact value, ties to even) followed by `str()` of the float. */
function pythonRound4(x: number): string {
  if (Number.isNaN(x)) return 'nan'
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf'
  let r: number
  // A double lies exactly halfway at the 4th decimal only when 32·x is an odd integer.
  const t = x * 32
  if (Number.isInteger(t) && t % 2 !== 0 && Math.abs(x) < 1e15) {
    const lower = Math.abs(x) * 1e4 - 0.5 // exact here
    r = (Math.sign(x) * (lower % 2 === 0 ? lower : lower + 1)) / 1e4
  } else {
    r = Math.abs(x) < 1e21 ? Number(x.toFixed(4)) : x
  }
  if (Object.is(r, -0)) return '-0.0'
  const s = String(r)
  return Number.isInteger(r) && !/e/.test(s) ? `${s}.0` : s
}

export interface FormatMetricsTableOptions {
  /** Score-function prefix of the metric names (default `'MaxSim'`). */
  scoreFunction?: string
}

function isMetrics(value: unknown): value is Metrics {
  return value !== null && typeof value === 'object' && Object.values(value).every((v) => typeof v === 'number')
}

/**
 * A Markdown table shaped like a sentence-transformers/PyLate model card's: one row per metric
 * (`MaxSim_ndcg@10`, …), values rounded as Python's `round(v, 4)`, the primary metric (nDCG at its
 * largest cutoff) in bold, columns padded as `transformers`' `make_markdown_table`.
 * `formatMetricsTable(metrics, 'SciFact')` gives one column named after the dataset (default
 * `'Value'`); `formatMetricsTable({ SciFact: m1, NFCorpus: m2 })` one column per dataset.
 */
export function formatMetricsTable(metrics: Metrics, name?: string, options?: FormatMetricsTableOptions): string
export function formatMetricsTable(columns: Record<string, Metrics>, options?: FormatMetricsTableOptions): string
export function formatMetricsTable(
  metricsOrColumns: Metrics | Record<string, Metrics>,
  nameOrOptions?: string | FormatMetricsTableOptions,
  maybeOptions?: FormatMetricsTableOptions,
): string {
  if (metricsOrColumns === null || typeof metricsOrColumns !== 'object') throw invalidArgument('metrics must be an object')
  let columns: Record<string, Metrics>
  let options: FormatMetricsTableOptions
  if (isMetrics(metricsOrColumns)) {
    if (nameOrOptions !== undefined && typeof nameOrOptions !== 'string') throw invalidArgument('name must be a string')
    columns = { [nameOrOptions ?? 'Value']: metricsOrColumns }
    options = maybeOptions ?? {}
  } else {
    if (!Object.values(metricsOrColumns).every(isMetrics)) throw invalidArgument('metrics must map metric names to numbers, or column names to such objects')
    columns = metricsOrColumns as Record<string, Metrics>
    options = (nameOrOptions as FormatMetricsTableOptions | undefined) ?? {}
  }
  const prefix = options.scoreFunction ?? 'MaxSim'
  if (typeof prefix !== 'string') throw invalidArgument('scoreFunction must be a string')
  const names = Object.keys(columns)
  const keys: string[] = []
  for (const m of Object.values(columns)) for (const key of Object.keys(m)) if (!keys.includes(key)) keys.push(key)
  const ndcgKs = keys.filter((k) => k.startsWith('ndcg@')).map((k) => Number(k.slice(5)))
  const primary = ndcgKs.length > 0 ? `ndcg@${Math.max(...ndcgKs)}` : undefined
  const bold = (s: string, key: string) => (key === primary ? `**${s}**` : s)

  const header = ['Metric', ...names]
  const rows = keys.map((key) => [
    bold(prefix ? `${prefix}_${key}` : key, key),
    ...names.map((n) => {
      const v = (columns[n] as Record<string, number | undefined>)[key]
      return v === undefined ? '-' : bold(pythonRound4(v), key)
    }),
  ])
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)))
  const line = (cells: string[]) => cells.map((v, c) => `| ${v}${' '.repeat(widths[c] - v.length + 1)}`).join('') + '|\n'
  // make_markdown_table writes '|:---:' and sentence-transformers turns '-:|' into '--|'.
  const rule = widths.map((w) => `|:${'-'.repeat(w + 1)}`).join('') + '|\n'
  return line(header) + rule + rows.map(line).join('')
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
