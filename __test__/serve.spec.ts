// The HTTP server (`createServer`, `colbert serve`) on real loopback ports: routes, auth, limits,
// bad bodies, concurrent upserts coalesced into few transactions, BUSY under a burst, and a
// SIGTERM that drains in-flight work.
import { spawn } from 'node:child_process'
import path from 'node:path'

import test from 'ava'

import { ColBERT, PlaidIndex, poolEmbeddings } from '../index'
import { createServer } from '../src/serve'
import { ROOT, STANDIN, tempDir } from './helpers'

const DOCS = [
  { id: 'paris', text: 'Paris is the capital and largest city of France.', metadata: { lang: 'en', topic: 'geo' } },
  { id: 'qcd', text: 'Quantum chromodynamics is the theory of the strong interaction between quarks and gluons.', metadata: { lang: 'en', topic: 'physics' } },
  { id: 'cat', text: 'The cat sat on the mat and looked out of the window.', metadata: { lang: 'en', topic: 'pets' } },
  { id: 'berlin', text: 'Berlin is the capital of Germany.', metadata: { lang: 'en', topic: 'geo' } },
]

const modelPromise = ColBERT.fromPretrained(STANDIN)

async function start(t: { teardown(fn: () => Promise<void> | void): void }, options: { apiKey?: string; bodyLimit?: number; maxTexts?: number; poolFactor?: number } = {}) {
  const dataDir = tempDir(t, 'serve')
  const app = await createServer({ model: await modelPromise, dataDir, ...options })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const call = async (method: string, route: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(address + route, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    })
    const text = await res.text()
    let json: any
    try {
      json = JSON.parse(text)
    } catch {
      json = text
    }
    return { status: res.status, json, headers: res.headers }
  }
  return { app, address, dataDir, call }
}

test('routes: upsert, search by text and by embeddings, documents, info, encode, rerank, delete, health, metrics, OpenAPI', async (t) => {
  const { call } = await start(t)
  const up = await call('PUT', '/indexes/wiki/documents', { documents: DOCS })
  t.is(up.status, 200, JSON.stringify(up.json))
  t.like(up.json, { upserted: 4, generation: 1 })

  const s = await call('POST', '/indexes/wiki/search', { queries: ['what is the capital of france', 'gluons and quarks'], k: 2, withDocuments: true })
  t.is(s.status, 200)
  t.is(s.json.results[0][0].id, 'paris')
  t.is(s.json.results[0][0].text, DOCS[0].text)
  t.is(s.json.results[1][0].id, 'qcd')
  const filtered = await call('POST', '/indexes/wiki/search', { queries: ['capital city'], k: 4, filter: { topic: 'geo' } })
  t.deepEqual(filtered.json.results[0].map((h: { id: string }) => h.id).sort(), ['berlin', 'paris'])

  const enc = await call('POST', '/encode', { texts: ['what is the capital of france'] })
  t.is(enc.status, 200)
  t.is(enc.json.dim, 128)
  const rows: number[][] = enc.json.embeddings[0]
  const byEmbeddings = await call('POST', '/indexes/wiki/search', {
    embeddings: { dim: 128, offsets: [0, rows.length], data: rows.flat() },
    k: 1,
  })
  t.is(byEmbeddings.json.results[0][0].id, 'paris')
  t.true(Math.abs(byEmbeddings.json.results[0][0].score - s.json.results[0][0].score) < 1e-4)

  const rr = await call('POST', '/rerank', { query: 'strong interaction', documents: [DOCS[2].text, DOCS[1].text, DOCS[0].text] })
  t.is(rr.json.results[0].index, 1)
  t.is(rr.json.results.length, 3)

  t.deepEqual((await call('GET', '/indexes/wiki/documents/cat')).json, { id: 'cat', text: DOCS[2].text, metadata: DOCS[2].metadata })
  t.like((await call('GET', '/indexes/wiki')).json, { documents: 4, dim: 128 })

  const del = await call('DELETE', '/indexes/wiki/documents', { ids: ['cat', 'unknown'] })
  t.is(del.status, 200)
  t.is((await call('GET', '/indexes/wiki/documents/cat')).status, 404)
  t.like((await call('GET', '/indexes/wiki')).json, { documents: 3 })

  t.deepEqual((await call('GET', '/health')).json, { status: 'ok' })
  t.deepEqual((await call('GET', '/ready')).json, { status: 'ready', indexes: ['wiki'] })
  const metrics = await call('GET', '/metrics')
  t.regex(metrics.headers.get('content-type') ?? '', /text\/plain/)
  t.regex(metrics.json, /colbert_http_requests_total\{method="POST",route="\/indexes\/:name\/search",status="200"\} 3/)
  t.regex(metrics.json, /colbert_index_documents\{index="wiki"\} 3/)
  t.regex(metrics.json, /colbert_encode_duration_seconds_count\{kind="query"\} \d+/)
  t.regex(metrics.json, /colbert_search_duration_seconds_count 3/)
  const openapi = (await call('GET', '/openapi.json')).json
  t.is(openapi.openapi, '3.0.3')
  for (const p of ['/indexes/{name}/search', '/indexes/{name}/documents', '/encode', '/rerank', '/health', '/metrics']) t.truthy(openapi.paths[p], p)
})

test('poolFactor: upserted documents are pooled before they are indexed; /encode still returns every row', async (t) => {
  const plain = await start(t)
  const pooled = await start(t, { poolFactor: 2 })
  for (const server of [plain, pooled]) t.is((await server.call('PUT', '/indexes/wiki/documents', { documents: DOCS })).status, 200)
  const model = await modelPromise
  const rows = await model.encode(DOCS.map((d) => d.text), { isQuery: false })
  const want = await poolEmbeddings(rows, { poolFactor: 2 })
  t.like((await plain.call('GET', '/indexes/wiki')).json, { documents: 4, embeddings: rows.offsets[4] })
  t.like((await pooled.call('GET', '/indexes/wiki')).json, { documents: 4, embeddings: want.offsets[4] })
  t.true(want.offsets[4] < rows.offsets[4] * 0.7)
  const s = await pooled.call('POST', '/indexes/wiki/search', { queries: ['what is the capital of france'], k: 1 })
  t.is(s.json.results[0][0].id, 'paris')
  const enc = await pooled.call('POST', '/encode', { texts: [DOCS[0].text], isQuery: false })
  t.is(enc.json.embeddings[0].length, rows.offsets[1])
  await t.throwsAsync(createServer({ model, dataDir: tempDir(t, 'serve'), poolFactor: 0 }), { message: /poolFactor must be an integer/ })
})

test('bad requests get a 4xx JSON error with a stable code, and the server keeps serving', async (t) => {
  const { call } = await start(t, { bodyLimit: 64 * 1024, maxTexts: 8 })
  await call('PUT', '/indexes/wiki/documents', { documents: DOCS })
  const cases: [string, string, unknown, number, string][] = [
    ['POST', '/indexes/wiki/search', '{"queries": [', 400, 'INVALID_ARGUMENT'],
    ['POST', '/indexes/wiki/search', { queries: [] }, 400, 'INVALID_ARGUMENT'],
    ['POST', '/indexes/wiki/search', { queries: ['x'], embeddings: { dim: 1, offsets: [0, 1], data: [1] } }, 400, 'INVALID_ARGUMENT'],
    ['POST', '/indexes/wiki/search', { queries: ['x'], k: 0 }, 400, 'INVALID_ARGUMENT'],
    ['POST', '/indexes/wiki/search', { queries: ['x'], unknown: 1 }, 400, 'INVALID_ARGUMENT'],
    ['POST', '/indexes/wiki/search', { queries: Array(9).fill('x') }, 400, 'INVALID_ARGUMENT'],
    ['POST', '/indexes/wiki/search', { queries: ['x'], filter: { $where: 1 } }, 400, 'INVALID_ARGUMENT'],
    ['POST', '/indexes/wiki/search', { embeddings: { dim: 128, offsets: [0, 2], data: [1, 2] } }, 400, 'INVALID_ARGUMENT'],
    ['POST', '/indexes/nope/search', { queries: ['x'] }, 404, 'INDEX_NOT_FOUND'],
    ['POST', '/indexes/..%2F..%2Fetc/search', { queries: ['x'] }, 400, 'INVALID_ARGUMENT'],
    ['PUT', '/indexes/.hidden/documents', { documents: DOCS }, 400, 'INVALID_ARGUMENT'],
    ['PUT', '/indexes/wiki/documents', { documents: [DOCS[0], DOCS[0]] }, 400, 'INVALID_ARGUMENT'],
    ['PUT', '/indexes/wiki/documents', { documents: [{ id: '', text: 'x' }] }, 400, 'INVALID_ARGUMENT'],
    ['PUT', '/indexes/wiki/documents', { documents: [{ id: 'x', text: 'x', metadata: [1] }] }, 400, 'INVALID_ARGUMENT'],
    ['PUT', '/indexes/wiki/documents', { documents: [{ id: 'x', text: 'y'.repeat(70 * 1024) }] }, 413, 'INVALID_ARGUMENT'],
    ['DELETE', '/indexes/wiki/documents', { ids: 'paris' }, 400, 'INVALID_ARGUMENT'],
    ['POST', '/encode', { texts: [1] }, 400, 'INVALID_ARGUMENT'],
    ['POST', '/rerank', { query: 'x' }, 400, 'INVALID_ARGUMENT'],
    ['GET', '/indexes/wiki/documents/missing', undefined, 404, 'NOT_FOUND'],
    ['GET', '/no/such/route', undefined, 404, 'NOT_FOUND'],
  ]
  for (const [method, route, body, status, code] of cases) {
    const r = await call(method, route, body)
    t.is(r.status, status, `${method} ${route} ${JSON.stringify(body)?.slice(0, 80)}: ${JSON.stringify(r.json)}`)
    t.is(r.json?.error?.code, code, `${method} ${route}`)
    t.is(typeof r.json?.error?.message, 'string')
  }
  // Still serving, and nothing was written by the refused requests.
  t.like((await call('GET', '/indexes/wiki')).json, { documents: 4, generation: 1 })
})

test('an API key guards every route but /health (Bearer, constant-time)', async (t) => {
  const { call } = await start(t, { apiKey: 's3cret-key' })
  t.is((await call('GET', '/health')).status, 200)
  t.is((await call('GET', '/health?probe=1')).status, 200)
  for (const headers of [{} as Record<string, string>, { authorization: 'Bearer wrong' }, { authorization: 's3cret-key' }, { authorization: 'Bearer s3cret-key2' }]) {
    const r = await call('POST', '/encode', { texts: ['x'] }, headers)
    t.is(r.status, 401)
    t.is(r.json.error.code, 'UNAUTHORIZED')
    t.is(r.headers.get('www-authenticate'), 'Bearer')
  }
  t.is((await call('GET', '/metrics')).status, 401)
  t.is((await call('POST', '/encode', { texts: ['x'] }, { authorization: 'Bearer s3cret-key' })).status, 200)
})

test('concurrent upserts share few transactions; each is answered once committed and visible', async (t) => {
  const { call, app } = await start(t)
  const n = 24
  const responses = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      call('PUT', '/indexes/live/documents', { documents: [{ id: `doc-${i}`, text: `document number ${i} about topic ${i % 4}` }] }).then(async (r) => {
        // Answered after the commit: the document is there already.
        const doc = await call('GET', `/indexes/live/documents/doc-${i}`)
        return { r, doc }
      }),
    ),
  )
  for (const { r, doc } of responses) {
    t.is(r.status, 200)
    t.is(doc.status, 200)
  }
  const generations = new Set(responses.map(({ r }) => r.json.generation))
  t.true(generations.size < n / 2, `${n} upserts took ${generations.size} transactions`)
  t.like((await call('GET', '/indexes/live')).json, { documents: n, generation: Math.max(...generations) })
  // Upserts of an existing id replace it (same count); of two concurrent ones, one wins whole.
  await Promise.all([
    call('PUT', '/indexes/live/documents', { documents: [{ id: 'doc-0', text: 'first replacement' }] }),
    call('PUT', '/indexes/live/documents', { documents: [{ id: 'doc-0', text: 'second replacement' }] }),
  ])
  t.regex((await call('GET', '/indexes/live/documents/doc-0')).json.text, /^(first|second) replacement$/)
  t.like((await call('GET', '/indexes/live')).json, { documents: n })
  t.truthy(app)
})

/** Starts `colbert serve` in a child process on a free port; resolves once it listens. */
function serveProcess(dataDir: string, extra: string[] = []) {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'colbert.js'), 'serve', '--model', STANDIN, '--data-dir', dataDir, '--port', '0', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const address = new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d) => {
      stderr += d
      const m = /listening on (http:\/\/\S+)/.exec(stderr)
      if (m) resolve(m[1])
    })
    void exited.then((code) => reject(new Error(`colbert serve exited (${code}): ${stderr}`)))
  })
  return { child, address, exited, stderr: () => stderr }
}

test('colbert serve: a burst far above maxQueued gets 503 BUSY for the excess, the rest completes, memory stays bounded', async (t) => {
  const dataDir = tempDir(t, 'serve-burst')
  const server = serveProcess(dataDir, ['--max-queued', '4'])
  t.teardown(() => server.child.kill('SIGKILL'))
  const address = await server.address
  const encode = (i: number) =>
    fetch(`${address}/encode`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ texts: [`burst query ${i} `.repeat(8)] }) })
  const rss = async () => Number(/process_resident_memory_bytes (\d+)/.exec(await (await fetch(`${address}/metrics`)).text())![1])
  for (let i = 0; i < 8; i++) await encode(i)
  const before = await rss()
  for (let round = 0; round < 3; round++) {
    const responses = await Promise.all(Array.from({ length: 300 }, (_, i) => encode(i)))
    const busy = responses.filter((r) => r.status === 503)
    const ok = responses.filter((r) => r.status === 200)
    t.true(busy.length > 0, `round ${round}: ${busy.length} BUSY`)
    t.true(ok.length >= 4, `round ${round}: ${ok.length} ok`)
    t.is(busy.length + ok.length, 300)
    t.is(busy[0].headers.get('retry-after'), '1')
    const bodies = await Promise.all(responses.map((r) => r.json() as Promise<{ error?: { code: string }; dim?: number }>))
    t.true(bodies.every((b, i) => (responses[i].status === 503 ? b.error?.code === 'BUSY' : b.dim === 128)))
  }
  const after = await rss()
  t.true(after - before < 96 * 2 ** 20, `RSS ${(before / 2 ** 20).toFixed(0)} MiB before the bursts, ${(after / 2 ** 20).toFixed(0)} MiB after`)
  server.child.kill('SIGTERM')
  t.is(await server.exited, 0, server.stderr())
})

test('colbert serve: SIGTERM drains in-flight requests and commits, closes the indexes and exits 0', async (t) => {
  const dataDir = tempDir(t, 'serve-drain')
  const server = serveProcess(dataDir, ['--write-delay-ms', '300'])
  t.teardown(() => server.child.kill('SIGKILL'))
  const address = await server.address
  const upsert = fetch(`${address}/indexes/drained/documents`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ documents: DOCS }),
  })
  // The upsert waits 300 ms for company before committing: SIGTERM lands while it is in flight.
  await new Promise((r) => setTimeout(r, 150))
  server.child.kill('SIGTERM')
  const r = await upsert
  t.is(r.status, 200)
  t.like(await r.json(), { upserted: 4 })
  t.is(await server.exited, 0, server.stderr())
  t.regex(server.stderr(), /stopped/)
  const index = await PlaidIndex.open(path.join(dataDir, 'drained'))
  t.is(index.info.documents, 4)
  await index.close()
})

test('examples/service: the library inside an existing Fastify app answers searches and stops on SIGTERM', async (t) => {
  const child = spawn(process.execPath, [path.join(ROOT, 'examples', 'service', 'app.mjs')], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', INDEX_DIR: tempDir(t, 'service-example'), COLBERT_MODEL: STANDIN },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => child.kill('SIGKILL'))
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
  let output = ''
  const address = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      output += d
      const m = /listening on (http:\/\/\S+)/.exec(output)
      if (m) resolve(m[1])
    })
    child.stderr.on('data', (d) => (output += d))
    void exited.then((code) => reject(new Error(`the example exited (${code}): ${output}`)))
  })
  const r = await fetch(`${address}/api/search?q=${encodeURIComponent('capital of france')}`)
  t.is(r.status, 200)
  const body = (await r.json()) as { hits: { id: string; text: string }[] }
  t.is(body.hits[0].id, 'paris')
  t.is(body.hits[0].text, 'Paris is the capital and largest city of France.')
  t.is((await fetch(`${address}/api/search`)).status, 400)
  child.kill('SIGTERM')
  t.is(await exited, 0)
})
