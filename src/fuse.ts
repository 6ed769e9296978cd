// Result fusion: combine ranked lists from any sources (this package's searches, a keyword
// engine, another index) into one ranking, by reciprocal rank or by min-max-normalised score.
import { checkKeys, optionKeys, positiveInt } from './arguments'
import { invalidArgument } from './errors'

/** One entry of a ranked list: an id and, for `'relative'` fusion, a score (higher is better). */
export interface RankedItem {
  /** The document id; lists are matched on it. */
  id: string
  /** The source's score. Needed by `'relative'` fusion; `'rrf'` uses positions only. */
  score?: number
}

/** How `fuse` combines the lists. */
export type FusionMethod = 'rrf' | 'relative'

/** Options of {@link fuse}. */
export interface FuseOptions {
  /**
   * `'rrf'` (default): reciprocal-rank fusion, score = Σᵢ wᵢ / (k + rankᵢ) over the lists that
   * hold the id, with 1-based ranks (Cormack, Clarke and Büttcher, SIGIR 2009). `'relative'`:
   * relative-score fusion, each list's scores min-max normalised to [0, 1], then summed with
   * the weights (Weaviate's `relativeScoreFusion`, LlamaIndex's `relative_score`).
   */
  method?: FusionMethod
  /** One non-negative weight per list (default 1 each). */
  weights?: readonly number[]
  /** The RRF constant `k` (default 60); only with `'rrf'`. */
  k?: number
  /** Keep only the best `limit` fused results (default: all). */
  limit?: number
}

/** One fused result. */
export interface FusedResult<T extends RankedItem = RankedItem> {
  /** The document id. */
  id: string
  /** The fused score, best first. */
  score: number
  /** Per input list, the id's 1-based rank there, or `null` where the list does not hold it. */
  ranks: (number | null)[]
  /** The id's entry in the first list that holds it (with its own score, text, metadata…). */
  item: T
}

const FUSE_KEYS = optionKeys<FuseOptions>()('method', 'weights', 'k', 'limit')

interface Entry<T> {
  id: string
  score: number
  ranks: (number | null)[]
  item: T
  /** First appearance (list, then position): the tie-break. */
  order: number
}

/**
 * Combines ranked lists into one ranking, best first.
 *
 * - `'rrf'`: an id scores Σᵢ wᵢ / (k + rankᵢ) over the lists that hold it (rank 1 is a list's
 *   first entry); a list that lacks the id adds nothing. Scores are ignored, so lists on any
 *   scale fuse.
 * - `'relative'`: each list's scores are min-max normalised, (s − min) / (max − min), so its
 *   best entry counts 1 and its worst 0; an id scores Σᵢ wᵢ · normᵢ. A list that lacks the id
 *   adds nothing (as its worst entry would). A list whose scores are all equal (one entry, or
 *   ties throughout) counts each of its entries as 1: each is that list's best. Every entry
 *   needs a finite `score`; list order does not matter.
 *
 * Ties in the fused score keep the order of first appearance (list by list, best first). An id
 * may appear once per list (`INVALID_ARGUMENT` otherwise). Synchronous and linear in the input.
 *
 * ```ts
 * const fused = fuse([colbertHits, bm25Hits], { method: 'rrf', weights: [1, 0.5] })
 * ```
 */
export function fuse<T extends RankedItem>(rankings: readonly (readonly T[])[], options: FuseOptions = {}): FusedResult<T>[] {
  if (!Array.isArray(rankings)) throw invalidArgument('fuse takes an array of ranked lists: [[{ id, score }, …], …]')
  if (options === null || typeof options !== 'object') throw invalidArgument('options must be an object')
  checkKeys(options, FUSE_KEYS, 'fuse option')
  const method = options.method ?? 'rrf'
  if (method !== 'rrf' && method !== 'relative') throw invalidArgument(`method must be 'rrf' or 'relative', got ${JSON.stringify(method)}`)
  const k = options.k ?? 60
  if (options.k !== undefined && method !== 'rrf') throw invalidArgument("k is the RRF constant: it applies to method 'rrf' only")
  if (typeof k !== 'number' || !Number.isFinite(k) || k < 0) throw invalidArgument(`k must be a finite number ≥ 0, got ${String(k)}`)
  const limit = positiveInt(options.limit, 'limit')
  const weights = options.weights ?? rankings.map(() => 1)
  if (!Array.isArray(weights) || weights.length !== rankings.length) {
    throw invalidArgument(`weights must be an array with one weight per list (${rankings.length} lists)`)
  }
  weights.forEach((w, i) => {
    if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) throw invalidArgument(`weights[${i}] must be a finite number ≥ 0, got ${String(w)}`)
  })

  const fused = new Map<string, Entry<T>>()
  let order = 0
  rankings.forEach((list, i) => {
    if (!Array.isArray(list)) throw invalidArgument(`rankings[${i}] must be an array of { id, score }`)
    let min = Infinity
    let max = -Infinity
    if (method === 'relative') {
      list.forEach((x: T | null | undefined, j) => {
        const s = x?.score
        if (typeof s !== 'number' || !Number.isFinite(s)) {
          throw invalidArgument(`rankings[${i}][${j}].score must be a finite number for relative fusion, got ${String(s)}`)
        }
        min = Math.min(min, s)
        max = Math.max(max, s)
      })
    }
    const seen = new Set<string>()
    list.forEach((x: T | null | undefined, j) => {
      if (x === null || typeof x !== 'object' || typeof x.id !== 'string') throw invalidArgument(`rankings[${i}][${j}] must be an object with a string id`)
      if (seen.has(x.id)) throw invalidArgument(`rankings[${i}] holds id ${JSON.stringify(x.id)} twice (at most once per list)`)
      seen.add(x.id)
      const rank = j + 1
      const contribution =
        method === 'rrf' ? weights[i] / (k + rank) : weights[i] * (max > min ? ((x.score as number) - min) / (max - min) : 1)
      let e = fused.get(x.id)
      if (!e) {
        e = { id: x.id, score: 0, ranks: rankings.map(() => null), item: x, order: order++ }
        fused.set(x.id, e)
      }
      e.score += contribution
      e.ranks[i] = rank
    })
  })
  const out = [...fused.values()].sort((a, b) => b.score - a.score || a.order - b.order)
  return (limit === undefined ? out : out.slice(0, limit)).map(({ id, score, ranks, item }) => ({ id, score, ranks, item }))
}
