/**
 * `colbert serve` as a library: `createServer({ model, dataDir })` returns a Fastify instance
 * serving one model and the indexes under one folder — search, encode, rerank, upserts and
 * deletes (coalesced into few transactions), health, readiness, Prometheus metrics and an OpenAPI
 * document. Fastify, @fastify/swagger and prom-client are optional peer dependencies: a service
 * that wants the server installs them; the library never loads them otherwise.
 *
 * @module colbert/server
 */

import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'

import { count, item, maxsimAsync, type Embeddings } from '../embeddings'
import { ColbertError, type ColbertErrorCode } from '../errors'
import type { ColBERT } from '../model'
import { PlaidIndex, type MetadataFilter, type SearchOptions, type StoredDocument } from '../plaid_index'
import { poolFactorOption } from '../pool'
import { bestFirst } from '../rank'
import { createMetrics } from './metrics'
import { WriteQueue } from './writes'

/** Options of `createServer`. */
export interface ServerOptions {
  /** The model every route encodes with (its `batching` options bound the encode queue). */
  model: ColBERT
  /** The folder holding the indexes, one subfolder each; an upsert to a new name creates one. */
  dataDir: string
  /** Require `Authorization: Bearer <apiKey>` on every route but `/health` (default: none). */
  apiKey?: string
  /** Most searches pending per index, and most writes waiting per index; beyond: 503 `BUSY` (default 256). */
  maxQueued?: number
  /** Largest request body in bytes (default 16 MiB). */
  bodyLimit?: number
  /** Most texts (queries, documents, candidates, ids) in one request (default 512). */
  maxTexts?: number
  /** How long upserts and deletes wait to share a transaction, in milliseconds (default 20). */
  writeDelayMs?: number
  /**
   * Pool upserted documents' token embeddings to about `1 / poolFactor` before indexing
   * (`poolEmbeddings`, PyLate's `pool_factor`; default 1, off). `/encode` returns unpooled rows.
   */
  poolFactor?: number
  /** Fastify's logger option (default off). */
  logger?: boolean
}

const INDEX_NAME = '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'

const STATUS: Partial<Record<ColbertErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  INDEX_NOT_FOUND: 404,
  INDEX_EXISTS: 409,
  INDEX_LOCKED: 409,
  BUSY: 503,
  ABORTED: 503,
  CLOSED: 503,
}

interface IndexEntry {
  index?: PlaidIndex
  opening?: Promise<PlaidIndex>
  writes: WriteQueue
}

function missingDependency(e: unknown): never {
  throw new ColbertError(
    'DEPENDENCY_MISSING',
    'the server needs the optional packages fastify, @fastify/swagger and prom-client: npm install fastify@5 @fastify/swagger@9 prom-client@15',
    { cause: e },
  )
}

/** Builds the server (not listening yet: call `listen`). Opens every index under `dataDir`. */
export async function createServer(options: ServerOptions): Promise<FastifyInstance> {
  const [{ default: Fastify }, { default: swagger }, prom] = await Promise.all([
    import('fastify'),
    import('@fastify/swagger'),
    import('prom-client'),
  ]).catch(missingDependency)
  const { model, apiKey } = options
  const dataDir = path.resolve(options.dataDir)
  const maxQueued = options.maxQueued ?? 256
  const maxTexts = options.maxTexts ?? 512
  const writeDelayMs = options.writeDelayMs ?? 20
  const poolFactor = poolFactorOption(options.poolFactor) ?? 1
  if (!fs.statSync(dataDir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new ColbertError('INVALID_ARGUMENT', `dataDir ${dataDir} is not a folder`)
  }

  const indexes = new Map<string, IndexEntry>()
  const entry = (name: string): IndexEntry => {
    let e = indexes.get(name)
    if (!e) indexes.set(name, (e = { writes: new WriteQueue(() => open(name, true), writeDelayMs, maxQueued) }))
    return e
  }
  /** The index `name` (opened once; created when `create` and missing). */
  const open = async (name: string, create = false): Promise<PlaidIndex> => {
    const known = indexes.get(name)?.index
    if (known) return known
    const dir = path.join(dataDir, name)
    const exists = fs.existsSync(path.join(dir, 'MANIFEST'))
    // Unknown names leave no trace (no entry), so requests for random names cost nothing.
    if (!exists && !create) throw new ColbertError('INDEX_NOT_FOUND', `no index named ${JSON.stringify(name)} in ${dataDir}`)
    const e = entry(name)
    e.opening ??= (async () => {
      const index = exists ? await PlaidIndex.open(dir, { maxQueued }) : await PlaidIndex.create(dir, { maxQueued })
      e.index = index
      return index
    })().finally(() => {
      e.opening = undefined
    })
    return e.opening
  }
  for (const name of fs.readdirSync(dataDir)) {
    if (new RegExp(INDEX_NAME).test(name) && fs.existsSync(path.join(dataDir, name, 'MANIFEST'))) await open(name)
  }

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 16 * 1024 * 1024,
    forceCloseConnections: 'idle',
    // Strict bodies: unknown fields and wrong types are refused, never dropped or converted.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  })
  const metrics = createMetrics(prom, model, () => indexes)
  let draining = false

  await app.register(swagger, {
    openapi: {
      info: { title: 'colbert', description: 'ColBERT late-interaction retrieval: search, encode, rerank and index maintenance.', version: '1' },
      components: apiKey ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } : undefined,
      security: apiKey ? [{ bearer: [] }] : undefined,
    },
  })

  // Authentication: a constant-time comparison of digests (equal lengths whatever is sent).
  const expected = apiKey === undefined ? undefined : crypto.createHash('sha256').update(apiKey).digest()
  app.addHook('onRequest', async (request, reply) => {
    if (!expected || request.routeOptions.url === '/health') return
    const header = request.headers.authorization ?? ''
    const given = crypto.createHash('sha256').update(header.startsWith('Bearer ') ? header.slice(7) : '').digest()
    if (!crypto.timingSafeEqual(new Uint8Array(given), new Uint8Array(expected))) {
      reply.header('WWW-Authenticate', 'Bearer')
      throw new ColbertError('UNAUTHORIZED', 'this server needs Authorization: Bearer <api key>')
    }
  })
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unknown'
    metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) })
    metrics.requestSeconds.observe({ method: request.method, route }, reply.elapsedTime / 1000)
  })

  app.setErrorHandler((error: FastifyError | ColbertError, _request, reply) => {
    let code: ColbertErrorCode
    let status: number
    if (error instanceof ColbertError) {
      code = error.code
      status = STATUS[code] ?? 500
    } else if (error.validation || (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500)) {
      // Schema validation, a malformed or oversized body, an unsupported media type.
      code = 'INVALID_ARGUMENT'
      status = error.statusCode ?? 400
    } else {
      code = 'INTERNAL'
      status = 500
    }
    if (status === 503) reply.header('Retry-After', '1')
    void reply.code(status).send({ error: { code, message: error.message } })
  })
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` } })
  })

  const texts = { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: maxTexts } as const
  const ids = { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, maxItems: maxTexts } as const
  const nameParam = { type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: INDEX_NAME } } } as const
  const error = {
    type: 'object',
    properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } },
  } as const

  const encode = async (list: string[], isQuery: boolean, poolFactor = 1): Promise<Embeddings> => {
    const done = metrics.encodeSeconds.startTimer({ kind: isQuery ? 'query' : 'document' })
    const e = await model.encode(list, { isQuery, poolFactor })
    done()
    return e
  }
  const rows = (e: Embeddings) => Array.from({ length: count(e) }, (_, i) => item(e, i))
  const toArrays = (e: Embeddings) => rows(e).map((r) => Array.from({ length: r.length / e.dim }, (_, j) => Array.from(r.subarray(j * e.dim, (j + 1) * e.dim))))

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())

  app.get('/health', { schema: { summary: 'Liveness: the process answers.', tags: ['operations'] } }, async () => ({ status: 'ok' }))

  app.get('/ready', { schema: { summary: 'Readiness: the model and indexes are loaded and the server is not draining.', tags: ['operations'] } }, async (_req, reply) => {
    if (draining) return reply.code(503).send({ status: 'draining' })
    return { status: 'ready', indexes: [...indexes].filter(([, e]) => e.index).map(([name]) => name) }
  })

  app.get('/metrics', { schema: { summary: 'Prometheus metrics (text format).', tags: ['operations'] } }, async (_req, reply) => {
    reply.type(metrics.registry.contentType)
    return metrics.registry.metrics()
  })

  app.post<{ Body: { texts: string[]; isQuery?: boolean } }>(
    '/encode',
    {
      schema: {
        summary: 'Encode texts into token embeddings (one array of rows per text).',
        tags: ['model'],
        body: { type: 'object', required: ['texts'], additionalProperties: false, properties: { texts, isQuery: { type: 'boolean', default: true } } },
      },
    },
    async (request) => {
      const e = await encode(request.body.texts, request.body.isQuery ?? true)
      return { dim: e.dim, embeddings: toArrays(e) }
    },
  )

  app.post<{ Body: { query: string; documents: string[] } }>(
    '/rerank',
    {
      schema: {
        summary: 'Rerank candidate texts for a query by exact MaxSim (PyLate rank.rerank); best first.',
        tags: ['model'],
        body: { type: 'object', required: ['query', 'documents'], additionalProperties: false, properties: { query: { type: 'string' }, documents: texts } },
      },
    },
    async (request) => {
      const { query, documents } = request.body
      const [q, d] = await Promise.all([encode([query], true), encode(documents, false)])
      // `rerank`'s scoring (zero-padded MaxSim, ties in input order), off the event loop.
      const scores = await maxsimAsync(q, d, { zeroPadded: true })
      return { results: bestFirst(scores).map((index) => ({ index, score: scores[index] })) }
    },
  )

  interface SearchBody {
    queries?: string[]
    embeddings?: { dim: number; offsets: number[]; data: number[] }
    k?: number
    filter?: MetadataFilter
    subset?: string[]
    withDocuments?: boolean
    nProbe?: number
    centroidScoreThreshold?: number
    candidates?: number
    exactCandidates?: number
  }
  const positive = { type: 'integer', minimum: 1 } as const
  app.post<{ Params: { name: string }; Body: SearchBody }>(
    '/indexes/:name/search',
    {
      schema: {
        summary: 'Search an index with query texts (encoded here) or pre-computed query embeddings.',
        tags: ['indexes'],
        params: nameParam,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            queries: texts,
            embeddings: {
              type: 'object',
              required: ['dim', 'offsets', 'data'],
              properties: { dim: positive, offsets: { type: 'array', items: { type: 'integer', minimum: 0 } }, data: { type: 'array', items: { type: 'number' } } },
            },
            k: { type: 'integer', minimum: 1, maximum: 10_000 },
            filter: { type: 'object' },
            subset: ids,
            withDocuments: { type: 'boolean' },
            nProbe: positive,
            centroidScoreThreshold: { type: 'number' },
            candidates: positive,
            exactCandidates: positive,
          },
        },
        response: { 404: error },
      },
    },
    async (request) => {
      const { queries, embeddings, ...rest } = request.body
      if ((queries === undefined) === (embeddings === undefined)) {
        throw new ColbertError('INVALID_ARGUMENT', 'give either queries (texts) or embeddings ({ dim, offsets, data })')
      }
      const index = await open(request.params.name)
      const q: Embeddings = queries
        ? await encode(queries, true)
        : { dim: embeddings!.dim, offsets: Uint32Array.from(embeddings!.offsets), data: Float32Array.from(embeddings!.data) }
      const done = metrics.searchSeconds.startTimer()
      const hits = await index.search(q, rest as SearchOptions)
      done()
      return { results: hits }
    },
  )

  interface UpsertBody {
    documents: { id: string; text: string; metadata?: Record<string, unknown> }[]
  }
  app.put<{ Params: { name: string }; Body: UpsertBody }>(
    '/indexes/:name/documents',
    {
      schema: {
        summary: 'Upsert documents (encoded here): replaces documents with the same ids. Answered once committed.',
        tags: ['indexes'],
        params: nameParam,
        body: {
          type: 'object',
          required: ['documents'],
          additionalProperties: false,
          properties: {
            documents: {
              type: 'array',
              minItems: 1,
              maxItems: maxTexts,
              items: {
                type: 'object',
                required: ['id', 'text'],
                additionalProperties: false,
                properties: { id: { type: 'string', minLength: 1 }, text: { type: 'string' }, metadata: { type: 'object' } },
              },
            },
          },
        },
      },
    },
    async (request) => {
      const docs = request.body.documents
      const seen = new Set<string>()
      for (const d of docs) {
        if (seen.has(d.id)) throw new ColbertError('INVALID_ARGUMENT', `document id ${JSON.stringify(d.id)} appears twice in the request`)
        seen.add(d.id)
      }
      if (draining) throw new ColbertError('CLOSED', 'the server is shutting down')
      const e = await encode(
        docs.map((d) => d.text),
        false,
        poolFactor,
      )
      const stored: StoredDocument[] = docs.map((d) => (d.metadata === undefined ? { text: d.text } : { text: d.text, metadata: d.metadata }))
      const generation = await entry(request.params.name).writes.upsert(
        docs.map((d) => d.id),
        e,
        stored,
      )
      return { upserted: docs.length, generation }
    },
  )

  app.delete<{ Params: { name: string }; Body: { ids: string[] } }>(
    '/indexes/:name/documents',
    {
      schema: {
        summary: 'Delete documents by id (unknown ids are ignored). Answered once committed.',
        tags: ['indexes'],
        params: nameParam,
        body: { type: 'object', required: ['ids'], additionalProperties: false, properties: { ids } },
      },
    },
    async (request) => {
      await open(request.params.name)
      if (draining) throw new ColbertError('CLOSED', 'the server is shutting down')
      const generation = await entry(request.params.name).writes.delete(request.body.ids)
      return { generation }
    },
  )

  app.get<{ Params: { name: string; id: string } }>(
    '/indexes/:name/documents/:id',
    {
      schema: {
        summary: 'The stored text and metadata of one document.',
        tags: ['indexes'],
        params: { type: 'object', required: ['name', 'id'], properties: { name: { type: 'string', pattern: INDEX_NAME }, id: { type: 'string', minLength: 1 } } },
      },
    },
    async (request) => {
      const index = await open(request.params.name)
      const [doc] = await index.documents([request.params.id])
      if (!doc) throw new ColbertError('NOT_FOUND', `no document ${JSON.stringify(request.params.id)} in index ${request.params.name}`)
      return { id: request.params.id, ...doc }
    },
  )

  app.get<{ Params: { name: string } }>(
    '/indexes/:name',
    { schema: { summary: 'What an index holds (documents, embeddings, size, drift).', tags: ['indexes'], params: nameParam } },
    async (request) => (await open(request.params.name)).info,
  )

  // Shutdown (`app.close()`): new requests get 503; in-flight ones finish and their connections
  // close (a kept-alive connection that turns idle is closed at once); no new writes are queued,
  // the waiting ones commit; then every index closes.
  let idleSweep: NodeJS.Timeout | undefined
  app.addHook('onSend', async (_request, reply) => {
    if (draining) reply.header('connection', 'close')
  })
  app.addHook('preClose', async () => {
    draining = true
    idleSweep = setInterval(() => app.server.closeIdleConnections(), 100)
  })
  app.addHook('onClose', async () => {
    clearInterval(idleSweep)
    for (const e of indexes.values()) await e.writes.drain()
    for (const e of indexes.values()) await e.index?.close()
  })
  return app
}

export type { FastifyInstance, FastifyReply }
