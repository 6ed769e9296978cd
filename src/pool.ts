// Token pooling: PyLate's `pool_embeddings_hierarchical` (`encode(..., pool_factor=k)`), run in
// Rust (`colbert_core::pool`) off the event loop.
import { checkKeys, checkSignal, optionKeys, withCancel } from './arguments'
import { assertEmbeddings, type Embeddings } from './embeddings'
import { invalidArgument } from './errors'
import { native } from './native'

/** The largest `poolFactor` accepted. */
export const MAX_POOL_FACTOR = 65_536

/** Options of `poolEmbeddings`. Unknown keys are `INVALID_ARGUMENT`. */
export interface PoolOptions {
  /**
   * Keep about `1 / poolFactor` of each document's tokens (`max(floor(n / poolFactor), 1)`
   * clusters of the `n` tokens after the protected ones). 1 leaves documents unchanged.
   */
  poolFactor: number
  /** Leading tokens kept as they are (default 1, the CLS token, as in PyLate). */
  protectedTokens?: number
  /** Aborts the pooling between documents: it rejects with `ABORTED`. */
  signal?: AbortSignal
}

const POOL_KEYS = optionKeys<PoolOptions>()('poolFactor', 'protectedTokens', 'signal')

/** Checks an optional `poolFactor` option: an integer from 1 to `MAX_POOL_FACTOR`. */
export function poolFactorOption(value: unknown, name = 'poolFactor'): number | undefined {
  if (value === undefined) return undefined
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > MAX_POOL_FACTOR) {
    throw invalidArgument(`${name} must be an integer from 1 to ${MAX_POOL_FACTOR}, got ${String(value)}`)
  }
  return value as number
}

/**
 * Pools document embeddings as PyLate does: per document, the first `protectedTokens` rows are
 * kept, the others are clustered hierarchically (Ward linkage on the rows of `1 − XXᵀ`, as
 * scipy's `linkage` reads PyLate's square distance matrix) into `max(floor(n / poolFactor), 1)`
 * clusters, and each cluster becomes the mean of its rows (not re-normalised). Pooled rows come
 * in scipy's cluster-label order, followed by the protected rows. Documents with fewer than two
 * rows to pool are returned unchanged; one with more than 8,192 rows is `INVALID_ARGUMENT` (the
 * clustering's memory grows with the square of the length and its time with the cube: split long
 * documents into passages first). Runs in parallel across documents, off the event loop, on
 * the shared thread budget; `signal` aborts it between documents.
 */
export async function poolEmbeddings(documents: Embeddings, options: PoolOptions): Promise<Embeddings> {
  assertEmbeddings(documents, 'documents')
  if (options === null || typeof options !== 'object') throw invalidArgument('options must be an object with a poolFactor')
  checkKeys(options, POOL_KEYS, 'pool option')
  const poolFactor = poolFactorOption(options.poolFactor)
  if (poolFactor === undefined) throw invalidArgument('poolFactor is required')
  const protectedTokens = options.protectedTokens ?? 1
  if (!Number.isInteger(protectedTokens) || protectedTokens < 0 || protectedTokens > 2 ** 32 - 1) {
    throw invalidArgument(`protectedTokens must be a non-negative integer, got ${String(protectedTokens)}`)
  }
  const signal = checkSignal(options.signal)
  if (poolFactor === 1 && !signal?.aborted) return documents
  const out = await withCancel(signal, (token) =>
    native.poolEmbeddings(documents.dim, documents.offsets, documents.data, poolFactor, protectedTokens, token),
  )
  return { dim: out.dim, offsets: out.offsets, data: out.data }
}
