// The PLAID index: create/open an index folder, add (streamed) and delete documents by id, search.
import path from 'node:path'

import { checkKeys, checkSignal, checkWellFormed, optionKeys, positiveInt, strictJson, withCancel } from './arguments'
import { assertEmbeddings, count, type Embeddings } from './embeddings'
import { abortError, callNative, ColbertError, fromNative, invalidArgument } from './errors'
import { native, type Native } from './native'
import { poolEmbeddings, poolFactorOption } from './pool'
import { guard } from './progress'
import { threadBudget } from './runtime'

/** How the codebook is trained (`create`, `replaceAll`). */
export interface TrainingOptions {
  /** Bits per residual dimension: 1, 2 or 4 (default 4). */
  nbits?: 1 | 2 | 4
  /** k-means iterations (default 4). */
  kmeansIterations?: number
  /** Number of centroids (default `2^floor(log2(16·sqrt(embeddings)))`, decided at the first add). */
  numCentroids?: number
  /** Seed of every random choice (default 42). */
  seed?: number
  /** k-means point cap per centroid (default 256). */
  maxPointsPerCentroid?: number
}

/** Options of `PlaidIndex.open` (and `create`). */
export interface OpenOptions {
  /** Most searches pending on this handle; beyond it a search fails at once with `BUSY` (default: no bound). */
  maxQueued?: number
}

/** Options of `PlaidIndex.create`: how the first add trains the codebook, the handle's bound, and `overwrite`. */
export interface PlaidIndexOptions extends TrainingOptions, OpenOptions {
  /**
   * Replace an existing index in `dir` with an empty one, as one transaction (default false:
   * `INDEX_EXISTS`). Only an index (or an empty folder) is replaced, never other files.
   */
  overwrite?: boolean
}

/** What `PlaidIndex.info` reports: the committed state this handle sees. */
export interface PlaidIndexInfo {
  /**
   * The oldest on-disk format among the index's files. This release writes format 3 and reads
   * formats 2 and 3; a format-2 index searches as before, and `compact()` rewrites it in format 3
   * (stored per-token norms: faster search).
   */
  formatVersion: number
  /** Committed transactions so far. */
  generation: number
  /** Live documents. */
  documents: number
  /** Token embeddings of live documents. */
  embeddings: number
  /** `null` until the first add trains the index. */
  dim: number | null
  /** Bits per residual dimension: 1, 2 or 4. */
  nbits: number
  /** Centroids of the codebook, those added for outliers since training included (0 until the first add trains it). */
  numCentroids: number
  /** Deleted documents whose space is not reclaimed yet. */
  deleted: number
  /** Bytes of the files of the current generation (the manifest, segments, codebook and tombstones). */
  bytesOnDisk: number
  /** Segment files: each add writes one and may merge the newest ones (ARCHITECTURE.md §9); `compact` merges them all into one. */
  segments: number
  /** Bytes of stored document texts and metadata. */
  storedBytes: number
  /**
   * How the embeddings added since the codebook was trained fit it. The codebook and the
   * residual codec are trained by the first add (or `rebuild`); later adds only append centroids
   * for outliers. When `outlierFraction` climbs well above its in-distribution level (about
   * 0.25) or `meanResidualNorm` well above `trainedResidualNorm`, the collection has drifted and
   * `rebuild()` would retrain.
   */
  drift: {
    /** Embeddings added since training. */
    embeddings: number
    /** Fraction of them farther from their nearest centroid than the outlier threshold. */
    outlierFraction: number
    /** Their mean residual norm as stored. */
    meanResidualNorm: number
    /** Mean residual norm of the held-out embeddings at training. */
    trainedResidualNorm: number
  }
}

/** What can be stored with a document besides its embeddings, to show it in results and filter on it. */
export interface StoredDocument {
  /** The document's text, as given (well-formed Unicode). */
  text?: string
  /** A plain JSON-serialisable object; `search({ filter })` matches it. */
  metadata?: Record<string, unknown>
}

/**
 * A metadata filter (MongoDB-style): `{ lang: 'en' }`, `{ year: { $gte: 2020 } }`,
 * `{ $or: [{ lang: 'en' }, { lang: 'fr' }] }`, `{ 'source.kind': 'pdf' }`. Operators: `$eq $ne
 * $gt $gte $lt $lte $in $nin $exists` on fields, `$and $or $not` to combine. An array field
 * matches a value it contains; comparisons hold between two numbers or two strings.
 */
export type MetadataFilter = Record<string, unknown>

/**
 * One progress event of a transaction (`add`, `replaceAll`, `compact`, `rebuild`): `push` after
 * each batch handed to the writer, then the commit's stages: `sample` (documents sampled for
 * training, of all), `kmeans` (iterations done, of all), `expand` (outlier centroids added),
 * `compress` (documents compressed, of all) and `write` (0 of 1, then 1 of 1 once written).
 * Only a commit that trains the codebook reports `sample` and `kmeans`.
 */
export type AddProgress =
  | {
      /** A batch was handed to the writer. */
      stage: 'push'
      /** Documents pushed so far in this transaction. */
      documents: number
    }
  | {
      /** The commit stage running. */
      stage: 'sample' | 'kmeans' | 'expand' | 'compress' | 'write'
      /** Units of the stage done (documents, iterations or centroids, see above). */
      done: number
      /** Units of the stage in all. */
      total: number
    }

/** Options of `PlaidIndex.add`. Unknown keys are `INVALID_ARGUMENT`. */
export interface AddOptions {
  /** With `add(ids, embeddings, options)`: text and metadata stored with each document (`documents[i]` belongs to `ids[i]`). */
  documents?: readonly (StoredDocument | null | undefined)[]
  /**
   * Replace live documents that have the same ids (an upsert): they are deleted in the same
   * transaction, so searches see either the old documents or the new ones. Without it, an id
   * that is already live is an `INVALID_ARGUMENT` error.
   */
  replace?: boolean
  /**
   * Pool each document's token embeddings before they are compressed, as PyLate's
   * `pool_factor` does (`poolEmbeddings`): about `1 / poolFactor` of the tokens are stored.
   * Default 1 (store every token). Queries are never pooled.
   */
  poolFactor?: number
  /** Aborts the transaction: it rejects with `ABORTED` and the index is left unchanged. */
  signal?: AbortSignal
  /** Called as batches arrive and as the commit trains, compresses and writes. Must not throw (a throw is only warned about). */
  onProgress?: (progress: AddProgress) => void
}

/** Options of `replaceAll`: those of `add` (but `replace`) plus training options for the new codebook. */
export interface ReplaceAllOptions extends Omit<AddOptions, 'replace'>, TrainingOptions {}

/** What a transaction (`add`, `replaceAll`, `compact`, `rebuild`) committed. */
export interface AddResult {
  /** Documents added. */
  added: number
  /** With `replace`: live documents replaced (deleted in the same transaction). */
  replaced: number
  /** The first add trains the codebook (k-means). */
  trained: boolean
  /** Centroids added for outlier embeddings (PLAID's update). */
  newCentroids: number
  /** Centroids of the codebook after the transaction. */
  numCentroids: number
  /** The generation now current (`info.generation`; unchanged by an empty transaction). */
  generation: number
  /** Segments merged into one by this transaction (0 if none; see ARCHITECTURE.md §9). */
  mergedSegments: number
  /** Deleted documents whose space this transaction reclaimed (merged segments drop them). */
  reclaimed: number
}

/** Options of `PlaidIndex.search`. Unknown keys are `INVALID_ARGUMENT`. */
export interface SearchOptions {
  /** Results per query (default 10). */
  k?: number
  /** Centroids probed per query token (default by k: 1, 2 or 4, as ColBERT). */
  nProbe?: number
  /** Centroid score threshold of the pruned pass (default by k: 0.5, 0.45, 0.4). */
  centroidScoreThreshold?: number
  /** Documents kept after centroid interaction (default by k: 256, 1024, max(4k, 4096)). */
  candidates?: number
  /** Documents scored exactly from their stored codes (default max(candidates / 4, k)). */
  exactCandidates?: number
  /** Search only these document ids. */
  subset?: readonly string[]
  /** Search only documents whose stored metadata matches (combined with `subset` if both are given). */
  filter?: MetadataFilter
  /** Attach each hit's stored `text` and `metadata`. */
  withDocuments?: boolean
  /** Aborts the search: it rejects with `ABORTED`. */
  signal?: AbortSignal
}

/** One search result. */
export interface SearchHit {
  /** The document's id. */
  id: string
  /** Its MaxSim score against the query, from the stored (compressed) embeddings: higher is better. */
  score: number
  /** With `withDocuments`: the stored text, if any. */
  text?: string
  /** With `withDocuments`: the stored metadata, if any. */
  metadata?: Record<string, unknown>
}

/** One batch of a streamed `add(batches)` or `replaceAll(batches)`. */
export interface DocumentBatch {
  /** One non-empty, well-formed id per document, in the order of `embeddings`. */
  ids: readonly string[]
  /** The documents' token embeddings (`model.encode(texts, { isQuery: false })`). */
  embeddings: Embeddings
  /** Text and metadata stored with each document (`documents[i]` belongs to `ids[i]`). */
  documents?: readonly (StoredDocument | null | undefined)[]
}

/** @internal Training option keys (shared with the cluster index, `src/opensearch/`). */
export const TRAINING_KEYS = ['nbits', 'kmeansIterations', 'numCentroids', 'seed', 'maxPointsPerCentroid'] as const
const CREATE_KEYS = optionKeys<PlaidIndexOptions>()(...TRAINING_KEYS, 'overwrite', 'maxQueued')
const OPEN_KEYS = optionKeys<OpenOptions>()('maxQueued')
/** @internal */
export const ADD_KEYS = optionKeys<AddOptions>()('documents', 'replace', 'poolFactor', 'signal', 'onProgress')
const REPLACE_ALL_KEYS = optionKeys<ReplaceAllOptions>()(...TRAINING_KEYS, 'documents', 'poolFactor', 'signal', 'onProgress')
/** @internal */
export const SEARCH_KEYS = optionKeys<SearchOptions>()(
  'k',
  'nProbe',
  'centroidScoreThreshold',
  'candidates',
  'exactCandidates',
  'subset',
  'filter',
  'withDocuments',
  'signal',
)

/** @internal A plain object (not an array, class instance or null). */
export function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) return false
  const proto = Object.getPrototypeOf(x)
  return proto === Object.prototype || proto === null
}


/**
 * @internal Checks stored documents (`documents[i]` belongs to document i): each is `undefined`
 * (nothing stored) or its text and metadata, with the metadata's JSON text (the checks are
 * `strictJson`'s). Shared with the cluster index (`src/opensearch/`).
 */
export function checkDocuments(
  documents: unknown,
  n: number,
  what: string,
): ({ text?: string; metadata?: Record<string, unknown>; metadataJson?: string } | undefined)[] | undefined {
  if (documents === undefined) return undefined
  if (!Array.isArray(documents)) throw invalidArgument(`${what} must be an array of { text?, metadata? }`)
  if (documents.length !== n) throw invalidArgument(`${what} has ${documents.length} entries for ${n} documents`)
  return documents.map((d, i) => {
    if (d === null || d === undefined) return undefined
    if (typeof d !== 'object') throw invalidArgument(`${what}[${i}] must be an object { text?, metadata? }`)
    const { text, metadata, ...rest } = d as StoredDocument
    const extra = Object.keys(rest)
    if (extra.length > 0) throw invalidArgument(`${what}[${i}] has unknown key ${JSON.stringify(extra[0])} (use metadata for custom fields)`)
    if (text !== undefined && typeof text !== 'string') throw invalidArgument(`${what}[${i}].text must be a string`)
    if (text !== undefined) checkWellFormed(text, `${what}[${i}].text`)
    if (metadata !== undefined && !isPlainObject(metadata)) throw invalidArgument(`${what}[${i}].metadata must be a plain object`)
    return { text, metadata, metadataJson: metadata === undefined ? undefined : strictJson(metadata, `${what}[${i}].metadata`) }
  })
}

/** Checks stored documents and converts them for the native layer. */
function nativeDocuments(documents: unknown, n: number, what: string): Native.NativeDocument[] | undefined {
  return checkDocuments(documents, n, what)?.map((d) => (d ? { text: d.text, metadata: d.metadataJson } : {}))
}

/** @internal A filter's JSON text (`undefined` without one), refused unless a plain, JSON-faithful object. */
export function checkFilter(filter: unknown): string | undefined {
  if (filter === undefined) return undefined
  if (!isPlainObject(filter)) throw invalidArgument('filter must be a plain object such as { lang: "en" }')
  return strictJson(filter, 'filter')
}

/** @internal New ids: one non-empty, well-formed string per document. */
export function checkIds(ids: unknown, n: number, what = 'ids'): string[] {
  if (!Array.isArray(ids)) throw invalidArgument(`${what} must be an array of strings`)
  if (ids.length !== n) throw invalidArgument(`${what} has ${ids.length} entries but the embeddings hold ${n} documents`)
  ids.forEach((id, i) => {
    if (typeof id !== 'string' || id.length === 0) throw invalidArgument(`${what}[${i}] must be a non-empty string`)
    checkWellFormed(id, `${what}[${i}]`)
  })
  return ids as string[]
}

/** @internal Ids to look up (delete, documents, subset): an array of well-formed strings. */
export function lookupIds(ids: unknown, what: string): string[] {
  if (!Array.isArray(ids)) throw invalidArgument(`${what} must be an array of strings`)
  ids.forEach((id, i) => {
    if (typeof id !== 'string') throw invalidArgument(`${what}[${i}] must be a string`)
    checkWellFormed(id, `${what}[${i}]`)
  })
  return ids as string[]
}

/** @internal Checks training options (`create`, `replaceAll`) and converts them for the native layer. */
export function trainingOptions(options: TrainingOptions): Native.NativeIndexOptions {
  if (options.nbits !== undefined && ![1, 2, 4].includes(options.nbits)) throw invalidArgument('nbits must be 1, 2 or 4')
  if (options.seed !== undefined && (!Number.isSafeInteger(options.seed) || options.seed < 0)) {
    throw invalidArgument('seed must be a non-negative integer')
  }
  return {
    nbits: options.nbits,
    kmeansIterations: positiveInt(options.kmeansIterations, 'kmeansIterations'),
    numCentroids: positiveInt(options.numCentroids, 'numCentroids'),
    seed: options.seed,
    maxPointsPerCentroid: positiveInt(options.maxPointsPerCentroid, 'maxPointsPerCentroid'),
  }
}

/** @internal The batches and options of `add(ids, embeddings, options?)` or `add(batches, options?)`. */
export function addArguments<O extends AddOptions>(
  idsOrBatches: unknown,
  embeddingsOrOptions: unknown,
  maybeOptions: O | undefined,
): { batches: Iterable<DocumentBatch> | AsyncIterable<DocumentBatch>; options: O } {
  const arrayOfBatches = Array.isArray(idsOrBatches) && idsOrBatches.length > 0 && typeof idsOrBatches[0] === 'object' && idsOrBatches[0] !== null
  let batches: Iterable<DocumentBatch> | AsyncIterable<DocumentBatch>
  let options: O
  if (Array.isArray(idsOrBatches) && !arrayOfBatches) {
    const e = embeddingsOrOptions
    if (isAsyncIterable(e) || isIterable(e)) throw invalidArgument('pass either (ids, embeddings) or a stream of { ids, embeddings }')
    assertEmbeddings(e, 'embeddings')
    checkIds(idsOrBatches, count(e))
    options = maybeOptions ?? ({} as O)
    if (options === null || typeof options !== 'object') throw invalidArgument('options must be an object')
    batches = [{ ids: idsOrBatches, embeddings: e, documents: options.documents }]
  } else if (isAsyncIterable(idsOrBatches) || isIterable(idsOrBatches)) {
    batches = idsOrBatches
    options = (embeddingsOrOptions as O | undefined) ?? ({} as O)
  } else if (idsOrBatches == null && (isAsyncIterable(embeddingsOrOptions) || isIterable(embeddingsOrOptions))) {
    batches = embeddingsOrOptions
    options = maybeOptions ?? ({} as O)
  } else {
    throw invalidArgument('add takes (ids: string[], embeddings: Embeddings) or an (async) iterable of { ids, embeddings }')
  }
  if (options === null || typeof options !== 'object') throw invalidArgument('options must be an object')
  if ((arrayOfBatches || !Array.isArray(idsOrBatches)) && options.documents !== undefined) {
    throw invalidArgument('with a stream of batches, pass documents in each batch ({ ids, embeddings, documents })')
  }
  return { batches, options }
}

function addResult(info: Native.NativeCommitInfo): AddResult {
  return {
    added: info.added,
    replaced: info.deleted,
    trained: info.trained,
    newCentroids: info.newCentroids,
    numCentroids: info.numCentroids,
    generation: info.generation,
    mergedSegments: info.mergedSegments,
    reclaimed: info.reclaimed,
  }
}

/** Hands native commit progress on as `AddProgress` events (a fresh object per event). */
function commitProgress(progress: (p: AddProgress) => void) {
  return ({ stage, done, total }: Native.NativeProgress) => {
    // A commit reports its own stages only (`encode` belongs to a model).
    if (stage !== 'encode') progress({ stage, done, total })
  }
}

function isAsyncIterable(x: unknown): x is AsyncIterable<DocumentBatch> {
  return x !== null && typeof x === 'object' && Symbol.asyncIterator in x
}

function isIterable(x: unknown): x is Iterable<DocumentBatch> {
  return x !== null && typeof x === 'object' && Symbol.iterator in x
}

/**
 * A PLAID index of token embeddings with stable string ids. Every change is a transaction (old
 * or new state survive any crash); searches read a committed snapshot and never wait for writers.
 */
export class PlaidIndex {
  readonly #native: Native.NativePlaidIndex
  /** The index folder. */
  readonly dir: string
  readonly #maxQueued: number
  #searching = 0

  private constructor(handle: Native.NativePlaidIndex, options: OpenOptions) {
    this.#native = handle
    this.dir = handle.dir
    this.#maxQueued = positiveInt(options.maxQueued, 'maxQueued') ?? Infinity
  }

  /** Creates an empty index in `dir`; the first `add` trains it. */
  static async create(dir: string, options: PlaidIndexOptions = {}): Promise<PlaidIndex> {
    if (typeof dir !== 'string' || dir.length === 0) throw invalidArgument('the index path must be a non-empty string')
    checkKeys(options, CREATE_KEYS, 'option')
    const training = trainingOptions(options)
    positiveInt(options.maxQueued, 'maxQueued')
    if (options.overwrite !== undefined && typeof options.overwrite !== 'boolean') throw invalidArgument('overwrite must be a boolean')
    threadBudget()
    try {
      return new PlaidIndex(await native.createPlaidIndex(path.resolve(dir), { ...training, overwrite: options.overwrite }), options)
    } catch (e) {
      throw fromNative(e)
    }
  }

  /** Opens an existing index (memory-mapped; usable at once). */
  static async open(dir: string, options: OpenOptions = {}): Promise<PlaidIndex> {
    if (typeof dir !== 'string' || dir.length === 0) throw invalidArgument('the index path must be a non-empty string')
    checkKeys(options, OPEN_KEYS, 'option')
    positiveInt(options.maxQueued, 'maxQueued')
    threadBudget()
    try {
      return new PlaidIndex(await native.openPlaidIndex(path.resolve(dir)), options)
    } catch (e) {
      throw fromNative(e)
    }
  }

  /** Searches pending on this handle (bounded by `maxQueued`). */
  get load(): {
    /** Searches started on this handle and not yet settled. */
    searches: number
  } {
    return { searches: this.#searching }
  }

  /** A summary of the committed state this handle sees. */
  get info(): PlaidIndexInfo {
    const i = callNative(() => this.#native.info)
    return { ...i, dim: i.dim ?? null }
  }

  /**
   * Adds documents in one transaction: `add(ids, embeddings)`, or a stream `add(batches)` of
   * `{ ids, embeddings }` (sync or async iterable) whose memory stays bounded by one batch plus
   * the k-means sample. Ids must be unique, and new unless `replace` is set. Nothing is visible
   * until it resolves; on error or abort the index is unchanged. Writes to one index from one
   * process (`add`, `replaceAll`, `delete`, `compact`, `rebuild`, from any handle or worker
   * thread) run one at a time in the order they were called; `INDEX_LOCKED` means another
   * process is writing.
   */
  async add(
    idsOrBatches: readonly string[] | Iterable<DocumentBatch> | AsyncIterable<DocumentBatch> | null | undefined,
    embeddingsOrOptions?: Embeddings | Iterable<DocumentBatch> | AsyncIterable<DocumentBatch> | AddOptions,
    maybeOptions?: AddOptions,
  ): Promise<AddResult> {
    const { batches, options } = addArguments(idsOrBatches, embeddingsOrOptions, maybeOptions)
    checkKeys(options, ADD_KEYS, 'add option')
    if (options.replace !== undefined && typeof options.replace !== 'boolean') throw invalidArgument('replace must be a boolean')
    return this.#transaction(batches, options, options.replace === true, undefined)
  }

  /**
   * Replaces every document of the index with these, in one transaction: the codebook is
   * trained afresh on the new documents (with the index's training options, or those given),
   * searches see the old documents until it resolves, and on error or abort nothing changes.
   * Takes the same arguments as `add`.
   */
  async replaceAll(
    idsOrBatches: readonly string[] | Iterable<DocumentBatch> | AsyncIterable<DocumentBatch> | null | undefined,
    embeddingsOrOptions?: Embeddings | Iterable<DocumentBatch> | AsyncIterable<DocumentBatch> | ReplaceAllOptions,
    maybeOptions?: ReplaceAllOptions,
  ): Promise<AddResult> {
    const { batches, options } = addArguments(idsOrBatches, embeddingsOrOptions, maybeOptions)
    checkKeys(options, REPLACE_ALL_KEYS, 'replaceAll option')
    return this.#transaction(batches, options, false, trainingOptions(options))
  }

  /** One add or replace-all transaction: queue for the writer, push every batch, commit. */
  async #transaction(
    batches: Iterable<DocumentBatch> | AsyncIterable<DocumentBatch>,
    options: AddOptions,
    replace: boolean,
    replaceAll: Native.NativeIndexOptions | undefined,
  ): Promise<AddResult> {
    const signal = checkSignal(options.signal)
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw invalidArgument('onProgress must be a function')
    const progress = guard(options.onProgress, 'onProgress')
    const poolFactor = poolFactorOption(options.poolFactor) ?? 1
    const writer = await this.#writer(signal, replaceAll)
    let committed = false
    try {
      let documents = 0
      for await (const batch of batches as AsyncIterable<DocumentBatch>) {
        if (signal?.aborted) throw abortError(signal)
        if (batch === null || typeof batch !== 'object') throw invalidArgument('each batch must be { ids, embeddings }')
        assertEmbeddings(batch.embeddings, 'batch.embeddings')
        const ids = checkIds(batch.ids, count(batch.embeddings), 'batch.ids')
        const stored = nativeDocuments(batch.documents, ids.length, 'documents')
        const embeddings = poolFactor > 1 ? await poolEmbeddings(batch.embeddings, { poolFactor, signal }) : batch.embeddings
        try {
          await writer.push(ids, embeddings.dim, embeddings.offsets, embeddings.data, stored, replace)
        } catch (e) {
          throw fromNative(e)
        }
        documents += ids.length
        progress?.({ stage: 'push', documents })
      }
      const info = await withCancel(signal, (token) =>
        writer.commit(
          token,
          progress ? commitProgress(progress) : undefined,
        ),
      )
      committed = true
      return addResult(info)
    } finally {
      if (!committed) writer.abort()
    }
  }

  /**
   * A writer, once this process's earlier writes to the index are done. An abort while
   * waiting rejects at once; the writer, if it comes later, is released unused.
   */
  async #writer(signal: AbortSignal | undefined, replaceAll: Native.NativeIndexOptions | undefined): Promise<Native.NativeWriter> {
    return withCancel(signal, (token) => {
      const pending = this.#native.writer(token, replaceAll)
      if (!signal) return pending
      return new Promise<Native.NativeWriter>((resolve, reject) => {
        const onAbort = () => {
          reject(abortError(signal))
          pending.then((w) => w.abort(), () => undefined)
        }
        signal.addEventListener('abort', onAbort, { once: true })
        pending.then(
          (w) => {
            signal.removeEventListener('abort', onAbort)
            if (signal.aborted) w.abort()
            resolve(w)
          },
          (e) => {
            signal.removeEventListener('abort', onAbort)
            reject(e)
          },
        )
      })
    })
  }

  /** Deletes documents by id in one transaction; unknown ids are ignored. Returns how many were deleted. */
  async delete(ids: readonly string[]): Promise<number> {
    const checked = lookupIds(ids, 'ids')
    try {
      return await this.#native.delete(checked)
    } catch (e) {
      throw fromNative(e)
    }
  }

  /** Searches a batch of queries; `hits[i]` is query i's results, best first. */
  async search(queries: Embeddings, options: SearchOptions = {}): Promise<SearchHit[][]> {
    assertEmbeddings(queries, 'queries')
    checkKeys(options, SEARCH_KEYS, 'search option')
    const signal = checkSignal(options.signal)
    const t = options.centroidScoreThreshold
    if (t !== undefined && (typeof t !== 'number' || Number.isNaN(t))) throw invalidArgument('centroidScoreThreshold must be a number')
    const subset = options.subset === undefined ? undefined : lookupIds(options.subset, 'subset')
    const params: Native.NativeSearchParams = {
      k: positiveInt(options.k, 'k') ?? 10,
      nProbe: positiveInt(options.nProbe, 'nProbe'),
      centroidScoreThreshold: t === undefined ? undefined : Math.max(t, -3.4e38),
      candidates: positiveInt(options.candidates, 'candidates'),
      exactCandidates: positiveInt(options.exactCandidates, 'exactCandidates'),
    }
    const filter = checkFilter(options.filter)
    const withDocuments = options.withDocuments
    if (withDocuments !== undefined && typeof withDocuments !== 'boolean') throw invalidArgument('withDocuments must be a boolean')
    if (this.#searching >= this.#maxQueued) {
      throw new ColbertError('BUSY', `the index has ${this.#searching} searches pending (maxQueued ${this.#maxQueued}); retry later or raise maxQueued`)
    }
    this.#searching++
    try {
      const hits: SearchHit[][] = await withCancel(signal, (token) =>
        this.#native.search(queries.dim, queries.offsets, queries.data, params, subset, filter, token),
      )
      if (!withDocuments) return hits
      const ids = [...new Set(hits.flatMap((h) => h.map((x) => x.id)))]
      const docs = await this.documents(ids)
      const byId = new Map(ids.map((id, i) => [id, docs[i]]))
      return hits.map((h) => h.map((x) => ({ ...x, ...(byId.get(x.id) ?? {}) })))
    } finally {
      this.#searching--
    }
  }

  /** The stored text and metadata of each id, in order; `null` for ids that are not in the index. */
  async documents(ids: readonly string[]): Promise<(StoredDocument | null)[]> {
    const checked = lookupIds(ids, 'ids')
    let docs: (Native.NativeDocument | null | undefined)[]
    try {
      docs = await this.#native.documents(checked)
    } catch (e) {
      throw fromNative(e)
    }
    return docs.map((d) => {
      if (!d) return null
      const out: StoredDocument = {}
      if (d.text != null) out.text = d.text
      if (d.metadata != null) out.metadata = JSON.parse(d.metadata)
      return out
    })
  }

  /** Ids of the documents whose stored metadata matches `filter`, in insertion order. */
  async select(filter: MetadataFilter): Promise<string[]> {
    const json = checkFilter(filter)
    if (json === undefined) throw invalidArgument('select needs a filter')
    try {
      return await this.#native.select(json)
    } catch (e) {
      throw fromNative(e)
    }
  }

  /**
   * Merges every segment into one and drops deleted documents, reclaiming their space, in one
   * transaction. Unlike `rebuild` it does not retrain: codes and residuals are copied as they
   * are, so results do not change. Segments of an older format (`info.formatVersion` below the
   * current) are rewritten in the current one. A no-op when there is one current-format segment
   * and nothing deleted.
   */
  async compact(options: Pick<AddOptions, 'signal' | 'onProgress'> = {}): Promise<AddResult> {
    return this.#maintain(options, (token, onProgress) => this.#native.compact(token, onProgress))
  }

  /**
   * Retrains the codebook (k-means and codec) on the live documents and drops deleted ones, in
   * one transaction. Use it after many deletes or after the collection drifted. Lossy: it trains
   * on the decompressed embeddings, since the originals are not kept.
   */
  async rebuild(options: Pick<AddOptions, 'signal' | 'onProgress'> = {}): Promise<AddResult> {
    return this.#maintain(options, (token, onProgress) => this.#native.rebuild(token, onProgress))
  }

  /** Runs a whole-index transaction (compact, rebuild) with cancellation and progress. */
  async #maintain(
    options: Pick<AddOptions, 'signal' | 'onProgress'>,
    run: (token: Native.CancelToken, onProgress: ReturnType<typeof commitProgress> | undefined) => Promise<Native.NativeCommitInfo>,
  ): Promise<AddResult> {
    const signal = checkSignal(options.signal)
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw invalidArgument('onProgress must be a function')
    const progress = guard(options.onProgress, 'onProgress')
    return addResult(await withCancel(signal, (token) => run(token, progress ? commitProgress(progress) : undefined)))
  }

  /** Picks up changes committed by another handle or process; resolves `true` if there were any. */
  async refresh(): Promise<boolean> {
    try {
      return await this.#native.refresh()
    } catch (e) {
      throw fromNative(e)
    }
  }

  /** Closes this handle; later calls fail with `CLOSED`. */
  async close(): Promise<void> {
    this.#native.close()
  }

  /** Closes this handle (`close()`), for `await using index = await PlaidIndex.open(dir)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    try {
      const i = this.info
      return `PlaidIndex { dir: '${this.dir}', documents: ${i.documents}, nbits: ${i.nbits}, centroids: ${i.numCentroids} }`
    } catch {
      return `PlaidIndex { dir: '${this.dir}', closed }`
    }
  }
}
