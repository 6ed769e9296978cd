/**
 * `colbert/llamaindex`: LlamaIndex.TS adapters. A retriever over a PlaidIndex with stored
 * documents (`BaseRetriever`, returning `NodeWithScore`s), a node postprocessor that reranks
 * (`BaseNodePostprocessor`) and a helper that encodes and upserts nodes. `@llamaindex/core` is an
 * optional peer dependency: without it this module throws `DEPENDENCY_MISSING` when imported;
 * `colbert` itself never loads it. LlamaIndex's vector stores assume one vector per node, so there
 * is deliberately no vector store here.
 *
 * @module colbert/llamaindex
 */
import './llamaindex_peer'

import type { MessageContent } from '@llamaindex/core/llms'
import type { BaseNodePostprocessor } from '@llamaindex/core/postprocessor'
import type { QueryBundle } from '@llamaindex/core/query-engine'
import { BaseRetriever } from '@llamaindex/core/retriever'
import { MetadataMode, TextNode, type BaseNode, type NodeWithScore } from '@llamaindex/core/schema'
import { extractText } from '@llamaindex/core/utils'

import { checkKeys, checkSignal, optionKeys, positiveInt } from '../arguments'
import { invalidArgument } from '../errors'
import { ColBERT } from '../model'
import { PlaidIndex, type AddResult, type MetadataFilter, type SearchOptions } from '../plaid_index'
import { rerank } from '../rank'
import { upsert, type UpsertOptions } from './upsert'

export type { UpsertOptions } from './upsert'

/** Search knobs a {@link ColbertRetriever} passes to `PlaidIndex.search` as they are. */
export type ColbertSearchKnobs = Pick<SearchOptions, 'nProbe' | 'centroidScoreThreshold' | 'candidates' | 'exactCandidates' | 'subset'>

/** Options of {@link ColbertRetriever}. */
export interface ColbertRetrieverOptions {
  /** Encodes the query (`isQuery: true`); the model the index was built with. */
  model: ColBERT
  /** The index searched; its documents must be stored with text (`add(…, { documents })` or {@link addNodes}). */
  index: PlaidIndex
  /** Nodes returned per query (default 2, as LlamaIndex's `similarityTopK`). */
  similarityTopK?: number
  /** Only documents whose stored metadata matches (see `MetadataFilter`). */
  filter?: MetadataFilter
  /** Other search options, passed to `PlaidIndex.search` as they are. */
  searchOptions?: ColbertSearchKnobs
  /**
   * Aborts every retrieval of this retriever (LlamaIndex's `retrieve` takes no signal): e.g. the
   * signal of a request or of shutdown. Use a new retriever per request for per-call signals.
   */
  signal?: AbortSignal
}

const RETRIEVER_KEYS = optionKeys<ColbertRetrieverOptions>()('model', 'index', 'similarityTopK', 'filter', 'searchOptions', 'signal')
const KNOB_KEYS = optionKeys<ColbertSearchKnobs>()('nProbe', 'centroidScoreThreshold', 'candidates', 'exactCandidates', 'subset')

/**
 * A LlamaIndex retriever over a {@link PlaidIndex} that stores its documents' texts: the query
 * text is encoded with `model.encode([query], { isQuery: true })` and searched with
 * `index.search(…, { k: similarityTopK, filter, withDocuments: true, …searchOptions })`; each
 * hit becomes a `NodeWithScore` whose node is a `TextNode` (`id_` the document id, `text` the
 * stored text, `metadata` the stored metadata) and whose `score` is the MaxSim score, best first.
 * `retrieve` dispatches LlamaIndex's `retrieve-start` / `retrieve-end` events as every retriever.
 *
 * ```ts
 * const retriever = new ColbertRetriever({ model, index, similarityTopK: 3 })
 * const nodes = await retriever.retrieve({ query: 'how does PLAID prune candidates?' })
 * ```
 */
export class ColbertRetriever extends BaseRetriever {
  /** The model queries are encoded with. */
  readonly model: ColBERT
  /** The index searched. */
  readonly index: PlaidIndex
  /** Nodes returned per query. */
  similarityTopK: number
  /** The metadata filter applied to every search, if any. */
  filter?: MetadataFilter
  /** The other search options. */
  searchOptions: ColbertSearchKnobs
  /** Aborts every retrieval, if given. */
  signal?: AbortSignal

  constructor(options: ColbertRetrieverOptions) {
    super()
    if (options === null || typeof options !== 'object') throw invalidArgument('ColbertRetriever takes { model, index, similarityTopK?, filter?, … }')
    checkKeys(options, RETRIEVER_KEYS, 'ColbertRetriever option')
    if (!(options.model instanceof ColBERT)) throw invalidArgument('ColbertRetriever needs a model (ColBERT.fromPretrained(…))')
    if (!(options.index instanceof PlaidIndex)) throw invalidArgument('ColbertRetriever needs an index (PlaidIndex.open(dir))')
    this.model = options.model
    this.index = options.index
    this.similarityTopK = positiveInt(options.similarityTopK, 'similarityTopK') ?? 2
    this.filter = options.filter
    if (options.searchOptions !== undefined) checkKeys(options.searchOptions, KNOB_KEYS, 'searchOptions key')
    this.searchOptions = { ...options.searchOptions }
    this.signal = checkSignal(options.signal)
  }

  /** Encodes the query, searches the index and maps the hits to `NodeWithScore`s, best first. */
  async _retrieve(params: QueryBundle): Promise<NodeWithScore[]> {
    const query = queryText(params?.query)
    const queries = await this.model.encode([query], { isQuery: true, signal: this.signal })
    const [hits] = await this.index.search(queries, {
      ...this.searchOptions,
      k: this.similarityTopK,
      filter: this.filter,
      withDocuments: true,
      signal: this.signal,
    })
    return hits.map((hit) => ({ node: new TextNode({ id_: hit.id, text: hit.text ?? '', metadata: hit.metadata ?? {} }), score: hit.score }))
  }
}

function queryText(query: MessageContent | undefined): string {
  if (query === undefined || query === null) throw invalidArgument('the query is missing')
  const text = extractText(query)
  if (typeof text !== 'string') throw invalidArgument('the query must be text')
  return text
}

/** Options of {@link ColbertReranker}. */
export interface ColbertRerankerOptions {
  /** Encodes the query and the candidates. */
  model: ColBERT
  /** Keep the best `topN` nodes (default: all of them, reordered). */
  topN?: number
  /** Candidates per inference batch (the model's `encode` default when unset). */
  batchSize?: number
  /** Aborts every rerank of this postprocessor (LlamaIndex's `postprocessNodes` takes no signal). */
  signal?: AbortSignal
}

const RERANKER_KEYS = optionKeys<ColbertRerankerOptions>()('model', 'topN', 'batchSize', 'signal')

/**
 * A LlamaIndex node postprocessor that reranks candidate nodes (from any retriever) by exact
 * ColBERT MaxSim: the query and each node's content (`getContent(MetadataMode.NONE)`) are
 * encoded and scored with {@link rerank} (PyLate's `rank.rerank`); it returns the best `topN`,
 * best first, with the MaxSim score as `score` (the nodes themselves are not copied or changed).
 * Use it in a query engine's `nodePostprocessors`, or call `postprocessNodes` directly.
 */
export class ColbertReranker implements BaseNodePostprocessor {
  /** The model queries and candidates are encoded with. */
  readonly model: ColBERT
  /** How many nodes are kept (all when undefined). */
  topN?: number
  /** Candidates per inference batch. */
  batchSize?: number
  /** Aborts every rerank, if given. */
  signal?: AbortSignal

  constructor(options: ColbertRerankerOptions) {
    if (options === null || typeof options !== 'object') throw invalidArgument('ColbertReranker takes { model, topN?, batchSize?, signal? }')
    checkKeys(options, RERANKER_KEYS, 'ColbertReranker option')
    if (!(options.model instanceof ColBERT)) throw invalidArgument('ColbertReranker needs a model (ColBERT.fromPretrained(…))')
    this.model = options.model
    this.topN = positiveInt(options.topN, 'topN')
    this.batchSize = positiveInt(options.batchSize, 'batchSize')
    this.signal = checkSignal(options.signal)
  }

  /** Reorders `nodes` by MaxSim against `query` (required), best first, keeping the best `topN`. */
  async postprocessNodes(nodes: NodeWithScore[], query?: MessageContent): Promise<NodeWithScore[]> {
    if (!Array.isArray(nodes)) throw invalidArgument('nodes must be an array of NodeWithScore')
    const text = queryText(query)
    const texts = nodes.map((n, i) => {
      if (n === null || typeof n !== 'object' || typeof n.node?.getContent !== 'function') throw invalidArgument(`nodes[${i}] must be a NodeWithScore ({ node, score? })`)
      return n.node.getContent(MetadataMode.NONE)
    })
    if (texts.length === 0) return []
    const queries = await this.model.encode([text], { isQuery: true, signal: this.signal })
    const candidates = await this.model.encode(texts, { isQuery: false, batchSize: this.batchSize, signal: this.signal })
    const [ranked] = rerank({ documentsIds: [texts.map((_, i) => String(i))], queriesEmbeddings: queries, documentsEmbeddings: [candidates] })
    return ranked.slice(0, this.topN).map(({ id, score }) => ({ node: nodes[Number(id)].node, score }))
  }
}

/** Options of {@link addNodes}. */
export interface AddNodesOptions extends UpsertOptions {}

const ADD_NODES_KEYS = optionKeys<AddNodesOptions>()('ids', 'batchSize', 'poolFactor', 'signal', 'onProgress')

/**
 * Encodes LlamaIndex nodes (their content without metadata, `getContent(MetadataMode.NONE)`,
 * `isQuery: false`) and upserts them into `index` in one transaction, storing that content as the
 * text and `node.metadata` as the metadata, so a {@link ColbertRetriever} returns them. Ids come
 * from `options.ids` or each node's `id_`; a document already in the index under the same id is
 * replaced. Metadata must be plain JSON (`INVALID_ARGUMENT` otherwise).
 */
export async function addNodes(index: PlaidIndex, model: ColBERT, nodes: readonly BaseNode[], options: AddNodesOptions = {}): Promise<AddResult> {
  if (!Array.isArray(nodes)) throw invalidArgument('nodes must be an array of LlamaIndex nodes')
  if (options === null || typeof options !== 'object') throw invalidArgument('options must be an object')
  checkKeys(options, ADD_NODES_KEYS, 'addNodes option')
  const items = nodes.map((n, i) => {
    if (n === null || typeof n !== 'object' || typeof n.getContent !== 'function') throw invalidArgument(`nodes[${i}] must be a LlamaIndex node (a TextNode, a Document)`)
    return { id: n.id_, text: n.getContent(MetadataMode.NONE), metadata: n.metadata }
  })
  return upsert(index, model, items, options, 'addNodes')
}
