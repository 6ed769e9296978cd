/**
 * `colbert/opensearch`: the PLAID index on an OpenSearch cluster. `OpenSearchIndex` has the
 * surface of `PlaidIndex` (create/open, add with `replace`, delete, search with `k`, `filter`,
 * `withDocuments` and the knobs, documents, select, info, refresh, close), so moving from one
 * machine to a cluster is a constructor change.
 *
 * Our codec, their cluster: this package keeps encoding, the codebook and exact scoring;
 * OpenSearch does routing, sharding, replication, filtering and storage. Each document is one
 * OpenSearch document (`_id` = its id) holding its centroid ids as keyword terms, its compressed
 * tokens as one binary blob, its text and metadata. A search probes each query token's best
 * centroids, asks OpenSearch for the documents with the best centroid-interaction score over
 * those centroids (a `dis_max` per query token, summed), and scores the returned blobs exactly
 * (MaxSim over the decoded tokens, as the local engine's last stage). The codebook is trained by
 * the first add and stored, versioned, in a companion index. ARCHITECTURE.md §16 has the design
 * and its capacity model.
 *
 * `@opensearch-project/opensearch` is an optional peer dependency: without it this module throws
 * `DEPENDENCY_MISSING` when imported; `colbert` itself never loads it.
 *
 * @module colbert/opensearch
 */
import './peer'

import type { Client } from '@opensearch-project/opensearch'

import { checkKeys, checkSignal, optionKeys, positiveInt, withCancel } from '../arguments'
import { assertEmbeddings, count, type Embeddings } from '../embeddings'
import { abortError, ColbertError, fromNative, invalidArgument } from '../errors'
import { native, type Native } from '../native'
import {
  ADD_KEYS,
  addArguments,
  checkDocuments,
  checkFilter,
  checkIds,
  lookupIds,
  SEARCH_KEYS,
  TRAINING_KEYS,
  trainingOptions,
  type AddOptions,
  type AddProgress,
  type DocumentBatch,
  type MetadataFilter,
  type SearchHit,
  type SearchOptions,
  type StoredDocument,
  type TrainingOptions,
} from '../plaid_index'
import { poolEmbeddings, poolFactorOption } from '../pool'
import { guard } from '../progress'
import { KV_FIELD, metadataTerms, translateFilter, type Query } from './filter'

/** The format of the stored codebook record this release writes (and the newest it reads). */
export const CLUSTER_FORMAT_VERSION = 1
/** The oldest stored codebook record format this release reads. */
export const OLDEST_SUPPORTED_CLUSTER_FORMAT = 1

/** @internal The key of {@link OpenSearchIndex}'s last-search timing (benchmarks read it). */
export const SEARCH_TIMING = Symbol.for('colbert.opensearch.searchTiming')

/** When an acknowledged write becomes visible to searches (OpenSearch's `refresh` parameter). */
export type RefreshPolicy = 'wait_for' | 'true' | 'false'

/** Options of {@link OpenSearchIndex.open} (and `create`). */
export interface OpenSearchOpenOptions {
  /**
   * When writes become searchable: `'wait_for'` (default: `add` and `delete` resolve once their
   * documents are visible to searches), `'true'` (force a refresh, costly under load) or
   * `'false'` (visible after the index's refresh interval, about a second).
   */
  refresh?: RefreshPolicy
  /**
   * Times a document the cluster refused with a retryable status (429, 502–504) is sent again,
   * and times a search the cluster failed (5xx, no answer) is run again (default 3).
   */
  maxRetries?: number
  /** Documents per bulk request (default 500). */
  bulkDocuments?: number
}

/** Options of {@link OpenSearchIndex.create}: the codebook's training and the OpenSearch index's layout. */
export interface OpenSearchIndexOptions extends TrainingOptions, OpenSearchOpenOptions {
  /** Primary shards of the OpenSearch index (default 1). */
  shards?: number
  /** Replicas of each shard (default 1: every document is on two nodes once the cluster has two). */
  replicas?: number
  /**
   * Delete an existing colbert index of this name (and its codebook record) first (default
   * false: `INDEX_EXISTS`). An OpenSearch index that is not a colbert index is never deleted.
   */
  overwrite?: boolean
}

/** What {@link OpenSearchIndex.info} reports (counts as of the last write or `refresh()`). */
export interface OpenSearchIndexInfo {
  /** The OpenSearch index holding the documents. */
  index: string
  /** The companion OpenSearch index holding the codebook record. */
  codebookIndex: string
  /** Format of the stored codebook record. */
  formatVersion: number
  /** Documents in the index (OpenSearch's count). */
  documents: number
  /** Token embeddings stored. */
  embeddings: number
  /** `null` until the first add trains the codebook. */
  dim: number | null
  /** Bits per residual dimension. */
  nbits: number
  /** Centroids of the codebook (0 until trained). */
  numCentroids: number
  /** Primary shards. */
  shards: number
  /** Replicas per shard. */
  replicas: number
}

/** The outcome of {@link OpenSearchIndex.add}. */
export interface OpenSearchAddResult {
  /** Documents written and acknowledged by the cluster. */
  added: number
  /** With `replace`: documents that already existed and were overwritten. */
  replaced: number
  /** This add trained the codebook (the index's first add). */
  trained: boolean
  /** Centroids of the codebook. */
  numCentroids: number
}

/** One document the cluster did not acknowledge. */
export interface WriteFailure {
  /** The document's id. */
  id: string
  /** The HTTP status OpenSearch gave the item (0: the request itself failed). */
  status: number
  /** OpenSearch's error type, e.g. `version_conflict_engine_exception`. */
  type: string
  /** OpenSearch's reason. */
  reason: string
}

/**
 * `WRITE_INCOMPLETE`: the cluster acknowledged some documents of a write and not others (after
 * retries). `failed` lists each refused document; `written` the acknowledged ones, which stay
 * written. Retrying the same `add` with `replace: true` is safe (idempotent).
 */
export class WriteIncompleteError extends ColbertError {
  /** Documents the cluster refused. */
  readonly failed: WriteFailure[]
  /** Ids the cluster acknowledged. */
  readonly written: string[]

  /** The error for a partly acknowledged write. */
  constructor(failed: WriteFailure[], written: string[]) {
    const first = failed[0]
    super(
      'WRITE_INCOMPLETE',
      `the cluster refused ${failed.length} of ${failed.length + written.length} documents (first: ${JSON.stringify(first?.id)}: ${first?.status} ${first?.type}: ${first?.reason}); ` +
        'the others are written. Fix the cause and add the refused ones again (replace: true is safe to repeat)',
    )
    this.failed = failed
    this.written = written
  }
}

/** Search options of {@link OpenSearchIndex.search}: those of `PlaidIndex.search`. */
export type OpenSearchSearchOptions = SearchOptions

/** Options of {@link OpenSearchIndex.add}: those of `PlaidIndex.add`. */
export type OpenSearchAddOptions = AddOptions

interface CodebookRecord {
  format: number
  oldestSupported: number
  trained: boolean
  dim?: number
  nbits: number
  numCentroids?: number
  options: Native.NativeIndexOptions
  codebook?: string
}

const OPEN_KEYS = optionKeys<OpenSearchOpenOptions>()('refresh', 'maxRetries', 'bulkDocuments')
const CREATE_KEYS = optionKeys<OpenSearchIndexOptions>()(...TRAINING_KEYS, 'refresh', 'maxRetries', 'bulkDocuments', 'shards', 'replicas', 'overwrite')
const RETRYABLE = new Set([429, 502, 503, 504])
/** OpenSearch's default `index.max_result_window`: the most candidates one search can fetch. */
const MAX_CANDIDATES = 10_000
/** Lucene's longest term is 32,766 bytes; a metadata string must fit with its path. */
const MAX_TERM_BYTES = 32_000

/** Base64 text as bytes (a view of the decoded buffer, typed for the native layer). */
function fromBase64(text: string): Uint8Array {
  const b = Buffer.from(text, 'base64')
  return new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength)
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

function codebookIndexOf(name: string): string {
  return `${name}-colbert-codebook`
}

function checkName(name: unknown): string {
  if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9._-]*$/.test(name) || name.length > 200) {
    throw invalidArgument(`index name must be a lowercase OpenSearch index name (a-z, 0-9, '.', '_', '-'; not starting with '.', '_' or '-'), got ${JSON.stringify(name)}`)
  }
  return name
}

function checkClient(client: unknown): Client {
  const c = client as Client | null
  if (!c || typeof c !== 'object' || typeof (c as { transport?: { request?: unknown } }).transport?.request !== 'function') {
    throw invalidArgument('client must be an @opensearch-project/opensearch Client')
  }
  return c
}

/** A cluster error as a ColbertError with a stable code. */
function clusterError(e: unknown, what: string): ColbertError {
  if (e instanceof ColbertError) return e
  const err = e as { name?: string; message?: string; meta?: { statusCode?: number; body?: { error?: { type?: string; reason?: string } } } }
  const status = err.meta?.statusCode
  const reason = err.meta?.body?.error?.reason ?? err.message ?? String(e)
  if (err.name === 'RequestAbortedError') return new ColbertError('ABORTED', 'the operation was aborted', { cause: e })
  if (status === 401 || status === 403) {
    return new ColbertError('UNAUTHORIZED', `${what}: the cluster refused the credentials (${status}: ${reason}); check the client's auth`, { cause: e })
  }
  if (status === undefined || status >= 500 || err.name === 'ConnectionError' || err.name === 'TimeoutError' || err.name === 'NoLivingConnectionsError') {
    return new ColbertError('CLUSTER_UNAVAILABLE', `${what}: the cluster did not answer (${status ?? err.name ?? 'no status'}: ${reason}); check that it runs and is reachable, then retry`, { cause: e })
  }
  return new ColbertError('INVALID_ARGUMENT', `${what}: the cluster refused the request (${status}: ${reason})`, { cause: e })
}

/**
 * A filter as the cluster runs it: its JSON text, checked by the local parser (the same errors as
 * `PlaidIndex`), and the translation of that same JSON (so both engines see one value).
 */
function clusterFilter(filter: unknown): { json: string; query: Query; recheck: boolean } | undefined {
  const json = checkFilter(filter)
  if (json === undefined) return undefined
  try {
    native.metadataMatches(json, [])
  } catch (e) {
    throw fromNative(e)
  }
  return { json, ...translateFilter(JSON.parse(json) as MetadataFilter) }
}

/** Ids already checked by `checkIds`/`lookupIds`, within OpenSearch's 512-byte `_id` limit. */
function clusterIds(ids: string[], what: string): string[] {
  ids.forEach((id, i) => {
    if (Buffer.byteLength(id) > 512) throw invalidArgument(`${what}[${i}] is longer than OpenSearch's 512-byte id limit`)
  })
  return ids
}

function openOptions(options: OpenSearchOpenOptions): Required<OpenSearchOpenOptions> {
  const refresh = options.refresh ?? 'wait_for'
  if (!['wait_for', 'true', 'false'].includes(refresh)) throw invalidArgument(`refresh must be 'wait_for', 'true' or 'false', got ${JSON.stringify(refresh)}`)
  const maxRetries = options.maxRetries ?? 3
  if (!Number.isInteger(maxRetries) || maxRetries < 0 || maxRetries > 100) throw invalidArgument('maxRetries must be an integer from 0 to 100')
  return { refresh, maxRetries, bulkDocuments: positiveInt(options.bulkDocuments, 'bulkDocuments') ?? 500 }
}

/** Concatenates batches of the same dim. */
function concat(parts: Embeddings[]): Embeddings {
  const dim = parts[0].dim
  const docs = parts.reduce((n, p) => n + p.offsets.length - 1, 0)
  const rows = parts.reduce((n, p) => n + p.offsets[p.offsets.length - 1], 0)
  const offsets = new Uint32Array(docs + 1)
  const data = new Float32Array(rows * dim)
  let d = 0
  let r = 0
  for (const p of parts) {
    const n = p.offsets.length - 1
    for (let i = 1; i <= n; i++) offsets[d + i] = r + p.offsets[i]
    data.set(p.data.subarray(0, p.offsets[n] * dim), r * dim)
    d += n
    r += p.offsets[n]
  }
  return { dim, offsets, data }
}

/**
 * The index on a cluster. Create it with {@link OpenSearchIndex.create} (an empty OpenSearch
 * index and its codebook record) or open an existing one with {@link OpenSearchIndex.open}.
 */
export class OpenSearchIndex {
  /**
   * Where the last search's time went: probing, the cluster's candidate query (round trip
   * included), fetching-and-scoring here. For benchmarks.
   * @internal
   */
  [SEARCH_TIMING]: { probeMs: number; clusterMs: number; scoreMs: number } | undefined
  /** The OpenSearch index holding the documents. */
  readonly name: string
  readonly #client: Client
  readonly #options: Required<OpenSearchOpenOptions>
  #record: CodebookRecord
  #codebook: Native.NativeStandaloneCodebook | undefined
  #counts = { documents: 0, embeddings: 0, shards: 1, replicas: 1 }
  #closed = false
  /** Writes from this handle run one at a time, in call order. */
  #writes: Promise<unknown> = Promise.resolve()

  private constructor(client: Client, name: string, options: Required<OpenSearchOpenOptions>, record: CodebookRecord) {
    this.#client = client
    this.name = name
    this.#options = options
    this.#record = record
    this.#codebook = record.trained && record.codebook ? native.NativeStandaloneCodebook.fromBytes(fromBase64(record.codebook), record.dim ?? 0) : undefined
  }

  async #request<T = Record<string, unknown>>(
    what: string,
    params: { method: string; path: string; body?: unknown; bulkBody?: unknown[]; querystring?: Record<string, unknown> },
    options: { ignore?: number[]; signal?: AbortSignal; write?: boolean } = {},
  ): Promise<{ body: T; statusCode: number }> {
    const { signal } = options
    if (signal?.aborted) throw abortError(signal)
    // Reads use the client's retries (another node answers when one is down); bulk writes only
    // ours, which account for every item (a resent `create` would report its own success as a
    // conflict).
    const pending = this.#client.transport.request(params as never, options.write ? { ignore: options.ignore, maxRetries: 0 } : { ignore: options.ignore })
    const onAbort = () => pending.abort()
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      const res = (await pending) as unknown as { body: T; statusCode: number }
      return res
    } catch (e) {
      if (signal?.aborted) throw abortError(signal)
      throw clusterError(e, what)
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  /**
   * Creates an empty index named `name` on the cluster `client` talks to: the OpenSearch index
   * (mapping and shards) and the companion index holding the codebook record. The codebook is
   * trained by the first `add`, on its documents, as `PlaidIndex` does. `INDEX_EXISTS` if either
   * index exists (unless `overwrite`).
   */
  static async create(client: Client, name: string, options: OpenSearchIndexOptions = {}): Promise<OpenSearchIndex> {
    checkClient(client)
    checkName(name)
    checkKeys(options, CREATE_KEYS, 'create option')
    const open = openOptions(options)
    const training = trainingOptions(options)
    const shards = positiveInt(options.shards, 'shards') ?? 1
    const replicas = options.replicas ?? 1
    if (!Number.isInteger(replicas) || replicas < 0) throw invalidArgument('replicas must be a non-negative integer')
    const record: CodebookRecord = {
      format: CLUSTER_FORMAT_VERSION,
      oldestSupported: OLDEST_SUPPORTED_CLUSTER_FORMAT,
      trained: false,
      nbits: training.nbits ?? 4,
      options: training,
    }
    const index = new OpenSearchIndex(client, name, open, record)
    const cbIndex = codebookIndexOf(name)
    if (options.overwrite === true) {
      // Only a colbert index (one with its codebook record) is replaced, never another index.
      const existing = await index.#request('create', { method: 'HEAD', path: `/${name}` }, { ignore: [404] })
      if (existing.statusCode !== 404) {
        try {
          await index.#readRecord()
        } catch (e) {
          if ((e as ColbertError).code !== 'INDEX_NOT_FOUND') throw e
          throw new ColbertError('INDEX_EXISTS', `the OpenSearch index ${JSON.stringify(name)} exists and is not a colbert index (no ${cbIndex}): overwrite only replaces colbert indexes; delete it yourself or pick another name`)
        }
      }
      await index.#request('create', { method: 'DELETE', path: `/${name},${cbIndex}`, querystring: { ignore_unavailable: true } })
    }
    const settings = { number_of_shards: shards, number_of_replicas: replicas }
    try {
      await index.#request('create', {
        method: 'PUT',
        path: `/${cbIndex}`,
        body: {
          settings: { number_of_shards: 1, number_of_replicas: replicas },
          mappings: { dynamic: false, properties: { codebook: { type: 'binary' }, trained: { type: 'boolean' } } },
        },
      })
    } catch (e) {
      throw alreadyExists(e, name)
    }
    try {
      await index.#request('create', {
        method: 'PUT',
        path: `/${name}`,
        body: {
          settings,
          mappings: {
            dynamic: false,
            properties: {
              colbert_id: { type: 'keyword' },
              colbert_centroids: { type: 'keyword', index_options: 'docs', norms: false, doc_values: false },
              colbert_codes: { type: 'binary' },
              colbert_tokens: { type: 'integer' },
              [KV_FIELD]: { type: 'keyword', index_options: 'docs', norms: false, doc_values: false },
              text: { type: 'text' },
              metadata: { type: 'object', enabled: false },
            },
          },
        },
      })
    } catch (e) {
      await index.#request('create', { method: 'DELETE', path: `/${cbIndex}` }, { ignore: [404] }).catch(() => undefined)
      throw alreadyExists(e, name)
    }
    await index.#request('create', {
      method: 'PUT',
      path: `/${cbIndex}/_doc/codebook`,
      querystring: { op_type: 'create', refresh: 'true' },
      body: record,
    })
    index.#counts = { documents: 0, embeddings: 0, shards, replicas }
    return index
  }

  /** Opens an index made by {@link OpenSearchIndex.create}: `INDEX_NOT_FOUND` if it is not there. */
  static async open(client: Client, name: string, options: OpenSearchOpenOptions = {}): Promise<OpenSearchIndex> {
    checkClient(client)
    checkName(name)
    checkKeys(options, OPEN_KEYS, 'open option')
    const open = openOptions(options)
    const probe = new OpenSearchIndex(client, name, open, { format: 1, oldestSupported: 1, trained: false, nbits: 4, options: {} })
    const record = await probe.#readRecord()
    const index = new OpenSearchIndex(client, name, open, record)
    await index.refresh()
    return index
  }

  async #readRecord(): Promise<CodebookRecord & { seqNo: number; primaryTerm: number }> {
    const res = await this.#request<{ found?: boolean; _source?: CodebookRecord; _seq_no: number; _primary_term: number }>(
      'open',
      { method: 'GET', path: `/${codebookIndexOf(this.name)}/_doc/codebook` },
      { ignore: [404] },
    )
    if (res.statusCode === 404 || !res.body.found || !res.body._source) {
      throw new ColbertError('INDEX_NOT_FOUND', `no colbert index named ${JSON.stringify(this.name)} on this cluster (its codebook record ${codebookIndexOf(this.name)} is missing): create it with OpenSearchIndex.create`)
    }
    const r = res.body._source
    if (typeof r.format !== 'number' || r.format < OLDEST_SUPPORTED_CLUSTER_FORMAT || r.oldestSupported > CLUSTER_FORMAT_VERSION) {
      throw new ColbertError(
        'INDEX_FORMAT_UNSUPPORTED',
        `the index ${this.name} has codebook format ${r.format} (readable from ${r.oldestSupported}); this release reads ${OLDEST_SUPPORTED_CLUSTER_FORMAT}..${CLUSTER_FORMAT_VERSION}: upgrade colbert`,
      )
    }
    return { ...r, seqNo: res.body._seq_no, primaryTerm: res.body._primary_term }
  }

  #check(): void {
    if (this.#closed) throw new ColbertError('CLOSED', `the index ${this.name} is closed; open it again`)
  }

  /** The index's state as of the last write or {@link OpenSearchIndex.refresh} on this handle. */
  get info(): OpenSearchIndexInfo {
    this.#check()
    return {
      index: this.name,
      codebookIndex: codebookIndexOf(this.name),
      formatVersion: this.#record.format,
      documents: this.#counts.documents,
      embeddings: this.#counts.embeddings,
      dim: this.#codebook ? this.#codebook.dim : null,
      nbits: this.#codebook ? this.#codebook.nbits : this.#record.nbits,
      numCentroids: this.#codebook ? this.#codebook.numCentroids : 0,
      shards: this.#counts.shards,
      replicas: this.#counts.replicas,
    }
  }

  /**
   * Reloads the codebook record (another process may have trained the index) and the counts;
   * resolves `true` if the codebook changed.
   */
  async refresh(): Promise<boolean> {
    this.#check()
    let changed = false
    if (!this.#codebook) {
      const record = await this.#readRecord()
      if (record.trained && record.codebook) {
        this.#record = record
        this.#codebook = native.NativeStandaloneCodebook.fromBytes(fromBase64(record.codebook), record.dim ?? 0)
        changed = true
      }
    }
    const stats = await this.#request<{ count?: number; hits?: unknown; aggregations?: { tokens?: { value?: number } } }>('refresh', {
      method: 'POST',
      path: `/${this.name}/_search`,
      body: { size: 0, track_total_hits: true, aggs: { tokens: { sum: { field: 'colbert_tokens' } } } },
    })
    const total = (stats.body.hits as { total?: { value?: number } } | undefined)?.total?.value ?? 0
    const settings = await this.#request<Record<string, { settings?: { index?: { number_of_shards?: string; number_of_replicas?: string } } }>>('refresh', {
      method: 'GET',
      path: `/${this.name}/_settings`,
    })
    const s = Object.values(settings.body)[0]?.settings?.index
    this.#counts = {
      documents: total,
      embeddings: Math.round(stats.body.aggregations?.tokens?.value ?? 0),
      shards: Number(s?.number_of_shards ?? 1),
      replicas: Number(s?.number_of_replicas ?? 0),
    }
    return changed
  }

  /** Runs writes of this handle one at a time, in call order. */
  #serial<T>(run: () => Promise<T>): Promise<T> {
    const next = this.#writes.then(run, run)
    this.#writes = next.catch(() => undefined)
    return next
  }

  /**
   * Adds documents, as `PlaidIndex.add`: `add(ids, embeddings, { documents })` or
   * `add(batches)`. The first add trains the codebook on its documents (all of its batches are
   * held in memory for that); later adds stream. Resolves once the cluster acknowledged every
   * document (on its primary and in-sync replicas) and, with the default refresh policy, they
   * are searchable. Without `replace`, ids already in the index are `INVALID_ARGUMENT` and
   * nothing is written. Unlike a local index the write is not one transaction: if the cluster
   * refuses some documents, the call rejects with {@link WriteIncompleteError} listing them and
   * the acknowledged ones stay.
   */
  async add(
    idsOrBatches: readonly string[] | Iterable<DocumentBatch> | AsyncIterable<DocumentBatch> | null | undefined,
    embeddingsOrOptions?: Embeddings | Iterable<DocumentBatch> | AsyncIterable<DocumentBatch> | AddOptions,
    maybeOptions?: AddOptions,
  ): Promise<OpenSearchAddResult> {
    this.#check()
    const { batches, options } = addArguments(idsOrBatches, embeddingsOrOptions, maybeOptions)
    checkKeys(options, ADD_KEYS, 'add option')
    const signal = checkSignal(options.signal)
    if (options.replace !== undefined && typeof options.replace !== 'boolean') throw invalidArgument('replace must be a boolean')
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw invalidArgument('onProgress must be a function')
    const progress = guard(options.onProgress, 'onProgress')
    const poolFactor = poolFactorOption(options.poolFactor) ?? 1
    return this.#serial(() => this.#add(batches, options.replace === true, poolFactor, signal, progress))
  }

  async #add(
    batches: Iterable<DocumentBatch> | AsyncIterable<DocumentBatch>,
    replace: boolean,
    poolFactor: number,
    signal: AbortSignal | undefined,
    progress: ((p: AddProgress) => void) | undefined,
  ): Promise<OpenSearchAddResult> {
    type Checked = { ids: string[]; embeddings: Embeddings; documents: (StoredDocument | undefined)[]; terms: string[][] }
    const seen = new Set<string>()
    // Everything a batch could be refused for is checked before it is trained on or written.
    const check = async (batch: DocumentBatch): Promise<Checked> => {
      if (signal?.aborted) throw abortError(signal)
      if (batch === null || typeof batch !== 'object') throw invalidArgument('each batch must be { ids, embeddings }')
      assertEmbeddings(batch.embeddings, 'batch.embeddings')
      const ids = clusterIds(checkIds(batch.ids, count(batch.embeddings), 'batch.ids'), 'batch.ids')
      for (const id of ids) {
        if (seen.has(id)) throw invalidArgument(`id ${JSON.stringify(id)} appears twice in this add`)
        seen.add(id)
      }
      const documents = checkDocuments(batch.documents, ids.length, 'documents') ?? []
      const terms = ids.map((id, i) => {
        const kv = metadataTerms(documents[i]?.metadata)
        if (kv.some((t) => Buffer.byteLength(t) > MAX_TERM_BYTES)) {
          throw invalidArgument(`documents[${i}] (${JSON.stringify(id)}): a metadata string is longer than the ${MAX_TERM_BYTES} bytes a cluster can filter on; put long text in text instead`)
        }
        return kv
      })
      const embeddings = poolFactor > 1 ? await poolEmbeddings(batch.embeddings, { poolFactor, signal }) : batch.embeddings
      return { ids, embeddings, documents, terms }
    }
    let trained = false
    const pending: Checked[] = []
    const result = { added: 0, replaced: 0 }
    const write = async (b: Checked) => {
      if (!this.#codebook) throw new ColbertError('INTERNAL', 'no codebook to compress with')
      const cb = this.#codebook
      const compressed = await withCancel(signal, (token) => cb.compress(b.embeddings.dim, b.embeddings.offsets, b.embeddings.data, token))
      progress?.({ stage: 'compress', done: b.ids.length, total: b.ids.length })
      const docs = b.ids.map((id, i) => {
        const d = b.documents[i]
        const source: Record<string, unknown> = {
          colbert_id: id,
          colbert_centroids: Array.from(compressed.centroids[i], String),
          colbert_codes: toBase64(compressed.blobs[i]),
          colbert_tokens: b.embeddings.offsets[i + 1] - b.embeddings.offsets[i],
          [KV_FIELD]: b.terms[i],
        }
        if (d?.text !== undefined) source.text = d.text
        if (d?.metadata !== undefined) source.metadata = d.metadata
        return { id, source }
      })
      const r = await this.#bulk(docs, replace, signal)
      result.added += r.written
      result.replaced += r.replaced
      progress?.({ stage: 'write', done: result.added, total: result.added })
    }
    for await (const raw of batches as AsyncIterable<DocumentBatch>) {
      const b = await check(raw)
      if (b.ids.length === 0) continue
      if (!replace) await this.#refuseExisting(b.ids, signal)
      progress?.({ stage: 'push', documents: seen.size })
      if (!this.#codebook) {
        pending.push(b)
        continue
      }
      await write(b)
    }
    if (!this.#codebook && pending.length > 0) {
      await this.#train(concat(pending.map((p) => p.embeddings)), signal, progress)
      trained = true
    }
    for (const b of pending) await write(b)
    await this.refresh()
    return { ...result, trained, numCentroids: this.#codebook?.numCentroids ?? 0 }
  }

  /** `INVALID_ARGUMENT` (before anything is written) if any id is already in the index. */
  async #refuseExisting(ids: string[], signal: AbortSignal | undefined): Promise<void> {
    for (let i = 0; i < ids.length; i += 1000) {
      const chunk = ids.slice(i, i + 1000)
      const res = await this.#request<{ docs: { _id: string; found?: boolean }[] }>(
        'add',
        { method: 'POST', path: `/${this.name}/_mget`, querystring: { _source: 'false', realtime: 'true' }, body: { ids: chunk } },
        { signal },
      )
      const found = res.body.docs.filter((d) => d.found).map((d) => d._id)
      if (found.length > 0) {
        throw invalidArgument(`${found.length} ids are already in the index (first: ${JSON.stringify(found[0])}); pass replace: true to overwrite them`)
      }
    }
  }

  /**
   * Trains the codebook on these embeddings and stores it, unless another writer stored one
   * first (then that one is used: one codebook per index, ever).
   */
  async #train(sample: Embeddings, signal: AbortSignal | undefined, progress: ((p: AddProgress) => void) | undefined): Promise<void> {
    const current = await this.#readRecord()
    if (!current.trained) {
      const onProgress = progress
        ? ({ stage, done, total }: Native.NativeProgress) => progress({ stage: stage as 'sample' | 'kmeans', done, total })
        : undefined
      const cb = await withCancel(signal, (token) => native.trainStandaloneCodebook(sample.dim, sample.offsets, sample.data, current.options, token, onProgress))
      const record: CodebookRecord = {
        format: CLUSTER_FORMAT_VERSION,
        oldestSupported: OLDEST_SUPPORTED_CLUSTER_FORMAT,
        trained: true,
        dim: cb.dim,
        nbits: cb.nbits,
        numCentroids: cb.numCentroids,
        options: current.options,
        codebook: toBase64(cb.toBytes()),
      }
      const res = await this.#request(
        'add',
        {
          method: 'PUT',
          path: `/${codebookIndexOf(this.name)}/_doc/codebook`,
          querystring: { if_seq_no: current.seqNo, if_primary_term: current.primaryTerm, refresh: 'true' },
          body: record,
        },
        { ignore: [409], signal },
      )
      if (res.statusCode !== 409) {
        this.#record = record
        this.#codebook = cb
        return
      }
    }
    // Another writer trained it meanwhile: use theirs.
    const theirs = await this.#readRecord()
    if (!theirs.trained || !theirs.codebook) throw new ColbertError('INTERNAL', 'the codebook record changed but holds no codebook')
    this.#record = theirs
    this.#codebook = native.NativeStandaloneCodebook.fromBytes(fromBase64(theirs.codebook), theirs.dim ?? 0)
  }

  /**
   * Writes documents with bulk requests: `index` (upsert) with `replace`, else `create`. Items
   * refused with a retryable status are sent again (with backoff) up to `maxRetries` times;
   * what is still refused rejects with {@link WriteIncompleteError}.
   */
  async #bulk(docs: { id: string; source: Record<string, unknown> }[], replace: boolean, signal: AbortSignal | undefined): Promise<{ written: number; replaced: number }> {
    const op = replace ? 'index' : 'create'
    const written: string[] = []
    const failed: WriteFailure[] = []
    let replaced = 0
    for (let start = 0; start < docs.length; start += this.#options.bulkDocuments) {
      let todo = docs.slice(start, start + this.#options.bulkDocuments)
      for (let attempt = 0; todo.length > 0; attempt++) {
        const body: unknown[] = []
        for (const d of todo) body.push({ [op]: { _index: this.name, _id: d.id } }, d.source)
        let items: { status: number; result?: string; error?: { type?: string; reason?: string } }[]
        try {
          const res = await this.#request<{ items: Record<string, { status: number; result?: string; error?: { type?: string; reason?: string } }>[] }>(
            'add',
            { method: 'POST', path: '/_bulk', querystring: { refresh: this.#options.refresh }, bulkBody: body },
            { signal, write: true },
          )
          items = res.body.items.map((it) => Object.values(it)[0])
        } catch (e) {
          const err = e as ColbertError
          if (err.code === 'ABORTED' || attempt >= this.#options.maxRetries) {
            if (err.code === 'ABORTED' && written.length === 0) throw err
            for (const d of todo) failed.push({ id: d.id, status: 0, type: err.code, reason: err.message })
            break
          }
          await new Promise((r) => setTimeout(r, 200 * 2 ** attempt))
          continue
        }
        const retry: typeof todo = []
        items.forEach((it, i) => {
          const d = todo[i]
          if (it.status >= 200 && it.status < 300) {
            written.push(d.id)
            if (replace && it.result === 'updated') replaced++
          } else if (RETRYABLE.has(it.status) && attempt < this.#options.maxRetries) {
            retry.push(d)
          } else {
            failed.push({ id: d.id, status: it.status, type: it.error?.type ?? 'unknown', reason: it.error?.reason ?? '' })
          }
        })
        todo = retry
        if (todo.length > 0) await new Promise((r) => setTimeout(r, 200 * 2 ** attempt))
      }
    }
    if (failed.length > 0) throw new WriteIncompleteError(failed, written)
    return { written: written.length, replaced }
  }

  /** Deletes documents by id; unknown ids are ignored. Resolves with how many were deleted. */
  async delete(ids: readonly string[]): Promise<number> {
    this.#check()
    const checked = clusterIds(lookupIds(ids, 'ids'), 'ids')
    return this.#serial(async () => {
      let deleted = 0
      const failed: WriteFailure[] = []
      const done: string[] = []
      for (let i = 0; i < checked.length; i += this.#options.bulkDocuments) {
        const chunk = checked.slice(i, i + this.#options.bulkDocuments)
        const res = await this.#request<{ items: { delete: { status: number; result?: string; error?: { type?: string; reason?: string } } }[] }>('delete', {
          method: 'POST',
          path: '/_bulk',
          querystring: { refresh: this.#options.refresh },
          bulkBody: chunk.map((id) => ({ delete: { _index: this.name, _id: id } })),
        })
        res.body.items.forEach((it, j) => {
          const d = it.delete
          if (d.status === 200 && d.result === 'deleted') {
            deleted++
            done.push(chunk[j])
          } else if (d.status !== 404) failed.push({ id: chunk[j], status: d.status, type: d.error?.type ?? 'unknown', reason: d.error?.reason ?? '' })
        })
      }
      if (failed.length > 0) throw new WriteIncompleteError(failed, done)
      await this.refresh()
      return deleted
    })
  }

  /**
   * Searches a batch of queries; `hits[i]` is query i's results, best first, with the local
   * engine's scores (MaxSim over the decoded tokens). `nProbe` (default 8) is the centroids
   * probed per query token; `exactCandidates` (default `max(candidates / 4, k)`, `candidates` by
   * k: 1024 up to k = 64, then 16k up to k = 100, then max(4k, 4096)) the documents the cluster
   * returns (at most 10,000), all scored
   * exactly; `centroidScoreThreshold` drops probed centroids scoring below it.
   */
  async search(queries: Embeddings, options: SearchOptions = {}): Promise<SearchHit[][]> {
    this.#check()
    assertEmbeddings(queries, 'queries')
    checkKeys(options, SEARCH_KEYS, 'search option')
    const signal = checkSignal(options.signal)
    const k = positiveInt(options.k, 'k') ?? 10
    const t = options.centroidScoreThreshold
    if (t !== undefined && (typeof t !== 'number' || Number.isNaN(t))) throw invalidArgument('centroidScoreThreshold must be a number')
    // Defaults measured on SciFact (BENCHMARKS.md "Scaling out"): the cluster's candidate score
    // counts probed centroids only, so it probes more and scores more than the local engine does.
    const nProbe = positiveInt(options.nProbe, 'nProbe') ?? 8
    const candidates = positiveInt(options.candidates, 'candidates') ?? (k <= 100 ? Math.max(1024, 4 * k * 4) : Math.max(4 * k, 4096))
    const size = Math.min(positiveInt(options.exactCandidates, 'exactCandidates') ?? Math.max(Math.floor(candidates / 4), k), MAX_CANDIDATES)
    const subset = options.subset === undefined ? undefined : clusterIds(lookupIds(options.subset, 'subset'), 'subset')
    const withDocuments = options.withDocuments
    if (withDocuments !== undefined && typeof withDocuments !== 'boolean') throw invalidArgument('withDocuments must be a boolean')
    const filter = clusterFilter(options.filter)
    const cb = this.#codebook
    if (!cb || count(queries) === 0) return Array.from({ length: count(queries) }, () => [])
    if (queries.dim !== cb.dim) throw invalidArgument(`queries have dim ${queries.dim}, the index has dim ${cb.dim}`)
    const t0 = performance.now()
    let probes: Native.NativeProbe[]
    try {
      probes = await cb.probe(queries.dim, queries.offsets, queries.data, nProbe)
    } catch (e) {
      throw fromNative(e)
    }
    const restrict: Query[] = []
    if (filter) restrict.push(filter.query)
    if (subset) restrict.push({ ids: { values: subset } })
    const source = ['colbert_codes', ...(withDocuments ? ['text', 'metadata'] : filter?.recheck ? ['metadata'] : [])]
    const body: unknown[] = []
    for (const p of probes) {
      const should: Query[] = []
      for (let tok = 0; tok < p.tokens; tok++) {
        const clauses: Query[] = []
        for (let j = 0; j < p.nProbe; j++) {
          const s = p.scores[tok * p.nProbe + j]
          // Lucene boosts are non-negative; a centroid that does not score cannot help.
          if (!(s > 0) || (t !== undefined && s < t)) continue
          clauses.push({ constant_score: { filter: { term: { colbert_centroids: String(p.centroids[tok * p.nProbe + j]) } }, boost: s } })
        }
        if (clauses.length > 0) should.push(clauses.length === 1 ? clauses[0] : { dis_max: { queries: clauses, tie_breaker: 0 } })
      }
      // With a filter or subset every matching document is a candidate (scoring 0 without a
      // probed centroid), so a selective filter is searched exhaustively, as locally.
      const query: Query = restrict.length > 0 ? { bool: { should, filter: restrict } } : { bool: { should, minimum_should_match: 1 } }
      // No partial results: a shard with no live copy fails the search instead of silently
      // dropping that shard's documents.
      body.push({ index: this.name, allow_partial_search_results: false }, { size, query, _source: source, track_total_hits: false })
    }
    const t1 = performance.now()
    // A search is idempotent: one that failed on the cluster's side (a node died between a
    // shard's query and fetch phases, a shard copy moving) is run again, as writes are.
    type Responses = { responses: { status?: number; error?: { type?: string; reason?: string }; hits?: { hits: { _id: string; _source: Record<string, unknown> }[] } }[] }
    let res: { body: Responses } | undefined
    for (let attempt = 0; ; attempt++) {
      let failure: unknown
      try {
        res = await this.#request<Responses>('search', { method: 'POST', path: '/_msearch', bulkBody: body }, { signal })
        const bad = res.body.responses.find((r) => r.error && (r.status ?? 500) >= 500)
        if (!bad) break
        failure = clusterError({ meta: { statusCode: bad.status ?? 500, body: { error: bad.error } } }, 'search')
      } catch (e) {
        if ((e as ColbertError).code !== 'CLUSTER_UNAVAILABLE') throw e
        failure = e
      }
      if (attempt >= this.#options.maxRetries) throw failure
      await new Promise((r) => setTimeout(r, 200 * 2 ** attempt))
      if (signal?.aborted) throw abortError(signal)
    }
    const t2 = performance.now()
    // Every query's candidates are scored in parallel (each a task on the search pool).
    const out: SearchHit[][] = await Promise.all(
      probes.map(async (_, qi) => {
        const r = res!.body.responses[qi]
        if (r.error) throw clusterError({ meta: { statusCode: r.status ?? 500, body: { error: r.error } } }, 'search')
        let hits = r.hits?.hits ?? []
        if (filter?.recheck) {
          const keep = native.metadataMatches(
            filter.json,
            hits.map((h) => (h._source.metadata === undefined ? '' : JSON.stringify(h._source.metadata))),
          )
          hits = hits.filter((_, i) => keep[i])
        }
        const query = queries.data.subarray(queries.offsets[qi] * queries.dim, queries.offsets[qi + 1] * queries.dim)
        let scores: Float32Array
        try {
          scores = await cb.score(query, hits.map((h) => fromBase64(h._source.colbert_codes as string)))
        } catch (e) {
          throw fromNative(e)
        }
        const order = hits.map((_, i) => i).sort((a, b) => scores[b] - scores[a] || (hits[a]._id < hits[b]._id ? -1 : 1))
        return order.slice(0, k).map((i) => {
          const hit: SearchHit = { id: hits[i]._id, score: scores[i] }
          if (withDocuments) {
            const src = hits[i]._source
            if (src.text !== undefined) hit.text = src.text as string
            if (src.metadata !== undefined) hit.metadata = src.metadata as Record<string, unknown>
          }
          return hit
        })
      }),
    )
    this[SEARCH_TIMING] = { probeMs: t1 - t0, clusterMs: t2 - t1, scoreMs: performance.now() - t2 }
    return out
  }

  /** The stored text and metadata of each id, in order; `null` for ids that are not in the index. */
  async documents(ids: readonly string[]): Promise<(StoredDocument | null)[]> {
    this.#check()
    const checked = clusterIds(lookupIds(ids, 'ids'), 'ids')
    if (checked.length === 0) return []
    const res = await this.#request<{ docs: { found?: boolean; _source?: { text?: string; metadata?: Record<string, unknown> } }[] }>('documents', {
      method: 'POST',
      path: `/${this.name}/_mget`,
      querystring: { _source_includes: 'text,metadata', realtime: 'true' },
      body: { ids: checked },
    })
    return res.body.docs.map((d) => {
      if (!d.found) return null
      const out: StoredDocument = {}
      if (d._source?.text !== undefined) out.text = d._source.text
      if (d._source?.metadata !== undefined) out.metadata = d._source.metadata
      return out
    })
  }

  /** Ids of the documents whose metadata matches `filter`, in id order (the cluster keeps no insertion order). */
  async select(filter: MetadataFilter): Promise<string[]> {
    this.#check()
    const checked = clusterFilter(filter)
    if (!checked) throw invalidArgument('select needs a filter')
    const { json, query, recheck } = checked
    const ids: string[] = []
    let after: unknown[] | undefined
    for (;;) {
      const res = await this.#request<{ hits: { hits: { _id: string; sort: unknown[]; _source?: { metadata?: unknown } }[] } }>('select', {
        method: 'POST',
        path: `/${this.name}/_search`,
        body: { size: 1000, query: { bool: { filter: [query] } }, sort: [{ colbert_id: 'asc' }], _source: recheck ? ['metadata'] : false, track_total_hits: false, ...(after ? { search_after: after } : {}) },
      })
      const hits = res.body.hits.hits
      if (hits.length === 0) break
      const keep = recheck ? native.metadataMatches(json, hits.map((h) => (h._source?.metadata === undefined ? '' : JSON.stringify(h._source.metadata)))) : undefined
      hits.forEach((h, i) => {
        if (!keep || keep[i]) ids.push(h._id)
      })
      after = hits[hits.length - 1].sort
    }
    return ids
  }

  /** Closes this handle (the client stays open: it is the caller's); later calls fail with `CLOSED`. */
  async close(): Promise<void> {
    await this.#writes
    this.#closed = true
  }

  /** Deletes the index and its codebook record from the cluster, then closes the handle. */
  async drop(): Promise<void> {
    this.#check()
    await this.#writes
    await this.#request('drop', { method: 'DELETE', path: `/${this.name},${codebookIndexOf(this.name)}`, querystring: { ignore_unavailable: true } })
    this.#closed = true
  }

  /** `close()`, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}

function alreadyExists(e: unknown, name: string): ColbertError {
  const err = e as ColbertError & { cause?: { meta?: { body?: { error?: { type?: string } } } } }
  if (err.cause?.meta?.body?.error?.type === 'resource_already_exists_exception') {
    return new ColbertError('INDEX_EXISTS', `an index named ${JSON.stringify(name)} (or its codebook record) already exists on this cluster: open it, or pass overwrite: true to replace it`)
  }
  return err instanceof ColbertError ? err : clusterError(e, 'create')
}
