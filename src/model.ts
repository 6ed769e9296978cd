// The ColBERT encoder: model loading and text → token embeddings.

import { checkKeys, checkSignal, optionKeys, optionalType, positiveInt, withCancel } from './arguments'
import { EncodeBatcher, type BatchingOptions, type EncodeLoad } from './batch'
import { abortError, callNative, ColbertError, fromNative, invalidArgument } from './errors'
import type { Embeddings } from './embeddings'
import { resolveModel, type DownloadProgress } from './hub'
import { native, type Native } from './native'
import { poolEmbeddings, poolFactorOption } from './pool'
import { guard } from './progress'
import { loadRuntime, threadBudget } from './runtime'

/**
 * Where inference runs: `'cpu'`, or `'cuda'` (ONNX Runtime's CUDA provider), which falls back to
 * CPU with a process warning (`COLBERT_EXECUTION_PROVIDER_FALLBACK`) when CUDA is unavailable.
 */
export type ExecutionProvider = 'cpu' | 'cuda'

/** Options of `ColBERT.fromPretrained`. Settings left out come from the model folder. */
export interface ColBERTOptions {
  /** Where inference runs. `'cuda'` falls back to CPU with a warning when CUDA is unavailable. */
  executionProvider?: ExecutionProvider
  /**
   * Intra-op threads per inference (default: the whole thread budget, see `threadBudget()`; 1 for a
   * dynamically quantised int8 model, which runs one text per inference and so runs texts in parallel).
   */
  threads?: number
  /** `true`: `model_int8.onnx`; `false`: `model.onnx`; default: `model.onnx` when present. */
  quantized?: boolean
  /** Total query length, CLS, prefix, SEP and expansion tokens included (at most 65,536). */
  queryLength?: number
  /** Maximum document length, CLS, prefix and SEP included (at most 65,536). */
  documentLength?: number
  /** Token inserted after the first token of every query (default: the folder's, else `'[Q] '`; `''`: none). Must be one token of the vocabulary, else `MODEL_INVALID`. */
  queryPrefix?: string
  /** Token inserted after the first token of every document (default: the folder's, else `'[D] '`; `''`: none). Must be one token of the vocabulary, else `MODEL_INVALID`. */
  documentPrefix?: string
  /** Pad queries with mask tokens to `queryLength` and keep every position. */
  doQueryExpansion?: boolean
  /** Let real tokens attend to the expansion tokens. */
  attendToExpansionTokens?: boolean
  /** Tokens removed from document embeddings (default: ASCII punctuation). */
  skiplistWords?: string[]
  /** Lowercase texts (Python `str.lower()`) before tokenizing. */
  doLowerCase?: boolean
  /** Absolute path of the ONNX Runtime library (see README for the lookup order). */
  ortLibraryPath?: string
  /** Hub models: branch, tag or commit sha (default `main`). */
  revision?: string
  /** Hub models: the cache folder (default `HF_HUB_CACHE`, `HF_HOME/hub`, `XDG_CACHE_HOME/huggingface/hub`, `~/.cache/huggingface/hub`). */
  cacheDir?: string
  /** Hub models: use the cache only, never the network (as `HF_HUB_OFFLINE=1`). */
  localFilesOnly?: boolean
  /** Hub models: access token (default, as huggingface_hub: `HF_TOKEN`, `HUGGING_FACE_HUB_TOKEN`, then the saved token file `HF_TOKEN_PATH` / `HF_HOME/token`). */
  token?: string
  /** Cancels a download (and the load, if it has not started). */
  signal?: AbortSignal
  /** Hub models: called as files download. A callback that throws is reported as a warning and ignored. */
  onProgress?: (progress: DownloadProgress) => void
  /**
   * Micro-batching across callers and backpressure (see `BatchingOptions`): on by default, so
   * concurrent small `encode` calls share inference batches; `false` runs every call alone.
   */
  batching?: BatchingOptions | false
}

/** The settings a model runs with. */
export interface ColBERTConfig {
  /** Width of one token embedding: floats per row of `Embeddings.data`. */
  readonly dim: number
  /** Total query length, CLS, prefix, SEP and expansion tokens included. */
  readonly queryLength: number
  /** Maximum document length, CLS, prefix and SEP included; longer documents are truncated. */
  readonly documentLength: number
  /** Token inserted after the first token of every query (`''`: none). */
  readonly queryPrefix: string
  /** Token inserted after the first token of every document (`''`: none). */
  readonly documentPrefix: string
  /** Token id of `queryPrefix`; `null` when the prefix is empty. */
  readonly queryPrefixId: number | null
  /** Token id of `documentPrefix`; `null` when the prefix is empty. */
  readonly documentPrefixId: number | null
  /** Queries are padded with mask tokens to `queryLength`, and every position becomes a row. */
  readonly doQueryExpansion: boolean
  /** Real query tokens attend to the expansion tokens (attention mask 1 instead of 0). */
  readonly attendToExpansionTokens: boolean
  /** Words whose tokens are removed from document embeddings. */
  readonly skiplistWords: readonly string[]
  /** Token ids of `skiplistWords`, sorted: the tokens removed from document embeddings. */
  readonly skiplistIds: readonly number[]
  /** Texts are lowercased (Python `str.lower()`) before tokenizing. */
  readonly doLowerCase: boolean
  /** The mask token id, used for query expansion. */
  readonly maskTokenId: number
  /** The id that pads sequences in a batch (as PyLate: the mask token unless the folder names one). */
  readonly padTokenId: number
  /** Text prepended to every input (sentence-transformers' default prompt), usually empty. */
  readonly prompt: string
}

/** One progress event of `ColBERT.encode`, after each inference batch. */
export interface EncodeProgress {
  /** Texts encoded so far. */
  done: number
  /** Texts in the call. */
  total: number
}

/** Options of `ColBERT.encode`. Unknown keys are `INVALID_ARGUMENT`. */
export interface EncodeOptions {
  /** Encode as queries (prefix `[Q] `, mask-token expansion) or documents. Default `true`, as in PyLate. */
  isQuery?: boolean
  /** Texts per inference batch (default 32). */
  batchSize?: number
  /**
   * Documents only: pool each document's token embeddings to about `1 / poolFactor` of them, as
   * PyLate's `encode(..., pool_factor=k)` does (see `poolEmbeddings`). Default 1 (off).
   */
  poolFactor?: number
  /** Aborts the call: it rejects with `ABORTED`, between inference batches at the latest. */
  signal?: AbortSignal
  /** Called after each batch. A callback that throws is reported as a warning and ignored. */
  onProgress?: (progress: EncodeProgress) => void
}

/** One tokenized text, as the encoder feeds it to the model. */
export interface Tokenized {
  /** Token ids: the tokenizer's (CLS … SEP, truncated) with the prefix token after the first, then any expansion (mask) tokens. */
  inputIds: number[]
  /** 1 for positions the model attends to, 0 for the others (expansion tokens unless `attendToExpansionTokens`). */
  attentionMask: number[]
  /** Token type (segment) ids, as the tokenizer gives them for one sequence; 0 for the prefix and expansion tokens. */
  tokenTypeIds: number[]
  /** Which positions become output rows. */
  keep: boolean[]
}

const OPTION_KEYS = optionKeys<ColBERTOptions>()(
  'executionProvider',
  'threads',
  'quantized',
  'queryLength',
  'documentLength',
  'queryPrefix',
  'documentPrefix',
  'doQueryExpansion',
  'attendToExpansionTokens',
  'skiplistWords',
  'doLowerCase',
  'ortLibraryPath',
  'revision',
  'cacheDir',
  'localFilesOnly',
  'token',
  'signal',
  'onProgress',
  'batching',
)

const BATCHING_KEYS = optionKeys<BatchingOptions>()('maxBatchSize', 'maxWaitMs', 'maxQueued', 'onBatch')

/** Checks `batching` (`false`: every call runs alone, without a bound). */
function batchingOptions(value: unknown): BatchingOptions {
  if (value === false) return { maxBatchSize: 0 }
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object') throw invalidArgument('batching must be an object or false')
  checkKeys(value, BATCHING_KEYS, 'batching option')
  const o = value as BatchingOptions
  const maxWaitMs = o.maxWaitMs
  if (maxWaitMs !== undefined && (typeof maxWaitMs !== 'number' || !Number.isFinite(maxWaitMs) || maxWaitMs < 0)) {
    throw invalidArgument('batching.maxWaitMs must be a finite number ≥ 0')
  }
  if (o.onBatch !== undefined && typeof o.onBatch !== 'function') throw invalidArgument('batching.onBatch must be a function')
  return {
    maxBatchSize: positiveInt(o.maxBatchSize, 'batching.maxBatchSize'),
    maxWaitMs,
    maxQueued: positiveInt(o.maxQueued, 'batching.maxQueued'),
    onBatch: o.onBatch,
  }
}

const ENCODE_KEYS = optionKeys<EncodeOptions>()('isQuery', 'batchSize', 'poolFactor', 'signal', 'onProgress')

function checkTexts(texts: unknown): string[] {
  if (!Array.isArray(texts)) throw invalidArgument('texts must be an array of strings')
  for (let i = 0; i < texts.length; i++) {
    if (typeof texts[i] !== 'string') {
      throw invalidArgument(`texts[${i}] must be a string, got ${texts[i] === null ? 'null' : typeof texts[i]}`)
    }
  }
  return texts as string[]
}

function guardProgress(onProgress?: (p: EncodeProgress) => void) {
  if (onProgress !== undefined && typeof onProgress !== 'function') throw invalidArgument('onProgress must be a function')
  const safe = guard(onProgress, 'onProgress')
  if (!safe) return undefined
  // The native side reports `encode` events: texts done of the total.
  return ({ done, total }: Native.NativeProgress) => safe({ done, total })
}

/** A ColBERT model: encodes queries and documents into normalised token embeddings, as PyLate does. */
export class ColBERT {
  /** The settings in force (folder values with option overrides applied). */
  readonly config: ColBERTConfig
  /** The provider inference really runs on (`'cpu'` after a CUDA fallback). */
  readonly executionProvider: ExecutionProvider
  /** The ONNX file in use. */
  readonly onnxPath: string
  /** Intra-op threads per inference. */
  readonly threads: number

  readonly #native: Native.NativeModel
  readonly #batcher: EncodeBatcher

  private constructor(model: Native.NativeModel, batching: BatchingOptions) {
    this.#native = model
    // As many shared batches at once as the model runs sessions side by side. A model that runs
    // each text in an inference of its own (dynamically quantised int8) gains nothing from shared
    // batches, so they are off unless asked for (`maxBatchSize`); the bound still applies.
    const info = model.info
    const slots = Math.max(1, Math.floor(threadBudget() / Math.max(1, info.threads)))
    const options = info.perText && batching.maxBatchSize === undefined ? { ...batching, maxBatchSize: 1 } : batching
    this.#batcher = new EncodeBatcher((texts, isQuery, batchSize, token) => model.encode(texts, isQuery, batchSize, token), slots, options)
    this.config = Object.freeze({ ...model.config, queryPrefixId: model.config.queryPrefixId ?? null, documentPrefixId: model.config.documentPrefixId ?? null })
    this.executionProvider = info.executionProvider as ExecutionProvider
    this.onnxPath = info.onnxPath
    this.threads = info.threads
  }

  /**
   * Loads a model folder: a PyLate model folder with `model.onnx` (from `tools/export_onnx.py`),
   * or a `pylate-onnx-export` folder (`onnx_config.json`). A name shaped like `org/name` that is
   * not a folder on disk is fetched from the Hugging Face hub into its cache (see README).
   */
  static async fromPretrained(nameOrPath: string, options: ColBERTOptions = {}): Promise<ColBERT> {
    if (typeof nameOrPath !== 'string' || nameOrPath.length === 0) throw invalidArgument('the model path must be a non-empty string')
    checkKeys(options, OPTION_KEYS, 'option')
    const batching = batchingOptions(options.batching)
    const ep = options.executionProvider
    if (ep !== undefined && ep !== 'cpu' && ep !== 'cuda') {
      throw invalidArgument(`executionProvider must be 'cpu' or 'cuda', got ${JSON.stringify(ep)}`)
    }
    const skiplistWords = options.skiplistWords
    if (skiplistWords !== undefined && (!Array.isArray(skiplistWords) || skiplistWords.some((w) => typeof w !== 'string'))) {
      throw invalidArgument('skiplistWords must be an array of strings')
    }
    const nativeOptions: Native.NativeLoadOptions = {
      executionProvider: ep,
      threads: positiveInt(options.threads, 'threads'),
      quantized: optionalType<boolean>(options.quantized, 'boolean', 'quantized'),
      queryLength: positiveInt(options.queryLength, 'queryLength'),
      documentLength: positiveInt(options.documentLength, 'documentLength'),
      queryPrefix: optionalType<string>(options.queryPrefix, 'string', 'queryPrefix'),
      documentPrefix: optionalType<string>(options.documentPrefix, 'string', 'documentPrefix'),
      doQueryExpansion: optionalType<boolean>(options.doQueryExpansion, 'boolean', 'doQueryExpansion'),
      attendToExpansionTokens: optionalType<boolean>(options.attendToExpansionTokens, 'boolean', 'attendToExpansionTokens'),
      skiplistWords,
      doLowerCase: optionalType<boolean>(options.doLowerCase, 'boolean', 'doLowerCase'),
    }
    const signal = checkSignal(options.signal)
    const onProgress = options.onProgress
    if (onProgress !== undefined && typeof onProgress !== 'function') throw invalidArgument('onProgress must be a function')
    const hubOptions = {
      revision: optionalType<string>(options.revision, 'string', 'revision'),
      cacheDir: optionalType<string>(options.cacheDir, 'string', 'cacheDir'),
      localFilesOnly: optionalType<boolean>(options.localFilesOnly, 'boolean', 'localFilesOnly'),
      token: optionalType<string>(options.token, 'string', 'token'),
      quantized: nativeOptions.quantized,
      signal,
      onProgress,
    }
    loadRuntime(optionalType<string>(options.ortLibraryPath, 'string', 'ortLibraryPath'))
    const resolved = await resolveModel(nameOrPath, hubOptions)
    if (signal?.aborted) throw abortError(signal)
    let model: Native.NativeModel
    try {
      model = await native.loadModel(resolved.dir, nativeOptions)
    } catch (e) {
      const error = fromNative(e)
      // A hub snapshot that fails to load may hold a corrupt blob: re-hash, repair, load again.
      const repaired = error.code === 'ABORTED' || error.code === 'ORT_LOAD_FAILED' ? undefined : await resolved.recover?.()
      if (repaired === undefined) throw error
      if (signal?.aborted) throw abortError(signal)
      try {
        model = await native.loadModel(repaired, nativeOptions)
      } catch (e2) {
        throw fromNative(e2)
      }
    }
    const warning = model.info.warning
    if (warning) process.emitWarning(warning, { code: 'COLBERT_EXECUTION_PROVIDER_FALLBACK' })
    return new ColBERT(model, batching)
  }

  /** Encode calls pending on this model, waiting for a shared batch, and native calls running. */
  get load(): EncodeLoad {
    return this.#batcher.load
  }

  /**
   * Encodes texts into token embeddings, in input order. Queries have exactly `queryLength` rows
   * when query expansion is on; documents lose padding and skiplisted tokens. Runs off the event
   * loop on the shared thread budget. Small calls (fewer texts than `batching.maxBatchSize`, no
   * `onProgress`) made while the model is busy share inference batches with other callers; each
   * gets exactly its own rows. Beyond `batching.maxQueued` pending calls, fails at once with `BUSY`.
   * With `poolFactor` > 1 (documents only), each document's rows are then pooled as PyLate's
   * `pool_factor` does (`poolEmbeddings`).
   */
  async encode(texts: readonly string[], options: EncodeOptions = {}): Promise<Embeddings> {
    const list = checkTexts(texts)
    checkKeys(options, ENCODE_KEYS, 'encode option')
    const isQuery = optionalType<boolean>(options.isQuery, 'boolean', 'isQuery') ?? true
    const batchSize = positiveInt(options.batchSize, 'batchSize') ?? 32
    const poolFactor = poolFactorOption(options.poolFactor) ?? 1
    if (poolFactor > 1 && isQuery) throw invalidArgument('poolFactor applies to documents only: pass isQuery: false (PyLate never pools queries)')
    const signal = checkSignal(options.signal)
    const progress = guardProgress(options.onProgress)
    if (signal?.aborted) throw abortError(signal)
    const batcher = this.#batcher
    let embeddings: Embeddings
    batcher.admit()
    try {
      if (!progress && batcher.shares(list.length)) embeddings = await batcher.submit(list, isQuery, signal)
      else {
        const out = await batcher.alone(() => withCancel(signal, (token) => this.#native.encode(list, isQuery, batchSize, token, progress)))
        embeddings = { dim: out.dim, offsets: out.offsets, data: out.data }
      }
    } finally {
      batcher.release()
    }
    return poolFactor > 1 ? poolEmbeddings(embeddings, { poolFactor, signal }) : embeddings
  }

  /** Tokenizes one text exactly as `encode` does, without running the model. */
  tokenize(text: string, options: { isQuery?: boolean } = {}): Tokenized {
    if (typeof text !== 'string') throw invalidArgument('text must be a string')
    const isQuery = optionalType<boolean>(options.isQuery, 'boolean', 'isQuery') ?? true
    return callNative(() => this.#native.tokenize(text, isQuery))
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `ColBERT { dim: ${this.config.dim}, queryLength: ${this.config.queryLength}, documentLength: ${this.config.documentLength}, executionProvider: '${this.executionProvider}', onnx: '${this.onnxPath}' }`
  }
}

export { ColbertError }
