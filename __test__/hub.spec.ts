// Hugging Face hub downloads, against a local fake hub (node:http) serving the fixture models under
// the hub's URLs: a resolve endpoint with ETag / X-Repo-Commit headers and an LFS-style redirect
// to a separate "CDN" origin for ONNX files. No network. Every test is serial: they set
// HF_ENDPOINT and other HF_* variables, which the hub code reads at call time.
import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'

import test, { type ExecutionContext } from 'ava'

import { ColBERT, ColbertError, type DownloadProgress } from '../index'
import { hubCacheDir } from '../src/hub'
import { FIXTURES } from './helpers'

const MODERNBERT = path.join(FIXTURES, 'tiny-modernbert')
const ONNX_EXPORT = path.join(FIXTURES, 'tiny-modernbert-onnx-export')
const TEXTS = ['ColBERT scores a query against a document token by token.', 'Bananas are yellow.', 'what is late interaction?']
const HF_VARS = ['HF_ENDPOINT', 'HF_TOKEN', 'HF_HUB_OFFLINE', 'HF_HUB_CACHE', 'HF_HOME', 'XDG_CACHE_HOME']

// (@types/node 20 and TypeScript 5.9 disagree on whether a Buffer is a Uint8Array.)
const bytes = (b: Buffer) => b as unknown as Uint8Array
const sha256 = (b: Buffer) => crypto.createHash('sha256').update(bytes(b)).digest('hex')
const gitSha1 = (b: Buffer) => crypto.createHash('sha1').update(`blob ${b.length}\0`).update(bytes(b)).digest('hex')
const commitOf = (label: string) => crypto.createHash('sha1').update(label).digest('hex')
const isLfs = (file: string) => /\.(onnx|safetensors|bin)$/.test(file)

// ---- the fake hub ----------------------------------------------------------------------------

type Files = Map<string, Buffer>

function readFolder(dir: string, prefix = '', out: Files = new Map()): Files {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name
    if (entry.isDirectory()) readFolder(path.join(dir, entry.name), rel, out)
    else out.set(rel, fs.readFileSync(path.join(dir, entry.name)))
  }
  return out
}

/** The tiny ModernBERT fixture as a hub repository, with weights we must never download. */
function modernbertRepo(): Files {
  const files = readFolder(MODERNBERT)
  files.set('model.safetensors', Buffer.alloc(1000, 1))
  files.set('1_Dense/model.safetensors', Buffer.alloc(100, 2))
  files.set('README.md', Buffer.from('# tiny\n'))
  return files
}

function withoutOnnx(files: Files): Files {
  return new Map([...files].filter(([f]) => !f.endsWith('.onnx')))
}

interface Repo {
  refs: Map<string, string>
  commits: Map<string, Files>
  token?: string
}

/** A one-shot (or n-shot) failure of the CDN download of one file. */
interface Fault {
  dropAfter?: number
  corrupt?: boolean
  stallAfter?: number
  times: number
}

interface Seen {
  server: 'hub' | 'cdn'
  method: string
  path: string
  range?: string
  authorization?: string
}

class FakeHub {
  readonly repos = new Map<string, Repo>()
  readonly faults = new Map<string, Fault>()
  readonly seen: Seen[] = []
  readonly lfs = new Map<string, { file: string; data: Buffer }>()
  apiStatus: number | undefined
  url = ''
  cdnUrl = ''
  #hub = http.createServer((req, res) => this.#onHub(req, res))
  #cdn = http.createServer((req, res) => this.#onCdn(req, res))

  /** Starts both servers, points HF_ENDPOINT at the hub, and closes them when the test ends. */
  static async start(t: ExecutionContext): Promise<FakeHub> {
    const hub = new FakeHub()
    t.teardown(() => hub.close())
    hub.url = await listen(hub.#hub)
    hub.cdnUrl = await listen(hub.#cdn)
    process.env.HF_ENDPOINT = hub.url
    return hub
  }

  /** Adds a repository whose `main` is the last of `commits`. */
  add(id: string, commits: Files[], token?: string): string[] {
    const repo: Repo = { refs: new Map(), commits: new Map(), token }
    const shas = commits.map((files, i) => {
      const sha = commitOf(`${id}@${i}`)
      repo.commits.set(sha, files)
      for (const [file, data] of files) if (isLfs(file)) this.lfs.set(sha256(data), { file, data })
      return sha
    })
    repo.refs.set('main', shas[shas.length - 1])
    this.repos.set(id, repo)
    return shas
  }

  /** Requests for a repository file (by the hub or the CDN). */
  fetched(file: string, method = 'GET'): Seen[] {
    return this.seen.filter((s) => s.method === method && (s.path.endsWith(`/${file}`) || (s.server === 'cdn' && this.lfs.get(s.path.split('/').pop()!)?.file === file)))
  }

  async close(): Promise<void> {
    for (const server of [this.#hub, this.#cdn]) {
      if (!server.listening) continue
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }

  #record(server: 'hub' | 'cdn', req: http.IncomingMessage) {
    this.seen.push({ server, method: req.method!, path: decodeURIComponent(req.url!), range: req.headers.range, authorization: req.headers.authorization })
  }

  #repo(req: http.IncomingMessage, res: http.ServerResponse, id: string): Repo | undefined {
    const repo = this.repos.get(id)
    if (!repo) {
      res.writeHead(404, { 'x-error-code': 'RepoNotFound', 'x-error-message': 'Repository not found' }).end()
      return undefined
    }
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) {
      res.writeHead(401, { 'content-type': 'text/plain' }).end('Unauthorized')
      return undefined
    }
    return repo
  }

  #onHub(req: http.IncomingMessage, res: http.ServerResponse) {
    this.#record('hub', req)
    const url = new URL(req.url!, this.url)
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname)
    if (api) {
      if (this.apiStatus) return void res.writeHead(this.apiStatus).end('oops')
      const repo = this.#repo(req, res, api[1])
      if (!repo) return
      const rev = decodeURIComponent(api[2])
      const sha = repo.refs.get(rev) ?? (repo.commits.has(rev) ? rev : undefined)
      if (!sha) return void res.writeHead(404, { 'x-error-code': 'RevisionNotFound' }).end()
      const siblings = [...repo.commits.get(sha)!.keys()].map((rfilename) => ({ rfilename }))
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: api[1], sha, siblings }))
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname)
    if (!resolve) return void res.writeHead(404).end()
    const repo = this.#repo(req, res, resolve[1])
    if (!repo) return
    const rev = decodeURIComponent(resolve[2])
    const sha = repo.refs.get(rev) ?? (repo.commits.has(rev) ? rev : undefined)
    const data = sha && repo.commits.get(sha)!.get(resolve[3].split('/').map(decodeURIComponent).join('/'))
    if (!sha || !data) return void res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end()
    if (isLfs(resolve[3])) {
      const hash = sha256(data)
      return void res
        .writeHead(302, {
          location: `${this.cdnUrl}/lfs/${hash}`,
          'x-linked-etag': `"${hash}"`,
          'x-linked-size': String(data.length),
          etag: '"not-the-content-hash"',
          'x-repo-commit': sha,
          'content-length': '0',
        })
        .end()
    }
    serve(req, res, data, { etag: `"${gitSha1(data)}"`, 'x-repo-commit': sha })
  }

  #onCdn(req: http.IncomingMessage, res: http.ServerResponse) {
    this.#record('cdn', req)
    const entry = this.lfs.get(req.url!.split('/').pop()!)
    if (!entry) return void res.writeHead(404).end()
    const fault = this.faults.get(entry.file)
    if (fault && fault.times > 0) {
      fault.times--
      return serve(req, res, entry.data, {}, fault)
    }
    serve(req, res, entry.data, {})
  }
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)))
}

/** Serves `data` with Range support; a fault drops, stalls or corrupts the body. */
function serve(req: http.IncomingMessage, res: http.ServerResponse, data: Buffer, headers: Record<string, string>, fault?: Fault) {
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')
  const start = range ? Number(range[1]) : 0
  if (start > data.length) return void res.writeHead(416).end()
  let body = data.subarray(start)
  const out: Record<string, string> = { ...headers, 'content-length': String(body.length) }
  if (range) out['content-range'] = `bytes ${start}-${data.length - 1}/${data.length}`
  res.writeHead(range ? 206 : 200, out)
  if (req.method === 'HEAD') return void res.end()
  if (fault?.corrupt) {
    body = Buffer.concat([bytes(body)])
    body[body.length >> 1] ^= 0xff
  }
  if (fault?.dropAfter !== undefined) return void res.write(body.subarray(0, fault.dropAfter), () => res.destroy())
  if (fault?.stallAfter !== undefined) return void res.write(body.subarray(0, fault.stallAfter))
  res.end(body)
}

// ---- helpers ---------------------------------------------------------------------------------

const temps: string[] = []
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-hub-'))
  temps.push(dir)
  return dir
}

const saved = new Map(HF_VARS.map((k) => [k, process.env[k]]))
test.beforeEach(() => {
  for (const k of HF_VARS) delete process.env[k]
})
test.after.always(() => {
  for (const [k, v] of saved) {
    if (v === undefined) delete process.env[k]
    else process.env[k] = v
  }
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true })
})

async function encodeAll(model: ColBERT) {
  return [await model.encode(TEXTS, { isQuery: true }), await model.encode(TEXTS, { isQuery: false })]
}

async function failure(p: Promise<unknown>): Promise<ColbertError> {
  try {
    await p
  } catch (e) {
    if (e instanceof ColbertError) return e
    throw e
  }
  throw new Error('expected a ColbertError')
}

function listTree(dir: string): string[] {
  if (!fs.existsSync(dir)) return []
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((p) => p.split(path.sep).join('/')).sort()
}

const repoDir = (cache: string, repo: string) => path.join(cache, `models--${repo.replace('/', '--')}`)

// ---- tests -----------------------------------------------------------------------------------

test.serial('the cache folder: HF_HUB_CACHE, then HF_HOME/hub, then XDG_CACHE_HOME/huggingface/hub, then ~/.cache/huggingface/hub', (t) => {
  process.env.HF_HUB_CACHE = '/tmp/a-hub-cache'
  process.env.HF_HOME = '/tmp/hf-home'
  process.env.XDG_CACHE_HOME = '/tmp/xdg'
  t.is(hubCacheDir(), path.resolve('/tmp/a-hub-cache'))
  delete process.env.HF_HUB_CACHE
  t.is(hubCacheDir(), path.resolve('/tmp/hf-home', 'hub'))
  process.env.HF_HOME = ''
  t.is(hubCacheDir(), path.resolve('/tmp/xdg', 'huggingface', 'hub'))
  delete process.env.XDG_CACHE_HOME
  t.is(hubCacheDir(), path.join(os.homedir(), '.cache', 'huggingface', 'hub'))
  process.env.HF_HOME = '~/hf'
  t.is(hubCacheDir(), path.join(os.homedir(), 'hf', 'hub'))
})

test.serial('downloads into the Hugging Face cache layout and loads exactly like the folder', async (t) => {
  const hub = await FakeHub.start(t)
  const [sha] = hub.add('test-org/tiny-colbert', [modernbertRepo()])
  const cache = tempDir()
  process.env.HF_HUB_CACHE = cache // no cacheDir option: the variable decides
  const events: DownloadProgress[] = []
  const model = await ColBERT.fromPretrained('test-org/tiny-colbert', { threads: 1, onProgress: (p) => events.push(p) })
  await hub.close()

  const root = repoDir(cache, 'test-org/tiny-colbert')
  const snapshot = path.join(root, 'snapshots', sha)
  t.is(model.onnxPath, path.join(snapshot, 'model.onnx'))
  const direct = await ColBERT.fromPretrained(MODERNBERT, { threads: 1, quantized: false })
  t.deepEqual(model.config, direct.config)
  t.deepEqual(await encodeAll(model), await encodeAll(direct))

  // refs/main holds the commit; the snapshot holds relative links into blobs/, named by ETag.
  t.is(fs.readFileSync(path.join(root, 'refs', 'main'), 'utf8'), sha)
  const wanted = [
    '1_Dense',
    '1_Dense/config.json',
    'config.json',
    'config_sentence_transformers.json',
    'model.onnx',
    'modules.json',
    'sentence_bert_config.json',
    'special_tokens_map.json',
    'tokenizer.json',
    'tokenizer_config.json',
  ]
  t.deepEqual(listTree(snapshot), wanted)
  const onnx = fs.readFileSync(path.join(MODERNBERT, 'model.onnx'))
  const tokenizer = fs.readFileSync(path.join(MODERNBERT, 'tokenizer.json'))
  const dense = fs.readFileSync(path.join(MODERNBERT, '1_Dense', 'config.json'))
  t.is(fs.readlinkSync(path.join(snapshot, 'model.onnx')), `../../blobs/${sha256(onnx)}`)
  t.is(fs.readlinkSync(path.join(snapshot, 'tokenizer.json')), `../../blobs/${gitSha1(tokenizer)}`)
  t.is(fs.readlinkSync(path.join(snapshot, '1_Dense', 'config.json')), `../../../blobs/${gitSha1(dense)}`)
  const blobs = listTree(path.join(root, 'blobs'))
  t.is(blobs.length, wanted.length - 1)
  t.true(blobs.every((b) => /^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(b)), blobs.join(' ')) // no .incomplete or .lock left
  t.deepEqual(fs.readFileSync(path.join(root, 'blobs', sha256(onnx))), onnx)

  // Only what a model folder needs crossed the wire.
  for (const skipped of ['model_int8.onnx', 'model.safetensors', '1_Dense/model.safetensors', 'onnx_export.json', 'README.md', 'golden/query.f32']) {
    t.is(hub.fetched(skipped).length + hub.fetched(skipped, 'HEAD').length, 0, skipped)
  }
  t.is(hub.fetched('model.onnx').length, 1)

  // Progress: per file, byte counts only grow and end at the file's size.
  const files = new Set(events.map((e) => e.file))
  t.deepEqual([...files].sort(), wanted.filter((f) => f !== '1_Dense').sort())
  for (const file of files) {
    const list = events.filter((e) => e.file === file)
    for (let i = 1; i < list.length; i++) t.true(list[i].downloaded >= list[i - 1].downloaded && list[i].total === list[0].total, file)
    t.is(list[list.length - 1].downloaded, list[0].total, file)
  }
  t.is(events.filter((e) => e.file === 'model.onnx')[0].total, onnx.length)
})

test.serial('a cached model loads with the server down, with HF_HUB_OFFLINE=1 and with localFilesOnly', async (t) => {
  const hub = await FakeHub.start(t)
  hub.add('test-org/tiny-colbert', [modernbertRepo()])
  const cacheDir = tempDir()
  const first = await ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir, threads: 1 })
  const expected = await encodeAll(first)
  await hub.close()

  // Server stopped: the hub cannot be reached, so the cached snapshot serves.
  const down = await ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir, threads: 1 })
  t.deepEqual(await encodeAll(down), expected)

  const watcher = await FakeHub.start(t)
  watcher.add('test-org/tiny-colbert', [modernbertRepo()])
  process.env.HF_HUB_OFFLINE = '1'
  const offline = await ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir, threads: 1 })
  t.deepEqual(await encodeAll(offline), expected)
  // Offline and the int8 file was never fetched: not in the cache.
  const missing = await failure(ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir, quantized: true }))
  t.is(missing.code, 'MODEL_NOT_FOUND')
  delete process.env.HF_HUB_OFFLINE
  const local = await ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir, threads: 1, localFilesOnly: true })
  t.deepEqual(await encodeAll(local), expected)
  t.deepEqual(watcher.seen, [], 'offline calls make no request')

  // Online, quantized: true adds model_int8.onnx to the same snapshot and nothing else.
  const int8 = await ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir, quantized: true })
  t.true(int8.onnxPath.endsWith('model_int8.onnx'))
  t.is(path.dirname(int8.onnxPath), path.dirname(first.onnxPath))
  t.deepEqual(
    watcher.seen.filter((s) => s.method === 'GET').map((s) => s.server),
    ['hub', 'cdn'],
  )
})

test.serial('offline with an empty cache is MODEL_NOT_FOUND naming the cache and how to download', async (t) => {
  const cacheDir = tempDir()
  const err = await failure(ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir, localFilesOnly: true }))
  t.is(err.code, 'MODEL_NOT_FOUND')
  t.true(err.message.includes(repoDir(cacheDir, 'test-org/tiny-colbert')), err.message)
  t.regex(err.message, /not in the Hugging Face cache/)
  t.regex(err.message, /HF_HUB_OFFLINE/)
})

test.serial('a download cut half-way leaves no blob and no snapshot; the next call resumes with a Range request', async (t) => {
  const hub = await FakeHub.start(t)
  const [sha] = hub.add('test-org/tiny-colbert', [modernbertRepo()])
  const cacheDir = tempDir()
  const onnx = fs.readFileSync(path.join(MODERNBERT, 'model.onnx'))
  hub.faults.set('model.onnx', { dropAfter: 300_000, times: 1 })
  const err = await failure(ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir }))
  t.is(err.code, 'HUB_UNAVAILABLE')
  t.regex(err.message, /resumes/)
  t.regex(err.message, /HF_HUB_OFFLINE/)
  const root = repoDir(cacheDir, 'test-org/tiny-colbert')
  const blob = path.join(root, 'blobs', sha256(onnx))
  t.false(fs.existsSync(blob))
  t.is(fs.statSync(`${blob}.incomplete`).size, 300_000)
  t.false(fs.existsSync(`${blob}.lock`))
  t.deepEqual(listTree(path.join(root, 'snapshots')), [])
  t.false(fs.existsSync(path.join(root, 'refs', 'main')))
  // Nothing usable offline yet.
  t.is((await failure(ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir, localFilesOnly: true }))).code, 'MODEL_NOT_FOUND')

  const model = await ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir })
  const gets = hub.fetched('model.onnx')
  t.is(gets.length, 2)
  t.is(gets[0].range, undefined)
  t.is(gets[1].range, 'bytes=300000-')
  t.is(sha256(fs.readFileSync(blob)), sha256(onnx))
  t.false(fs.existsSync(`${blob}.incomplete`))
  t.is(model.onnxPath, path.join(root, 'snapshots', sha, 'model.onnx'))
})

test.serial('a corrupted body (right length, wrong bytes) fails the sha256 check and is not cached', async (t) => {
  const hub = await FakeHub.start(t)
  hub.add('test-org/tiny-colbert', [modernbertRepo()])
  const cacheDir = tempDir()
  hub.faults.set('model.onnx', { corrupt: true, times: 1 })
  const err = await failure(ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir }))
  t.is(err.code, 'HUB_UNAVAILABLE')
  t.regex(err.message, /sha256/)
  const root = repoDir(cacheDir, 'test-org/tiny-colbert')
  t.deepEqual(
    listTree(path.join(root, 'blobs')).filter((b) => b.length !== 40),
    [],
    'no ONNX blob, partial or lock',
  )
  t.deepEqual(listTree(path.join(root, 'snapshots')), [])
  // The next call downloads it afresh.
  await ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir })
  t.deepEqual(
    hub.fetched('model.onnx').map((s) => s.range),
    [undefined, undefined],
  )
})

test.serial('404 is MODEL_NOT_FOUND, 401 is HUB_UNAUTHORIZED, and HF_TOKEN goes to the hub as a Bearer token (never to the CDN)', async (t) => {
  const hub = await FakeHub.start(t)
  hub.add('test-org/private', [modernbertRepo()], 'hf_secret')
  const cacheDir = tempDir()

  const missing = await failure(ColBERT.fromPretrained('test-org/missing', { cacheDir }))
  t.is(missing.code, 'MODEL_NOT_FOUND')
  t.regex(missing.message, /test-org\/missing/)

  const denied = await failure(ColBERT.fromPretrained('test-org/private', { cacheDir }))
  t.is(denied.code, 'HUB_UNAUTHORIZED')
  t.regex(denied.message, /HF_TOKEN/)
  t.regex(denied.message, /licence/)

  process.env.HF_TOKEN = 'hf_secret'
  hub.seen.length = 0
  await ColBERT.fromPretrained('test-org/private', { cacheDir })
  const toHub = hub.seen.filter((s) => s.server === 'hub')
  t.true(toHub.length > 3)
  t.true(toHub.every((s) => s.authorization === 'Bearer hf_secret'))
  const toCdn = hub.seen.filter((s) => s.server === 'cdn')
  t.is(toCdn.length, 1)
  t.is(toCdn[0].authorization, undefined)

  // The token option wins over HF_TOKEN.
  const wrong = await failure(ColBERT.fromPretrained('test-org/private', { cacheDir: tempDir(), token: 'hf_wrong' }))
  t.is(wrong.code, 'HUB_UNAUTHORIZED')
})

test.serial('a 5xx or an unreachable hub with nothing cached is HUB_UNAVAILABLE and points at offline mode', async (t) => {
  const hub = await FakeHub.start(t)
  hub.add('test-org/tiny-colbert', [modernbertRepo()])
  hub.apiStatus = 503
  const busy = await failure(ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir: tempDir() }))
  t.is(busy.code, 'HUB_UNAVAILABLE')
  t.regex(busy.message, /503/)
  await hub.close()
  const gone = await failure(ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir: tempDir() }))
  t.is(gone.code, 'HUB_UNAVAILABLE')
  t.regex(gone.message, /HF_HUB_OFFLINE=1 or pass localFilesOnly/)
})

test.serial('a repository without ONNX weights falls back to its -onnx companion, online and offline', async (t) => {
  const hub = await FakeHub.start(t)
  hub.add('test-org/pylate-model', [withoutOnnx(modernbertRepo())])
  const [companionSha] = hub.add('test-org/pylate-model-onnx', [readFolder(ONNX_EXPORT)])
  const cacheDir = tempDir()
  const model = await ColBERT.fromPretrained('test-org/pylate-model', { cacheDir, threads: 1 })
  t.is(model.onnxPath, path.join(repoDir(cacheDir, 'test-org/pylate-model-onnx'), 'snapshots', companionSha, 'model.onnx'))
  t.false(model.config.doQueryExpansion) // onnx_config.json of pylate-onnx-export
  const direct = await ColBERT.fromPretrained(ONNX_EXPORT, { threads: 1 })
  const expected = await encodeAll(direct)
  t.deepEqual(await encodeAll(model), expected)
  t.false(fs.existsSync(repoDir(cacheDir, 'test-org/pylate-model')), 'nothing of the PyTorch repository is downloaded')
  await hub.close()

  process.env.HF_HUB_OFFLINE = 'true'
  const offline = await ColBERT.fromPretrained('test-org/pylate-model', { cacheDir, threads: 1 })
  t.deepEqual(await encodeAll(offline), expected)
})

test.serial('a repository with no ONNX weights and no companion is MODEL_NOT_ONNX, with the export hint', async (t) => {
  const hub = await FakeHub.start(t)
  hub.add('test-org/pytorch-only', [withoutOnnx(modernbertRepo())])
  const err = await failure(ColBERT.fromPretrained('test-org/pytorch-only', { cacheDir: tempDir() }))
  t.is(err.code, 'MODEL_NOT_ONNX')
  t.regex(err.message, /tools\/export_onnx\.py/)
  t.regex(err.message, /test-org\/pytorch-only-onnx/)
})

test.serial('revision pins a commit: its own snapshot, no ref, shared blobs, and no network once cached', async (t) => {
  const hub = await FakeHub.start(t)
  const old = modernbertRepo()
  const settings = JSON.parse(old.get('config_sentence_transformers.json')!.toString())
  old.set('config_sentence_transformers.json', Buffer.from(JSON.stringify({ ...settings, query_length: 24 })))
  const [oldSha, mainSha] = hub.add('test-org/versioned', [old, modernbertRepo()])
  const cacheDir = tempDir()
  const root = repoDir(cacheDir, 'test-org/versioned')

  const pinned = await ColBERT.fromPretrained('test-org/versioned', { cacheDir, revision: oldSha })
  t.is(pinned.config.queryLength, 24)
  t.is(path.dirname(pinned.onnxPath), path.join(root, 'snapshots', oldSha))
  t.false(fs.existsSync(path.join(root, 'refs')))
  t.true(hub.seen.some((s) => s.path === `/api/models/test-org/versioned/revision/${oldSha}`))

  const latest = await ColBERT.fromPretrained('test-org/versioned', { cacheDir })
  t.is(latest.config.queryLength, 32)
  t.is(fs.readFileSync(path.join(root, 'refs', 'main'), 'utf8'), mainSha)
  t.is(hub.fetched('model.onnx').length, 1, 'the ONNX blob is shared by both commits')

  hub.seen.length = 0
  const again = await ColBERT.fromPretrained('test-org/versioned', { cacheDir, revision: oldSha })
  t.is(again.config.queryLength, 24)
  t.deepEqual(hub.seen, [])

  const bad = await failure(ColBERT.fromPretrained('test-org/versioned', { cacheDir, revision: 'no-such-branch' }))
  t.is(bad.code, 'MODEL_NOT_FOUND')
  t.regex(bad.message, /no-such-branch/)
})

test.serial('where symlinks fail (Windows without the privilege), snapshot files are copies', async (t) => {
  const hub = await FakeHub.start(t)
  const [sha] = hub.add('test-org/tiny-colbert', [modernbertRepo()])
  const cacheDir = tempDir()
  const symlink = fs.promises.symlink
  fs.promises.symlink = async () => {
    throw Object.assign(new Error('EPERM: operation not permitted, symlink'), { code: 'EPERM' })
  }
  t.teardown(() => {
    fs.promises.symlink = symlink
  })
  const model = await ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir, threads: 1 })
  fs.promises.symlink = symlink
  const snapshot = path.join(repoDir(cacheDir, 'test-org/tiny-colbert'), 'snapshots', sha)
  const pointer = path.join(snapshot, 'model.onnx')
  t.false(fs.lstatSync(pointer).isSymbolicLink())
  t.deepEqual(fs.readFileSync(pointer), fs.readFileSync(path.join(MODERNBERT, 'model.onnx')))
  t.false(fs.lstatSync(path.join(snapshot, '1_Dense', 'config.json')).isSymbolicLink())
  const direct = await ColBERT.fromPretrained(MODERNBERT, { threads: 1, quantized: false })
  t.deepEqual(await encodeAll(model), await encodeAll(direct))
})

test.serial('concurrent calls download each file once; a stale lock is taken over', async (t) => {
  const hub = await FakeHub.start(t)
  hub.add('test-org/tiny-colbert', [modernbertRepo()])
  const cacheDir = tempDir()
  const root = repoDir(cacheDir, 'test-org/tiny-colbert')
  // A lock left behind by a process that stopped refreshing it long ago.
  const onnx = fs.readFileSync(path.join(MODERNBERT, 'model.onnx'))
  const lock = path.join(root, 'blobs', `${sha256(onnx)}.lock`)
  fs.mkdirSync(path.dirname(lock), { recursive: true })
  fs.writeFileSync(lock, 'another-host 12345\n')
  const old = new Date(Date.now() - 3_600_000)
  fs.utimesSync(lock, old, old)

  const models = await Promise.all([1, 2, 3].map(() => ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir })))
  t.true(models.every((m) => m.onnxPath === models[0].onnxPath))
  t.is(hub.fetched('model.onnx').length, 1)
  t.is(hub.fetched('tokenizer.json').length, 1)
  t.deepEqual(
    listTree(path.join(root, 'blobs')).filter((b) => /\./.test(b)),
    [],
    'no lock or partial left',
  )
})

test.serial('a throwing onProgress only warns', async (t) => {
  const hub = await FakeHub.start(t)
  hub.add('test-org/tiny-colbert', [modernbertRepo()])
  const warnings: string[] = []
  const onWarning = (w: Error) => warnings.push(w.message)
  process.on('warning', onWarning)
  try {
    const model = await ColBERT.fromPretrained('test-org/tiny-colbert', {
      cacheDir: tempDir(),
      onProgress: () => {
        throw new Error('boom')
      },
    })
    t.is(model.config.dim, 32)
    await new Promise((resolve) => setImmediate(resolve))
    t.is(warnings.filter((w) => /onProgress threw/.test(w)).length, 1)
  } finally {
    process.off('warning', onWarning)
  }
})

test.serial('an AbortSignal aborts with ABORTED, before any request or during a download', async (t) => {
  const hub = await FakeHub.start(t)
  hub.add('test-org/tiny-colbert', [modernbertRepo()])
  const cacheDir = tempDir()
  const early = await failure(ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir, signal: AbortSignal.abort() }))
  t.is(early.code, 'ABORTED')
  t.deepEqual(hub.seen, [])

  hub.faults.set('model.onnx', { stallAfter: 100_000, times: 1 })
  const controller = new AbortController()
  const err = await failure(
    ColBERT.fromPretrained('test-org/tiny-colbert', {
      cacheDir,
      signal: controller.signal,
      onProgress: ({ file }) => {
        if (file === 'model.onnx') setTimeout(() => controller.abort(), 50)
      },
    }),
  )
  t.is(err.code, 'ABORTED')
  const root = repoDir(cacheDir, 'test-org/tiny-colbert')
  t.deepEqual(listTree(path.join(root, 'snapshots')), [])
  t.deepEqual(
    listTree(path.join(root, 'blobs')).filter((b) => b.endsWith('.lock')),
    [],
  )
  // The part is kept and the next call finishes the job.
  const model = await ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir })
  t.is(model.config.dim, 32)
})

test.serial('a folder on disk wins over the hub; bad hub options are INVALID_ARGUMENT', async (t) => {
  const hub = await FakeHub.start(t)
  // `models/minilm-colbert` is shaped like a hub id but exists (relative to the repository root).
  const local = await ColBERT.fromPretrained('models/minilm-colbert')
  t.true(fs.existsSync(local.onnxPath))
  t.deepEqual(hub.seen, [])
  t.is((await failure(ColBERT.fromPretrained('test-org/x', { revision: '../main' }))).code, 'INVALID_ARGUMENT')
  t.is((await failure(ColBERT.fromPretrained('test-org/x', { cacheDir: 3 as unknown as string }))).code, 'INVALID_ARGUMENT')
  t.is((await failure(ColBERT.fromPretrained('test-org/x', { localFilesOnly: 'yes' as unknown as boolean }))).code, 'INVALID_ARGUMENT')
  t.is((await failure(ColBERT.fromPretrained('test-org/x', { onProgress: 1 as unknown as () => void }))).code, 'INVALID_ARGUMENT')
  t.deepEqual(hub.seen, [])
})
