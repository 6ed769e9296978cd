// Encoding and upserting framework documents (LangChain Documents, LlamaIndex nodes) in batches,
// shared by the adapters.
import { checkSignal, positiveInt } from '../arguments'
import { invalidArgument } from '../errors'
import { ColBERT } from '../model'
import { PlaidIndex, type AddOptions, type AddResult, type DocumentBatch } from '../plaid_index'

/** Options shared by the adapters' upsert helpers. */
export interface UpsertOptions extends Pick<AddOptions, 'poolFactor' | 'signal' | 'onProgress'> {
  /** The ids, one per document (default: each document's own id). */
  ids?: readonly string[]
  /** Documents encoded and pushed to the index at a time (default 256): memory stays bounded by one batch. */
  batchSize?: number
}

/** One document to upsert: its id (if it has one), its text and its metadata. @internal */
export interface UpsertItem {
  id: unknown
  text: string
  metadata?: Record<string, unknown>
}

/**
 * Encodes `items` (`isQuery: false`) batch by batch and upserts them with their texts and
 * metadata in one transaction (`add(batches, { replace: true })`). @internal
 */
export async function upsert(index: PlaidIndex, model: ColBERT, items: readonly UpsertItem[], options: UpsertOptions, what: string): Promise<AddResult> {
  if (!(index instanceof PlaidIndex)) throw invalidArgument(`${what} needs a PlaidIndex`)
  if (!(model instanceof ColBERT)) throw invalidArgument(`${what} needs a model (ColBERT.fromPretrained(…))`)
  const signal = checkSignal(options.signal)
  const batchSize = positiveInt(options.batchSize, 'batchSize') ?? 256
  if (options.ids !== undefined && (!Array.isArray(options.ids) || options.ids.length !== items.length)) {
    throw invalidArgument(`ids must be an array with one id per document (${items.length} documents)`)
  }
  const ids = items.map((item, i) => {
    const id = options.ids?.[i] ?? item.id
    if (typeof id !== 'string' || id.length === 0) throw invalidArgument(`documents[${i}] has no id: give the document an id or pass options.ids`)
    return id
  })
  async function* batches(): AsyncGenerator<DocumentBatch> {
    for (let start = 0; start < items.length; start += batchSize) {
      const slice = items.slice(start, start + batchSize)
      yield {
        ids: ids.slice(start, start + batchSize),
        embeddings: await model.encode(
          slice.map((d) => d.text),
          { isQuery: false, signal },
        ),
        documents: slice.map((d) => ({ text: d.text, metadata: d.metadata })),
      }
    }
  }
  return index.add(batches(), { replace: true, poolFactor: options.poolFactor, signal, onProgress: options.onProgress })
}
