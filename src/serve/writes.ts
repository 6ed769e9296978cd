// Write coalescing for the server: concurrent upserts and deletes to one index are gathered for a
// short, bounded delay and committed as few transactions; each request is answered only after the
// transaction holding its change committed (or failed). Runs of upserts become one `add(…,
// { replace: true })` (the last request wins for an id sent twice); runs of deletes one `delete`.
// Order between upserts and deletes is kept. Readers see each transaction whole or not at all.

import { ColbertError } from '../errors'
import type { Embeddings } from '../embeddings'
import type { PlaidIndex, StoredDocument } from '../plaid_index'

interface Upsert {
  kind: 'upsert'
  ids: string[]
  embeddings: Embeddings
  documents: StoredDocument[]
}

interface Delete {
  kind: 'delete'
  ids: string[]
}

type Op = (Upsert | Delete) & { resolve: (generation: number) => void; reject: (e: unknown) => void }

export class WriteQueue {
  readonly #index: () => Promise<PlaidIndex>
  readonly #delayMs: number
  readonly #maxQueued: number
  #ops: Op[] = []
  #timer: NodeJS.Timeout | undefined
  #flushing: Promise<void> | undefined

  /** `index` opens (or creates) the index on first use. */
  constructor(index: () => Promise<PlaidIndex>, delayMs: number, maxQueued: number) {
    this.#index = index
    this.#delayMs = delayMs
    this.#maxQueued = maxQueued
  }

  /** Requests waiting for their transaction. */
  get pending(): number {
    return this.#ops.length
  }

  /** Upserts documents; resolves with the generation that holds them. */
  upsert(ids: string[], embeddings: Embeddings, documents: StoredDocument[]): Promise<number> {
    return this.#push({ kind: 'upsert', ids, embeddings, documents })
  }

  /** Deletes documents; resolves with the generation after the deletion. */
  delete(ids: string[]): Promise<number> {
    return this.#push({ kind: 'delete', ids })
  }

  #push(op: Upsert | Delete): Promise<number> {
    if (this.#ops.length >= this.#maxQueued) {
      return Promise.reject(new ColbertError('BUSY', `the index has ${this.#ops.length} writes waiting (maxQueued ${this.#maxQueued}); retry later`))
    }
    return new Promise<number>((resolve, reject) => {
      this.#ops.push({ ...op, resolve, reject })
      this.#timer ??= setTimeout(() => {
        this.#timer = undefined
        void this.#flush()
      }, this.#delayMs)
    })
  }

  /** Commits everything waiting now (and waits for a flush in progress). */
  async drain(): Promise<void> {
    clearTimeout(this.#timer)
    this.#timer = undefined
    while (this.#flushing || this.#ops.length > 0) {
      if (this.#flushing) await this.#flushing
      else await this.#flush()
    }
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #flush(): Promise<void> {
    if (this.#flushing) return this.#flushing
    this.#flushing = this.#commitAll().finally(() => {
      this.#flushing = undefined
      // Requests that came during the commit get their own, after the same delay.
      if (this.#ops.length > 0) {
        this.#timer ??= setTimeout(() => {
          this.#timer = undefined
          void this.#flush()
        }, this.#delayMs)
      }
    })
    return this.#flushing
  }

  async #commitAll(): Promise<void> {
    const ops = this.#ops
    this.#ops = []
    if (ops.length === 0) return
    let index: PlaidIndex
    try {
      index = await this.#index()
    } catch (e) {
      for (const op of ops) op.reject(e)
      return
    }
    // Consecutive operations of one kind form one transaction.
    for (let start = 0; start < ops.length; ) {
      let end = start + 1
      while (end < ops.length && ops[end].kind === ops[start].kind) end++
      const run = ops.slice(start, end)
      start = end
      try {
        const generation = run[0].kind === 'upsert' ? await commitUpserts(index, run as (Upsert & Op)[]) : await commitDeletes(index, run as (Delete & Op)[])
        for (const op of run) op.resolve(generation)
      } catch (e) {
        for (const op of run) op.reject(e)
      }
    }
  }
}

async function commitUpserts(index: PlaidIndex, run: Upsert[]): Promise<number> {
  // The last request wins for an id sent more than once.
  const last = new Map<string, { e: Embeddings; i: number; doc: StoredDocument }>()
  for (const op of run) op.ids.forEach((id, i) => last.set(id, { e: op.embeddings, i, doc: op.documents[i] }))
  const ids = [...last.keys()]
  const dim = run[0].embeddings.dim
  const offsets = new Uint32Array(ids.length + 1)
  let rows = 0
  ids.forEach((id, k) => {
    const { e, i } = last.get(id)!
    rows += e.offsets[i + 1] - e.offsets[i]
    offsets[k + 1] = rows
  })
  const data = new Float32Array(rows * dim)
  ids.forEach((id, k) => {
    const { e, i } = last.get(id)!
    data.set(e.data.subarray(e.offsets[i] * dim, e.offsets[i + 1] * dim), offsets[k] * dim)
  })
  const result = await index.add(ids, { dim, offsets, data }, { replace: true, documents: ids.map((id) => last.get(id)!.doc) })
  return result.generation
}

async function commitDeletes(index: PlaidIndex, run: Delete[]): Promise<number> {
  await index.delete([...new Set(run.flatMap((op) => op.ids))])
  return index.info.generation
}
