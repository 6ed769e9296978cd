// Retrieval through a PLAID index, as `pylate.retrieve.ColBERT`.
import { invalidArgument } from './errors'
import type { Embeddings } from './embeddings'
import { PlaidIndex, type SearchHit, type SearchOptions } from './plaid_index'

/** Options of `Retriever.retrieve`: the index's search options (`k` defaults to 10). */
export type RetrieveOptions = SearchOptions

/**
 * Retrieves the best documents of a PLAID index for query embeddings, like PyLate's
 * `retrieve.ColBERT(index)`: `retrieve(queriesEmbeddings, { k, subset })` returns, per query,
 * `{ id, score }` best first. Also takes the index's `filter`, `withDocuments` and search knobs.
 */
export class Retriever {
  /** The index searched. */
  readonly index: PlaidIndex

  /** Wraps an open index; anything else is `INVALID_ARGUMENT`. */
  constructor(index: PlaidIndex) {
    if (!(index instanceof PlaidIndex)) throw invalidArgument('Retriever needs a PlaidIndex (PlaidIndex.open(dir))')
    this.index = index
  }

  /** Searches the index (`index.search`): per query, its hits best first, `k` of them (default 10) at most. */
  retrieve(queriesEmbeddings: Embeddings, options: RetrieveOptions = {}): Promise<SearchHit[][]> {
    return this.index.search(queriesEmbeddings, options)
  }
}
