// An existing Fastify service that adds ColBERT search to its own routes with the library API:
// one model (concurrent requests share its inference batches; beyond `maxQueued` a call fails at
// once with BUSY, answered here as 503), one index, and the service's own error shape.
//
//   npm install colbert fastify
//   PORT=3000 COLBERT_MODEL=models/minilm-colbert node examples/service/app.mjs
//   curl 'localhost:3000/api/search?q=capital+of+france'
//
// For the complete server (upserts, metrics, OpenAPI, auth, drain) use `colbert serve` or
// `createServer` from 'colbert/server', which returns a Fastify instance you can add routes to.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import Fastify from 'fastify'
import { ColBERT, ColbertError, PlaidIndex } from 'colbert'

const model = await ColBERT.fromPretrained(process.env.COLBERT_MODEL ?? 'models/minilm-colbert', {
  batching: { maxQueued: 256 },
})

// A small index of the service's own documents (a real service opens its existing index).
const dir = process.env.INDEX_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'service-index-'))
const index = fs.existsSync(path.join(dir, 'MANIFEST')) ? await PlaidIndex.open(dir, { maxQueued: 256 }) : await PlaidIndex.create(dir, { maxQueued: 256 })
if (index.info.documents === 0) {
  const docs = {
    paris: 'Paris is the capital and largest city of France.',
    berlin: 'Berlin is the capital of Germany.',
    qcd: 'Quantum chromodynamics describes the strong interaction of quarks and gluons.',
  }
  const ids = Object.keys(docs)
  const texts = Object.values(docs)
  await index.add(ids, await model.encode(texts, { isQuery: false }), { documents: texts.map((text) => ({ text })) })
}

const app = Fastify()

app.get('/api/search', async (request, reply) => {
  const q = request.query.q
  if (typeof q !== 'string' || q.length === 0) return reply.code(400).send({ message: 'q is required' })
  try {
    const queries = await model.encode([q])
    const [hits] = await index.search(queries, { k: 3, withDocuments: true })
    return { query: q, hits }
  } catch (e) {
    if (e instanceof ColbertError && e.code === 'BUSY') return reply.code(503).header('retry-after', '1').send({ message: e.message })
    throw e
  }
})

app.addHook('onClose', () => index.close())
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => void app.close())

const address = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 3000) })
console.log(`listening on ${address}`)
