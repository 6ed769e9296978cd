// Token-embedding batches and exact MaxSim.
import { callNative, fromNative, invalidArgument } from './errors'
import { native } from './native'

/**
 * A batch of multi-vectors (one per text): item `i` is rows `offsets[i]..offsets[i+1]` of `data`,
 * row-major with `dim` floats per row. This is what `ColBERT.encode` returns.
 */
export interface Embeddings {
  /** Floats per row (the model's `config.dim`), at least 1. */
  readonly dim: number
  /** Row offsets, one more than the items: item `i` is rows `offsets[i]` to `offsets[i + 1]` (exclusive); starts at 0. */
  readonly offsets: Uint32Array
  /** The rows, row-major: `offsets[offsets.length - 1] * dim` floats. */
  readonly data: Float32Array
}

/** Checks that a value is shaped like `Embeddings` (the native layer checks the contents). */
export function assertEmbeddings(value: unknown, name: string): asserts value is Embeddings {
  const e = value as Partial<Embeddings> | null
  if (
    !e ||
    typeof e !== 'object' ||
    !Number.isInteger(e.dim) ||
    (e.dim as number) < 1 ||
    !(e.offsets instanceof Uint32Array) ||
    !(e.data instanceof Float32Array)
  ) {
    throw invalidArgument(
      `${name} must be Embeddings: { dim: positive integer, offsets: Uint32Array, data: Float32Array }`,
    )
  }
}

/** Number of items (texts) in a batch. */
export function count(embeddings: Embeddings): number {
  return Math.max(0, embeddings.offsets.length - 1)
}

/** The token rows of item `i`, as a view (no copy). */
export function item(embeddings: Embeddings, i: number): Float32Array {
  const { dim, offsets, data } = embeddings
  if (!Number.isInteger(i) || i < 0 || i >= count(embeddings)) {
    throw invalidArgument(`item index ${i} is out of range (0..${count(embeddings) - 1})`)
  }
  return data.subarray(offsets[i] * dim, offsets[i + 1] * dim)
}

/** Options of `maxsim` and `maxsimAsync`. */
export interface MaxSimOptions {
  /**
   * Score as PyLate does on a zero-padded batch (`rank.rerank`, its evaluator): documents shorter
   * than the longest one in `documents` see a zero padding row, so each query token contributes
   * `max(0, best dot product)`. Default `false`: real tokens only.
   */
  zeroPadded?: boolean
}

function zeroPaddedOption(options: MaxSimOptions): boolean {
  if (options === null || typeof options !== 'object') throw invalidArgument('options must be an object')
  const z = options.zeroPadded
  if (z !== undefined && typeof z !== 'boolean') throw invalidArgument('zeroPadded must be a boolean')
  return z ?? false
}

/**
 * Exact MaxSim of every query against every document, over real tokens: for each query token the
 * best dot product with any document token, summed. Returns a row-major
 * `nQueries × nDocuments` matrix. Synchronous: meant for reranking-sized inputs; use
 * `maxsimAsync` for whole collections.
 */
export function maxsim(queries: Embeddings, documents: Embeddings, options: MaxSimOptions = {}): Float32Array {
  assertEmbeddings(queries, 'queries')
  assertEmbeddings(documents, 'documents')
  const zeroPadded = zeroPaddedOption(options)
  return callNative(() =>
    native.maxsim(queries.dim, queries.offsets, queries.data, documents.dim, documents.offsets, documents.data, zeroPadded),
  )
}

/** `maxsim` computed off the event loop, on the shared thread budget. */
export async function maxsimAsync(queries: Embeddings, documents: Embeddings, options: MaxSimOptions = {}): Promise<Float32Array> {
  assertEmbeddings(queries, 'queries')
  assertEmbeddings(documents, 'documents')
  const zeroPadded = zeroPaddedOption(options)
  try {
    return await native.maxsimTask(
      queries.dim,
      queries.offsets,
      queries.data,
      documents.dim,
      documents.offsets,
      documents.data,
      zeroPadded,
    )
  } catch (e) {
    throw fromNative(e)
  }
}
