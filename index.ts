// The public entry of `colbert`. Everything users import is exported here.
/**
 * ColBERT late-interaction retrieval: `ColBERT` encodes queries and documents into token
 * embeddings (PyLate-compatible, ONNX Runtime), `PlaidIndex` stores and searches them, and
 * `maxsim`, `rerank`, `fuse`, `evaluate` score, rerank, fuse and evaluate rankings. Every error is
 * a `ColbertError` with a stable `code`.
 *
 * @module colbert
 */
export { ColBERT } from './src/model'
export type { ColBERTConfig, ColBERTOptions, EncodeOptions, EncodeProgress, ExecutionProvider, Tokenized } from './src/model'
export type { BatchingOptions, EncodeLoad } from './src/batch'
export type { DownloadProgress } from './src/hub'
export { maxsim, maxsimAsync, count, item } from './src/embeddings'
export type { Embeddings, MaxSimOptions } from './src/embeddings'
export { MAX_POOL_FACTOR, poolEmbeddings } from './src/pool'
export type { PoolOptions } from './src/pool'
export { ColbertError, ERROR_CODES } from './src/errors'
export type { ColbertErrorCode } from './src/errors'
export { loadRuntime, runtimeInfo, threadBudget } from './src/runtime'
export type { RuntimeInfo } from './src/runtime'
export { PlaidIndex } from './src/plaid_index'
export type {
  AddOptions,
  AddProgress,
  AddResult,
  DocumentBatch,
  MetadataFilter,
  OpenOptions,
  PlaidIndexInfo,
  PlaidIndexOptions,
  ReplaceAllOptions,
  SearchHit,
  SearchOptions,
  StoredDocument,
  TrainingOptions,
} from './src/plaid_index'
export { Retriever } from './src/retrieve'
export type { RetrieveOptions } from './src/retrieve'
export { rerank } from './src/rank'
export { fuse } from './src/fuse'
export type { FuseOptions, FusedResult, FusionMethod, RankedItem } from './src/fuse'
export type { RankedDocument, RerankInput } from './src/rank'
export { computeMetrics, evaluate, formatMetricsTable, loadBeir } from './src/evaluate'
export type {
  BeirDataset,
  BeirDocument,
  BeirQuery,
  EvaluateOptions,
  EvaluateProgress,
  EvaluateResult,
  FormatMetricsTableOptions,
  LoadBeirOptions,
  MetricFamily,
  MetricName,
  MetricOptions,
  Metrics,
  Qrels,
  RankedHit,
  Rankings,
} from './src/evaluate'
