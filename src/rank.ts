// Reranking candidates by exact MaxSim, as `pylate.rank.rerank`.
import { assertEmbeddings, count, maxsim, type Embeddings } from './embeddings'
import { invalidArgument } from './errors'

/** The input of `rerank`: per query, its candidates' ids and embeddings. */
export interface RerankInput {
  /** Per query, the candidate document ids. */
  documentsIds: readonly (readonly string[])[]
  /** One item per query (what `model.encode(queries)` returns). */
  queriesEmbeddings: Embeddings
  /** Per query, the candidates' embeddings: item `j` of `documentsEmbeddings[i]` is `documentsIds[i][j]`. */
  documentsEmbeddings: readonly Embeddings[]
}

/** One reranked candidate. */
export interface RankedDocument {
  /** The candidate's id, from `documentsIds`. */
  id: string
  /** Its exact MaxSim score against the query (zero-padded, as PyLate): higher is better. */
  score: number
}

/** Positions of `scores`, best first; ties keep the input order (as PyLate's stable sort). */
export function bestFirst(scores: ArrayLike<number>): number[] {
  return Array.from({ length: scores.length }, (_, j) => j).sort((a, b) => scores[b] - scores[a] || a - b)
}

/** The rows of item `i` as a one-item batch (no copy). */
function one(e: Embeddings, i: number): Embeddings {
  return {
    dim: e.dim,
    offsets: Uint32Array.of(0, e.offsets[i + 1] - e.offsets[i]),
    data: e.data.subarray(e.offsets[i] * e.dim, e.offsets[i + 1] * e.dim),
  }
}

/**
 * Reorders each query's candidates by exact MaxSim, best first — PyLate's `rank.rerank`,
 * including its scoring of a zero-padded batch (a candidate shorter than the query's longest
 * candidate scores each query token as `max(0, best dot product)`). Ties keep the input order.
 * Synchronous: sized for reranking a few hundred candidates per query.
 */
export function rerank(input: RerankInput): RankedDocument[][] {
  if (input === null || typeof input !== 'object') throw invalidArgument('rerank takes { documentsIds, queriesEmbeddings, documentsEmbeddings }')
  const { documentsIds, queriesEmbeddings, documentsEmbeddings } = input
  assertEmbeddings(queriesEmbeddings, 'queriesEmbeddings')
  const nq = count(queriesEmbeddings)
  if (!Array.isArray(documentsIds) || documentsIds.length !== nq) {
    throw invalidArgument(`documentsIds must be an array with one list of ids per query (${nq} queries)`)
  }
  if (!Array.isArray(documentsEmbeddings) || documentsEmbeddings.length !== nq) {
    throw invalidArgument(`documentsEmbeddings must be an array with one Embeddings per query (${nq} queries)`)
  }
  return documentsIds.map((ids, i) => {
    if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string')) throw invalidArgument(`documentsIds[${i}] must be an array of strings`)
    const docs = documentsEmbeddings[i]
    assertEmbeddings(docs, `documentsEmbeddings[${i}]`)
    if (count(docs) !== ids.length) {
      throw invalidArgument(`documentsEmbeddings[${i}] holds ${count(docs)} documents but documentsIds[${i}] has ${ids.length} ids`)
    }
    if (ids.length === 0) return []
    const scores = maxsim(one(queriesEmbeddings, i), docs, { zeroPadded: true })
    return bestFirst(scores).map((j) => ({ id: ids[j], score: scores[j] }))
  })
}
