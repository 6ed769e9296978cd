// Retrieval metrics as sentence-transformers' InformationRetrievalEvaluator computes them (with
// trec_eval-style graded nDCG on top), and the model-card table that prints them.
import { optionKeys } from '../arguments'
import { invalidArgument } from '../errors'
import type { Qrels } from './collection'

/** One ranked document. */
export interface RankedHit {
  /** The document's id (a corpus id of the qrels). */
  id: string
  /** Its score: higher ranks first (equal scores keep their given order). */
  score: number
}

/** Query id → ranked documents, best first. */
export type Rankings = Map<string, RankedHit[]>

/** The kinds of metric `computeMetrics` reports, each at one or more cutoffs `k`. */
export type MetricFamily = 'accuracy' | 'precision' | 'recall' | 'ndcg' | 'mrr' | 'map'
/** A metric key such as `'ndcg@10'`. */
export type MetricName = `${MetricFamily}@${number}`
/** Metric values in sentence-transformers' order: accuracy, precision, recall, nDCG, MRR, MAP. */
export type Metrics = { [metric: MetricName]: number }

/** Which metrics `computeMetrics` reports (the cutoffs `k` of each family) and how relevance is judged. Unknown keys are `INVALID_ARGUMENT`. */
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

export function resolveMetricOptions(options: MetricOptions, qrels: Qrels): ResolvedMetricOptions {
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

export function toQrels(qrels: unknown): Qrels {
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

/** Options of `formatMetricsTable`. */
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
