// `colbert serve`: the HTTP server of `src/serve/` over one model and the indexes of a folder,
// until SIGINT/SIGTERM, then a graceful shutdown (in-flight requests and commits finish).
import { createServer } from '../serve'
import { int, loadModel, MODEL_HELP, MODEL_OPTIONS, parse, UsageError } from './options'
import type { Io } from './output'

const HELP = `Usage: colbert serve --model <path|org/name> --data-dir <dir> [options]

Serves search, encode, rerank and document upserts/deletes over HTTP (see README "Serving").
Needs the optional packages: npm install fastify@5 @fastify/swagger@9 prom-client@15

${MODEL_HELP}
  --data-dir <dir>         folder of the indexes, one subfolder each (required; an upsert to a
                           new name creates one)
  --host <addr>            address to bind (default 127.0.0.1)
  --port <n>               port (default 8080; 0 picks a free one)
  --api-key <key>          require Authorization: Bearer <key> (default: $COLBERT_API_KEY)
  --max-queued <n>         pending encodes per model, searches and writes per index (default 256);
                           beyond: 503 BUSY
  --max-batch <n>          texts per shared encode batch (default 64)
  --max-wait-ms <n>        how long a shared batch may wait for more queries (default 0)
  --max-texts <n>          texts or ids per request (default 512)
  --body-limit <bytes>     largest request body (default 16777216)
  --write-delay-ms <n>     how long writes wait to share a transaction (default 20)
  --pool-factor <n>        pool upserted documents to about 1/n of their token embeddings
                           (PyLate's pool_factor; default 1, off)
  --drain-seconds <n>      shutdown: how long in-flight requests may take before their
                           connections are cut (default 30)`

export async function cmdServe(args: string[], io: Io, signal: AbortSignal) {
  const { values } = parse(args, {
    ...MODEL_OPTIONS,
    'data-dir': { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'api-key': { type: 'string' },
    'max-queued': { type: 'string' },
    'max-batch': { type: 'string' },
    'max-wait-ms': { type: 'string' },
    'max-texts': { type: 'string' },
    'body-limit': { type: 'string' },
    'write-delay-ms': { type: 'string' },
    'pool-factor': { type: 'string' },
    'drain-seconds': { type: 'string' },
  })
  if (values.help) return io.out(HELP + '\n')
  if (!values['data-dir']) throw new UsageError('--data-dir <dir> is required')
  const maxQueued = int(values['max-queued'], 'max-queued') ?? 256
  const port = int(values.port, 'port', 0) ?? 8080
  if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`)
  const drainMs = (int(values['drain-seconds'], 'drain-seconds') ?? 30) * 1000
  const model = await loadModel(values, io, signal, {
    batching: { maxQueued, maxBatchSize: int(values['max-batch'], 'max-batch'), maxWaitMs: int(values['max-wait-ms'], 'max-wait-ms', 0) },
  })
  const app = await createServer({
    model,
    dataDir: values['data-dir'],
    apiKey: values['api-key'] ?? process.env.COLBERT_API_KEY,
    maxQueued,
    maxTexts: int(values['max-texts'], 'max-texts'),
    bodyLimit: int(values['body-limit'], 'body-limit'),
    writeDelayMs: int(values['write-delay-ms'], 'write-delay-ms', 0),
    poolFactor: int(values['pool-factor'], 'pool-factor'),
  })
  if (signal.aborted) return app.close()
  const address = await app.listen({ host: values.host ?? '127.0.0.1', port })
  io.err(`colbert serve: listening on ${address}\n`)
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
  io.err('colbert serve: shutting down (finishing in-flight requests and commits)\n')
  const closing = app.close()
  // A client that stops reading must not hold the shutdown: past the deadline its connection is
  // cut (waiting writes still commit; their requests were not acknowledged).
  const timer = setTimeout(() => {
    io.err(`colbert serve: in-flight requests did not finish within ${drainMs / 1000} s; closing their connections\n`)
    app.server.closeAllConnections()
  }, drainMs)
  try {
    await closing
  } finally {
    clearTimeout(timer)
  }
  io.err('colbert serve: stopped\n')
}
