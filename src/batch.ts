// Micro-batching across callers and backpressure for `ColBERT.encode`.
//
// A service calls `encode([query])` once per request; run one by one, 64 concurrent requests are
// 64 tiny inferences. The batcher lets small calls share inference batches: a call that arrives
// while the model is busy waits (at most `maxWaitMs` once a slot is free) and leaves with the
// calls that arrived meanwhile, up to `maxBatchSize` texts; when idle, a call leaves at once, so
// batching adds no latency to a lone caller. Each caller gets exactly its own rows, in its order.
// A caller that aborts is answered at once; its texts are dropped if its batch has not left, and
// its rows are discarded if it has (the other callers of that batch are not disturbed).
//
// `maxQueued` bounds the calls pending on a model (waiting or running, batched or not): beyond
// it a call fails at once with `BUSY`, so overload is a quick refusal, not a growing queue.

import { abortError, ColbertError, fromNative } from './errors'
import type { Embeddings } from './embeddings'
import { native, type Native } from './native'

/** Micro-batching and backpressure of one model (`ColBERT.fromPretrained(…, { batching })`). */
export interface BatchingOptions {
  /**
   * Most texts a shared batch holds (default 64; 1 for a model that runs each text in an inference
   * of its own, such as our dynamically quantised int8 export, where sharing saves nothing). A call
   * with this many texts or more runs alone.
   */
  maxBatchSize?: number
  /**
   * How long a shared batch may wait for more calls while another batch of its kind runs, in
   * milliseconds (default 0: it leaves as soon as a lane is free; calls that arrive while every
   * lane is busy still share the next batch). An idle model never waits. Raise it to trade latency
   * for larger batches.
   */
  maxWaitMs?: number
  /** Most encode calls pending on this model, batched or not; beyond it a call fails at once with `BUSY` (default: no bound). */
  maxQueued?: number
  /** Called with the number of texts of each shared batch as it leaves (for metrics). */
  onBatch?: (texts: number) => void
}

/** What the batcher runs: one native encode call. */
export type EncodeRun = (texts: string[], isQuery: boolean, batchSize: number, token: Native.CancelToken) => Promise<Native.NativeEmbeddings>

interface Waiter {
  texts: readonly string[]
  isQuery: boolean
  resolve: (e: Embeddings) => void
  reject: (e: unknown) => void
  signal?: AbortSignal
  onAbort?: () => void
  settled: boolean
}

/** Load of a model's encoder, as `ColBERT.load` reports it. */
export interface EncodeLoad {
  /** Encode calls admitted and not yet settled. */
  pending: number
  /** Calls waiting for a shared batch. */
  waiting: number
  /** Native encode calls running (shared batches and calls that run alone). */
  running: number
  /** Shared batches sent so far. */
  batches: number
  /** Texts sent in shared batches so far (÷ `batches`: the mean batch size). */
  batchedTexts: number
}

export class EncodeBatcher {
  readonly maxBatchSize: number
  readonly maxWaitMs: number
  readonly maxQueued: number
  readonly #onBatch?: (texts: number) => void
  readonly #run: EncodeRun
  /** Shared batches that may run at once (the model's parallel sessions). */
  readonly #slots: number
  #pending = 0
  /** Native calls running: shared batches per kind (each kind has `slots` lanes) and calls alone. */
  readonly #lanes = new Map<boolean, number>([
    [true, 0],
    [false, 0],
  ])
  #alone = 0
  #batches = 0
  #batchedTexts = 0
  /** Waiting calls, queries and documents apart (they never share a batch). */
  readonly #queues = new Map<boolean, Waiter[]>([
    [true, []],
    [false, []],
  ])
  /** Per kind, the `maxWaitMs` timer of its waiting calls; once it fired, the kind is due. */
  readonly #timers = new Map<boolean, NodeJS.Timeout>()
  /** Kinds whose waiting calls wait no longer for company. */
  readonly #due = new Set<boolean>()

  constructor(run: EncodeRun, slots: number, options: BatchingOptions) {
    this.#run = run
    this.#slots = Math.max(1, slots)
    this.maxBatchSize = options.maxBatchSize ?? 64
    this.maxWaitMs = options.maxWaitMs ?? 0
    this.maxQueued = options.maxQueued ?? Infinity
    this.#onBatch = options.onBatch
  }

  get load(): EncodeLoad {
    return {
      pending: this.#pending,
      waiting: this.#queues.get(true)!.length + this.#queues.get(false)!.length,
      running: this.#lanes.get(true)! + this.#lanes.get(false)! + this.#alone,
      batches: this.#batches,
      batchedTexts: this.#batchedTexts,
    }
  }

  /** Counts a call in, or refuses it with `BUSY`; `release` counts it out. */
  admit(): void {
    if (this.#pending >= this.maxQueued) {
      throw new ColbertError(
        'BUSY',
        `the model has ${this.#pending} encode calls pending (maxQueued ${this.maxQueued}); retry later or raise batching.maxQueued`,
      )
    }
    this.#pending++
  }

  release(): void {
    this.#pending--
  }

  /** Whether a call of `n` texts shares batches (small calls) or runs alone. */
  shares(n: number): boolean {
    return n > 0 && n < this.maxBatchSize
  }

  /** Runs a call alone (the native scheduler interleaves its batches with everyone else's). */
  async alone<T>(run: () => Promise<T>): Promise<T> {
    this.#alone++
    try {
      return await run()
    } finally {
      this.#alone--
    }
  }

  /** Queues a small call for a shared batch; resolves with its own rows. */
  submit(texts: readonly string[], isQuery: boolean, signal?: AbortSignal): Promise<Embeddings> {
    if (signal?.aborted) return Promise.reject(abortError(signal))
    return new Promise<Embeddings>((resolve, reject) => {
      const w: Waiter = { texts, isQuery, resolve, reject, signal, settled: false }
      if (signal) {
        w.onAbort = () => {
          if (w.settled) return
          w.settled = true
          const queue = this.#queues.get(isQuery)!
          const i = queue.indexOf(w)
          if (i >= 0) queue.splice(i, 1)
          reject(abortError(signal))
        }
        signal.addEventListener('abort', w.onAbort, { once: true })
      }
      this.#queues.get(isQuery)!.push(w)
      this.#dispatch()
    })
  }

  /**
   * Sends waiting calls off in shared batches while lanes are free. Queries and documents have
   * lanes of their own, so a batch of long documents never holds up the next batch of queries.
   */
  #dispatch(): void {
    for (const isQuery of [true, false]) {
      const queue = this.#queues.get(isQuery)!
      while (queue.length > 0 && this.#lanes.get(isQuery)! < this.#slots) {
        const texts = queue.reduce((n, w) => n + w.texts.length, 0)
        if (this.maxWaitMs > 0 && texts < this.maxBatchSize && this.#lanes.get(isQuery)! > 0 && !this.#due.has(isQuery)) {
          // A batch of this kind runs already: wait for more calls, at most maxWaitMs (then
          // leave with the next free lane, never beyond the lanes).
          if (!this.#timers.has(isQuery)) {
            this.#timers.set(
              isQuery,
              setTimeout(() => {
                this.#timers.delete(isQuery)
                this.#due.add(isQuery)
                this.#dispatch()
              }, this.maxWaitMs),
            )
          }
          break
        }
        this.#flush(isQuery)
      }
    }
  }

  /** Sends one shared batch of the oldest waiting calls of a kind. */
  #flush(isQuery: boolean): void {
    const queue = this.#queues.get(isQuery)!
    if (queue.length === 0) return
    clearTimeout(this.#timers.get(isQuery))
    this.#timers.delete(isQuery)
    this.#due.delete(isQuery)
    const batch: Waiter[] = []
    let n = 0
    while (queue.length > 0 && (batch.length === 0 || n + queue[0].texts.length <= this.maxBatchSize)) {
      const w = queue.shift()!
      batch.push(w)
      n += w.texts.length
    }
    this.#lanes.set(isQuery, this.#lanes.get(isQuery)! + 1)
    this.#batches++
    this.#batchedTexts += n
    this.#onBatch?.(n)
    void this.#runBatch(batch, n).finally(() => {
      this.#lanes.set(isQuery, this.#lanes.get(isQuery)! - 1)
      this.#dispatch()
    })
  }

  async #runBatch(batch: Waiter[], n: number): Promise<void> {
    const texts = batch.flatMap((w) => w.texts)
    const token = new native.CancelToken()
    // The batch is cancelled only when every caller in it has gone.
    const onAbort = () => {
      if (batch.every((w) => w.settled)) token.cancel()
    }
    for (const w of batch) w.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      // One inference batch: other shared batches run beside it on the model's other sessions.
      const out = await this.#run(texts, batch[0].isQuery, n, token)
      let item = 0
      for (const w of batch) {
        const first = item
        item += w.texts.length
        if (w.settled) continue
        w.settled = true
        w.resolve(slice(out, first, item))
      }
    } catch (e) {
      const error = fromNative(e)
      for (const w of batch) {
        if (w.settled) continue
        w.settled = true
        w.reject(error.code === 'ABORTED' ? abortError(w.signal) : error)
      }
    } finally {
      for (const w of batch) {
        w.signal?.removeEventListener('abort', onAbort)
        if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort)
      }
    }
  }
}

/** Items `first..end` of a batch, as a batch of their own (copied: a caller keeps only its rows). */
function slice(e: Native.NativeEmbeddings, first: number, end: number): Embeddings {
  const base = e.offsets[first]
  const offsets = new Uint32Array(end - first + 1)
  for (let i = first; i <= end; i++) offsets[i - first] = e.offsets[i] - base
  return { dim: e.dim, offsets, data: e.data.slice(base * e.dim, e.offsets[end] * e.dim) }
}
