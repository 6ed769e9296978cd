/**
 * `colbert/langchain`: LangChain.js adapters. A retriever over a PlaidIndex with stored documents
 * (`BaseRetriever`), a reranking document compressor (`BaseDocumentCompressor`, for
 * `ContextualCompressionRetriever`) and a helper that encodes and upserts LangChain documents.
 * `@langchain/core` is an optional peer dependency: without it this module throws
 * `DEPENDENCY_MISSING` when imported; `colbert` itself never loads it. LangChain's `VectorStore`
 * assumes one vector per document, so there is deliberately no VectorStore here.
 *
 * @module colbert/langchain
 */
import './langchain_peer'

import { AsyncLocalStorage } from 'node:async_hooks'

import type { Callbacks, CallbackManagerForRetrieverRun } from '@langchain/core/callbacks/manager'
import { Document, type DocumentInterface } from '@langchain/core/documents'
import { BaseRetriever, type BaseRetrieverInput } from '@langchain/core/retrievers'
import { BaseDocumentCompressor } from '@langchain/core/retrievers/document_compressors'
import { ensureConfig, type RunnableConfig } from '@langchain/core/runnables'
import { AsyncLocalStorageProviderSingleton } from '@langchain/core/singletons'

import { checkKeys, checkSignal, optionKeys, positiveInt } from '../arguments'
import { invalidArgument } from '../errors'
import { ColBERT } from '../model'
import { PlaidIndex, type AddResult, type MetadataFilter, type SearchOptions } from '../plaid_index'
import { rerank } from '../rank'
import { upsert, type UpsertOptions } from './upsert'

export type { UpsertOptions } from './upsert'

/** Search knobs a {@link ColbertRetriever} passes to `PlaidIndex.search` as they are. */
export type ColbertSearchKnobs = Pick<SearchOptions, 'nProbe' | 'centroidScoreThreshold' | 'candidates' | 'exactCandidates' | 'subset'>

/** Fields of {@link ColbertRetriever}: LangChain's retriever fields plus the model, the index and search options. */
export interface ColbertRetrieverInput extends BaseRetrieverInput {
  /** Encodes the query (`isQuery: true`); the model the index was built with. */
  model: ColBERT
  /** The index searched; its documents must be stored with text (`add(…, { documents })` or {@link addDocuments}). */
  index: PlaidIndex
  /** Documents returned per query (default 4, as LangChain's retrievers). */
  k?: number
  /** Only documents whose stored metadata matches (see `MetadataFilter`). */
  filter?: MetadataFilter
  /** The metadata key that receives the MaxSim score (default `'score'`). */
  scoreKey?: string
  /** Other search options, passed to `PlaidIndex.search` as they are. */
  searchOptions?: ColbertSearchKnobs
}

const KNOB_KEYS = optionKeys<ColbertSearchKnobs>()('nProbe', 'centroidScoreThreshold', 'candidates', 'exactCandidates', 'subset')

/** The signal of the `invoke` call running in this async context (LangChain does not hand it to `_getRelevantDocuments`). */
const invokeSignal = new AsyncLocalStorage<AbortSignal | undefined>()

// LangChain keeps the running config (and its signal) in an AsyncLocalStorage that its Node
// entry points (`@langchain/core/context`, `…/callbacks/dispatch`, LangGraph) install; install
// it here too (a no-op when one is installed), so a signal reaches the adapters from any
// enclosing runnable.
AsyncLocalStorageProviderSingleton.initializeGlobalInstance(new AsyncLocalStorage())

/** The signal of the enclosing runnable (a `RunnableSequence`, a `RunnableLambda`…), if any. */
function implicitSignal(): AbortSignal | undefined {
  const signal: unknown = AsyncLocalStorageProviderSingleton.getRunnableConfig()?.signal
  return signal instanceof AbortSignal ? signal : undefined
}

function checkScoreKey(key: unknown): string {
  if (key === undefined) return 'score'
  if (typeof key !== 'string' || key.length === 0) throw invalidArgument('scoreKey must be a non-empty string')
  return key
}

/**
 * A LangChain retriever over a {@link PlaidIndex} that stores its documents' texts: the query is
 * encoded with `model.encode([query], { isQuery: true })` and searched with
 * `index.search(…, { k, filter, withDocuments: true, …searchOptions })`; each hit becomes a
 * `Document` with the stored text as `pageContent`, the stored metadata plus the score (under
 * `scoreKey`) as `metadata`, and the document id as `id`, best first.
 *
 * Use it as any retriever: `await retriever.invoke('question')`, or as a step of a
 * `RunnableSequence`. LangChain's callbacks (`handleRetrieverStart`/`End`/`Error`) fire as for
 * every `BaseRetriever`; the call's `signal` (or `timeout`), given to `invoke` or inherited from
 * an enclosing runnable, aborts the encode and the search (`ColbertError` `ABORTED`).
 *
 * ```ts
 * const retriever = new ColbertRetriever({ model, index, k: 3, filter: { lang: 'en' } })
 * const docs = await retriever.invoke('how does PLAID prune candidates?')
 * ```
 */
export class ColbertRetriever extends BaseRetriever {
  /** LangChain's serialisation namespace. */
  lc_namespace = ['colbert', 'retrievers']

  /** LangChain's class name for serialisation and tracing. */
  static lc_name(): string {
    return 'ColbertRetriever'
  }

  /** The model queries are encoded with. */
  readonly model: ColBERT
  /** The index searched. */
  readonly index: PlaidIndex
  /** Documents returned per query. */
  k: number
  /** The metadata filter applied to every search, if any. */
  filter?: MetadataFilter
  /** The metadata key of the score. */
  readonly scoreKey: string
  /** The other search options. */
  searchOptions: ColbertSearchKnobs

  constructor(fields: ColbertRetrieverInput) {
    if (fields === null || typeof fields !== 'object') throw invalidArgument('ColbertRetriever takes { model, index, k?, filter?, … }')
    const { model, index, k, filter, scoreKey, searchOptions, ...base } = fields
    super(base)
    if (!(model instanceof ColBERT)) throw invalidArgument('ColbertRetriever needs a model (ColBERT.fromPretrained(…))')
    if (!(index instanceof PlaidIndex)) throw invalidArgument('ColbertRetriever needs an index (PlaidIndex.open(dir))')
    this.model = model
    this.index = index
    this.k = positiveInt(k, 'k') ?? 4
    this.filter = filter
    this.scoreKey = checkScoreKey(scoreKey)
    if (searchOptions !== undefined) checkKeys(searchOptions, KNOB_KEYS, 'searchOptions key')
    this.searchOptions = { ...searchOptions }
  }

  /** Runs the retriever (LangChain's `BaseRetriever.invoke`), making the call's `signal` and `timeout` reach the search. */
  override async invoke(input: string, options?: RunnableConfig): Promise<DocumentInterface[]> {
    const signal = ensureConfig(options).signal
    return invokeSignal.run(signal, () => super.invoke(input, options))
  }

  /** Encodes `query`, searches the index and maps the hits to `Document`s, best first. */
  async _getRelevantDocuments(query: string, _runManager?: CallbackManagerForRetrieverRun): Promise<DocumentInterface[]> {
    if (typeof query !== 'string') throw invalidArgument('the query must be a string')
    const signal = checkSignal(invokeSignal.getStore() ?? implicitSignal())
    const queries = await this.model.encode([query], { isQuery: true, signal })
    const [hits] = await this.index.search(queries, {
      ...this.searchOptions,
      k: this.k,
      filter: this.filter,
      withDocuments: true,
      signal,
    })
    return hits.map(
      (hit) =>
        new Document({
          pageContent: hit.text ?? '',
          metadata: { ...hit.metadata, [this.scoreKey]: hit.score },
          id: hit.id,
        }),
    )
  }
}

/** Fields of {@link ColbertReranker}. */
export interface ColbertRerankerInput {
  /** Encodes the query and the candidates. */
  model: ColBERT
  /** Keep the best `topN` documents (default: all of them, reordered). */
  topN?: number
  /** The metadata key that receives the MaxSim score (default `'relevanceScore'`, as LangChain's rerankers). */
  scoreKey?: string
  /** Candidates per inference batch (the model's `encode` default when unset). */
  batchSize?: number
}

const RERANKER_KEYS = optionKeys<ColbertRerankerInput>()('model', 'topN', 'scoreKey', 'batchSize')

/**
 * A LangChain document compressor that reranks candidates (from any retriever: a keyword
 * engine, a vector store, a {@link ColbertRetriever}) by exact ColBERT MaxSim: the query and the
 * documents' `pageContent` are encoded, scored with {@link rerank} (PyLate's `rank.rerank`) and
 * returned best first — the best `topN` — each a copy with the score in `metadata[scoreKey]`.
 * Use it as `baseCompressor` of LangChain's `ContextualCompressionRetriever`, or call
 * `compressDocuments` directly. The signal of an enclosing runnable aborts the encoding.
 */
export class ColbertReranker extends BaseDocumentCompressor {
  /** The model queries and candidates are encoded with. */
  readonly model: ColBERT
  /** How many documents are kept (all when undefined). */
  topN?: number
  /** The metadata key of the score. */
  readonly scoreKey: string
  /** Candidates per inference batch. */
  batchSize?: number

  constructor(fields: ColbertRerankerInput) {
    super()
    if (fields === null || typeof fields !== 'object') throw invalidArgument('ColbertReranker takes { model, topN?, scoreKey?, batchSize? }')
    checkKeys(fields, RERANKER_KEYS, 'ColbertReranker field')
    if (!(fields.model instanceof ColBERT)) throw invalidArgument('ColbertReranker needs a model (ColBERT.fromPretrained(…))')
    this.model = fields.model
    this.topN = positiveInt(fields.topN, 'topN')
    this.scoreKey = fields.scoreKey === undefined ? 'relevanceScore' : checkScoreKey(fields.scoreKey)
    this.batchSize = positiveInt(fields.batchSize, 'batchSize')
  }

  /** Reorders `documents` by MaxSim against `query`, best first, keeping the best `topN`. */
  async compressDocuments(documents: DocumentInterface[], query: string, _callbacks?: Callbacks): Promise<DocumentInterface[]> {
    if (!Array.isArray(documents)) throw invalidArgument('documents must be an array of LangChain documents')
    if (typeof query !== 'string') throw invalidArgument('the query must be a string')
    const texts = documents.map((d, i) => {
      if (d === null || typeof d !== 'object' || typeof d.pageContent !== 'string') throw invalidArgument(`documents[${i}] must have a string pageContent`)
      return d.pageContent
    })
    if (texts.length === 0) return []
    const signal = implicitSignal()
    const queries = await this.model.encode([query], { isQuery: true, signal })
    const candidates = await this.model.encode(texts, { isQuery: false, batchSize: this.batchSize, signal })
    const [ranked] = rerank({ documentsIds: [texts.map((_, i) => String(i))], queriesEmbeddings: queries, documentsEmbeddings: [candidates] })
    return ranked.slice(0, this.topN).map(({ id, score }) => {
      const d = documents[Number(id)]
      return new Document({ pageContent: d.pageContent, metadata: { ...d.metadata, [this.scoreKey]: score }, id: d.id })
    })
  }
}

/** Options of {@link addDocuments}. */
export interface AddDocumentsOptions extends UpsertOptions {}

const ADD_DOCUMENTS_KEYS = optionKeys<AddDocumentsOptions>()('ids', 'batchSize', 'poolFactor', 'signal', 'onProgress')

/**
 * Encodes LangChain documents (`pageContent`, `isQuery: false`) and upserts them into `index`
 * in one transaction, storing each `pageContent` as the text and `metadata` as the metadata, so
 * a {@link ColbertRetriever} returns them. Ids come from `options.ids` or each `document.id`;
 * a document already in the index under the same id is replaced (`add(…, { replace: true })`).
 * Metadata must be plain JSON (`INVALID_ARGUMENT` otherwise).
 */
export async function addDocuments(
  index: PlaidIndex,
  model: ColBERT,
  documents: readonly DocumentInterface[],
  options: AddDocumentsOptions = {},
): Promise<AddResult> {
  if (!Array.isArray(documents)) throw invalidArgument('documents must be an array of LangChain documents')
  if (options === null || typeof options !== 'object') throw invalidArgument('options must be an object')
  checkKeys(options, ADD_DOCUMENTS_KEYS, 'addDocuments option')
  const items = documents.map((d, i) => {
    if (d === null || typeof d !== 'object' || typeof d.pageContent !== 'string') throw invalidArgument(`documents[${i}] must have a string pageContent`)
    return { id: d.id, text: d.pageContent, metadata: d.metadata }
  })
  return upsert(index, model, items, options, 'addDocuments')
}
