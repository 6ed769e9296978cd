// Prometheus metrics of the server (prom-client): requests per route, latency histograms, the
// encoder's queue and batches, encode and search times, index sizes. Values that are state
// (queue depth, batches so far, index sizes) are read when /metrics is scraped.

import type * as Prom from 'prom-client'

import type { ColBERT } from '../model'
import type { PlaidIndex } from '../plaid_index'
import type { WriteQueue } from './writes'

export interface ServerMetrics {
  registry: Prom.Registry
  requests: Prom.Counter<'method' | 'route' | 'status'>
  requestSeconds: Prom.Histogram<'method' | 'route'>
  encodeSeconds: Prom.Histogram<'kind'>
  searchSeconds: Prom.Histogram
}

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export function createMetrics(
  prom: typeof Prom,
  model: ColBERT,
  indexes: () => ReadonlyMap<string, { index?: PlaidIndex; writes: WriteQueue }>,
): ServerMetrics {
  const registry = new prom.Registry()
  prom.collectDefaultMetrics({ register: registry })
  const requests = new prom.Counter({
    name: 'colbert_http_requests_total',
    help: 'HTTP requests answered, by route and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  })
  const requestSeconds = new prom.Histogram({
    name: 'colbert_http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by route.',
    labelNames: ['method', 'route'] as const,
    buckets: SECONDS,
    registers: [registry],
  })
  const encodeSeconds = new prom.Histogram({
    name: 'colbert_encode_duration_seconds',
    help: 'Time to encode the texts of one request (queueing included), by kind.',
    labelNames: ['kind'] as const,
    buckets: SECONDS,
    registers: [registry],
  })
  const searchSeconds = new prom.Histogram({
    name: 'colbert_search_duration_seconds',
    help: 'Time of one index search (encoding excluded).',
    buckets: SECONDS,
    registers: [registry],
  })
  new prom.Gauge({
    name: 'colbert_encode_pending',
    help: 'Encode calls pending on the model (waiting for a batch or running).',
    registers: [registry],
    collect() {
      this.set(model.load.pending)
    },
  })
  new prom.Gauge({
    name: 'colbert_encode_batches',
    help: 'Shared encode batches sent so far.',
    registers: [registry],
    collect() {
      this.set(model.load.batches)
    },
  })
  new prom.Gauge({
    name: 'colbert_encode_batched_texts',
    help: 'Texts sent in shared encode batches so far (divided by colbert_encode_batches: the mean batch size).',
    registers: [registry],
    collect() {
      this.set(model.load.batchedTexts)
    },
  })
  const perIndex = (name: string, help: string, value: (i: PlaidIndex) => number) =>
    new prom.Gauge({
      name,
      help,
      labelNames: ['index'] as const,
      registers: [registry],
      collect() {
        this.reset()
        for (const [key, entry] of indexes()) if (entry.index) this.set({ index: key }, value(entry.index))
      },
    })
  perIndex('colbert_index_documents', 'Live documents of each index.', (i) => i.info.documents)
  perIndex('colbert_index_bytes', 'Bytes on disk of each index.', (i) => i.info.bytesOnDisk)
  perIndex('colbert_index_searches_pending', 'Searches pending on each index.', (i) => i.load.searches)
  new prom.Gauge({
    name: 'colbert_index_writes_pending',
    help: 'Write requests of each index waiting for their transaction.',
    labelNames: ['index'] as const,
    registers: [registry],
    collect() {
      this.reset()
      for (const [key, entry] of indexes()) this.set({ index: key }, entry.writes.pending)
    },
  })
  return { registry, requests, requestSeconds, encodeSeconds, searchSeconds }
}
