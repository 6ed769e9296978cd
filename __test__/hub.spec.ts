// Hugging Face hub downloads, against a local fake hub (node:http) serving the fixture models under
// the hub's URLs: a resolve endpoint with ETag / X-Repo-Commit headers and an LFS-style redirect
// to a separate "CDN" origin for ONNX files. No network. Every test is serial: they set
// HF_ENDPOINT and other HF_* variables, which the hub code reads at call time. The concurrency
// tests run huggingface_hub's download procedure in a second process (python_like_writer.mjs).
import { spawn, spawnSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'

import test, { type ExecutionContext } from 'ava'

import { ColBERT, ColbertError, type DownloadProgress } from '../index'
import { blobLockPath, hubCacheDir, hubToken, hubTokenPath } from '../src/hub'
import { native } from '../src/native'
import { FIXTURES } from './helpers'

const MODERNBERT = path.join(FIXTURES, 'tiny-modernbert')
const ONNX_EXPORT = path.join(FIXTURES, 'tiny-modernbert-onnx-export')
const TEXTS = ['ColBERT scores a query against a document token by token.', 'Bananas are yellow.', 'what is late interaction?']
const HF_VARS = [
  'HF_ENDPOINT',
  'HF_TOKEN',
  'HUGGING_FACE_HUB_TOKEN',
  'HF_TOKEN_PATH',
  'HF_HUB_DISABLE_IMPLICIT_TOKEN',
  'HF_HUB_OFFLINE',
  'HF_HUB_CACHE',
  'HF_HOME',
  'XDG_CACHE_HOME',
]
const REPO = 'test-org/tiny-colbert'
const WRITER = path.join(__dirname, 'python_like_writer.mjs')
const WRITER_AGENT = 'python-like-writer'

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
  /** Sends this many bytes, calls `onHold`, and sends the rest once `until` settles. */
  holdAfter?: number
  until?: Promise<unknown>
  onHold?: () => void
  times: number
}

interface Seen {
  server: 'hub' | 'cdn'
  method: string
  path: string
  range?: string
  authorization?: string
  agent?: string
}

class FakeHub {
  readonly repos = new Map<string, Repo>()
  readonly faults = new Map<string, Fault>()
  readonly seen: Seen[] = []
  /** What the CDN serves, by content hash: LFS files, and the others when `redirectGets`. */
  readonly lfs = new Map<string, { file: string; data: Buffer }>()
  apiStatus: number | undefined
  /** When set, the resolve endpoint (HEAD and GET) answers this status. */
  resolveStatus: number | undefined
  /** GETs of non-LFS files redirect to the CDN too (HEADs still answer with the metadata). */
  redirectGets = false
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
      for (const [file, data] of files) this.lfs.set(isLfs(file) ? sha256(data) : gitSha1(data), { file, data })
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
    this.seen.push({
      server,
      method: req.method!,
      path: decodeURIComponent(req.url!),
      range: req.headers.range,
      authorization: req.headers.authorization,
      agent: req.headers['user-agent'],
    })
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
    if (this.resolveStatus) return void res.writeHead(this.resolveStatus).end()
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
    if (this.redirectGets && req.method === 'GET') {
      return void res.writeHead(302, { location: `${this.cdnUrl}/lfs/${gitSha1(data)}`, 'content-length': '0' }).end()
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
  // Cut the connection once the bytes are flushed, after a pause so the client reads them first: a reset
  // arriving with bytes still unread makes the kernel discard them, and the client keeps fewer.
  if (fault?.dropAfter !== undefined) {
    return void res.write(body.subarray(0, fault.dropAfter), () => setTimeout(() => res.destroy(), 200))
  }
  if (fault?.stallAfter !== undefined) return void res.write(body.subarray(0, fault.stallAfter))
  if (fault?.holdAfter !== undefined) {
    const at = fault.holdAfter
    res.write(body.subarray(0, at), () => fault.onHold?.())
    void fault.until?.then(() => res.end(body.subarray(at)))
    return
  }
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
  // A developer's own `hf auth login` must not leak into the tests.
  process.env.HF_TOKEN_PATH = path.join(os.tmpdir(), 'colbert-hub-spec-no-token', 'token')
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

/** Every blob is named by its hash and hashes to its name; nothing partial is left. */
function assertBlobsIntact(t: ExecutionContext, root: string): string[] {
  const blobs = listTree(path.join(root, 'blobs'))
  t.deepEqual(
    blobs.filter((b) => !/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(b)),
    [],
    'only final blobs',
  )
  for (const b of blobs) {
    const data = fs.readFileSync(path.join(root, 'blobs', b))
    t.is(b.length === 64 ? sha256(data) : gitSha1(data), b, `blob ${b}`)
  }
  return blobs
}

interface WriterJob {
  file: string
  lock: string
  blob: string
  url: string
  size: number
}

/** What huggingface_hub would fetch for `files` of a commit, and where it would lock and write. */
function writerJobs(hub: FakeHub, cacheDir: string, repo: string, sha: string, files: string[]): WriterJob[] {
  return files.map((file) => {
    const data = hub.repos.get(repo)!.commits.get(sha)!.get(file)!
    const etag = isLfs(file) ? sha256(data) : gitSha1(data)
    return {
      file,
      lock: path.join(cacheDir, '.locks', `models--${repo.replace('/', '--')}`, `${etag}.lock`),
      blob: path.join(repoDir(cacheDir, repo), 'blobs', etag),
      url: isLfs(file) ? `${hub.cdnUrl}/lfs/${etag}` : `${hub.url}/${repo}/resolve/${sha}/${file}`,
      size: data.length,
    }
  })
}

interface WriterEvent {
  event: 'waiting' | 'locked' | 'exists' | 'writing' | 'done'
  file: string
}

/** huggingface_hub's download procedure in a second process; killed when the test ends. */
function startWriter(t: ExecutionContext, jobs: WriterJob[], pace = { chunk: 8192, delayMs: 10 }) {
  for (const job of jobs) fs.mkdirSync(path.dirname(job.blob), { recursive: true })
  const child = spawn(process.execPath, [WRITER, JSON.stringify({ jobs, ...pace, agent: WRITER_AGENT })], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const events: WriterEvent[] = []
  const waiters: Array<{ match: (e: WriterEvent) => boolean; resolve: () => void }> = []
  let stderr = ''
  let buffered = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString()
    let nl: number
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const event = JSON.parse(buffered.slice(0, nl)) as WriterEvent
      buffered = buffered.slice(nl + 1)
      events.push(event)
      for (const w of waiters.filter((w) => w.match(event))) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve()
      }
    }
  })
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  return {
    events,
    exit,
    stderr: () => stderr,
    /** Resolves at the first event that matches (or when the writer exits). */
    until(match: (e: WriterEvent) => boolean): Promise<void> {
      if (events.some(match)) return Promise.resolve()
      return Promise.race([new Promise<void>((resolve) => waiters.push({ match, resolve })), exit.then(() => undefined)])
    },
  }
}

const ours = (seen: Seen[]) => seen.filter((s) => s.agent !== WRITER_AGENT)
const theirs = (seen: Seen[]) => seen.filter((s) => s.agent === WRITER_AGENT)

/** Whether a lock file is free: we can take (and give back) the lock at once. */
function lockFree(file: string): boolean {
  const lock = native.tryLockFile(file)
  lock?.release()
  return lock !== null
}

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
  // What the client kept is what it read before the cut: all 300,000 bytes unless the reset overtook some.
  const kept = fs.statSync(`${blob}.incomplete`).size
  t.true(kept > 0 && kept <= 300_000, `kept ${kept} bytes`)
  t.false(fs.existsSync(`${blob}.lock`))
  t.deepEqual(listTree(path.join(root, 'snapshots')), [])
  t.false(fs.existsSync(path.join(root, 'refs', 'main')))
  // Nothing usable offline yet.
  t.is((await failure(ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir, localFilesOnly: true }))).code, 'MODEL_NOT_FOUND')

  const model = await ColBERT.fromPretrained('test-org/tiny-colbert', { cacheDir })
  const gets = hub.fetched('model.onnx')
  t.is(gets.length, 2)
  t.is(gets[0].range, undefined)
  t.is(gets[1].range, `bytes=${kept}-`)
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
  // It may have been meant as a relative folder: the message says it is not one either.
  t.true(missing.message.includes(`is not a folder on disk (${path.resolve('test-org/missing')}; write ./test-org/missing`), missing.message)
  t.true(missing.message.includes('looked up on the Hugging Face hub'), missing.message)

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

test.serial("concurrent calls download each file once, under huggingface_hub's lock files, which stay behind unlocked", async (t) => {
  const hub = await FakeHub.start(t)
  hub.add(REPO, [modernbertRepo()])
  const cacheDir = tempDir()
  const root = repoDir(cacheDir, REPO)
  // The lock file older versions of this package made (blobs/<etag>.lock) means nothing now.
  const onnx = fs.readFileSync(path.join(MODERNBERT, 'model.onnx'))
  const oldLock = path.join(root, 'blobs', `${sha256(onnx)}.lock`)
  fs.mkdirSync(path.dirname(oldLock), { recursive: true })
  fs.writeFileSync(oldLock, `${os.hostname()} ${process.pid}\n`)

  const models = await Promise.all([1, 2, 3].map(() => ColBERT.fromPretrained(REPO, { cacheDir })))
  t.true(models.every((m) => m.onnxPath === models[0].onnxPath))
  t.is(hub.fetched('model.onnx').length, 1)
  t.is(hub.fetched('tokenizer.json').length, 1)
  fs.rmSync(oldLock)
  const blobs = assertBlobsIntact(t, root)
  const locks = path.join(cacheDir, '.locks', 'models--test-org--tiny-colbert')
  t.deepEqual(listTree(locks), blobs.map((b) => `${b}.lock`).sort())
  t.is(blobLockPath(cacheDir, REPO, sha256(onnx)), path.join(locks, `${sha256(onnx)}.lock`))
  t.true(
    listTree(locks).every((l) => lockFree(path.join(locks, l))),
    'every lock was released',
  )
})

test.serial('our lock is a flock: the util-linux flock command sees it, and we see its lock', async (t) => {
  const flock = spawnSync('flock', ['--version'])
  if (flock.error) {
    t.log('no flock command here: skipped')
    t.pass()
    return
  }
  const file = path.join(tempDir(), '.locks', 'models--a--b', 'x.lock')
  const held = native.tryLockFile(file)
  t.truthy(held)
  t.is(spawnSync('flock', ['--nonblock', '--conflict-exit-code', '75', file, 'true']).status, 75)
  held!.release()
  t.is(spawnSync('flock', ['--nonblock', file, 'true']).status, 0)
  // flock(1) holding it (as Python's filelock would): we are refused until it lets go.
  // In a process group of its own: `sleep` inherits the locked descriptor, so both must go.
  const holder = spawn('flock', [file, 'sleep', '30'], { stdio: 'ignore', detached: true })
  const killHolder = () => {
    try {
      process.kill(-holder.pid!, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  t.teardown(killHolder)
  const deadline = Date.now() + 10_000
  let taken: ReturnType<typeof native.tryLockFile> = null
  while (Date.now() < deadline) {
    taken = native.tryLockFile(file)
    if (!taken) break
    taken.release()
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.is(taken, null, 'refused while flock(1) holds it')
  killHolder()
  await new Promise((resolve) => holder.on('close', resolve))
  const until = Date.now() + 10_000
  while (!lockFree(file) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20))
  t.true(lockFree(file))
})

test.serial("a Python-shaped download holding huggingface_hub's lock makes us wait and use its blob (Python first)", async (t) => {
  const hub = await FakeHub.start(t)
  const [sha] = hub.add(REPO, [modernbertRepo()])
  const cacheDir = tempDir()
  const root = repoDir(cacheDir, REPO)
  const writer = startWriter(t, writerJobs(hub, cacheDir, REPO, sha, ['tokenizer.json', 'model.onnx']))
  // It holds the lock of tokenizer.json and is appending to its .incomplete file.
  await writer.until((e) => e.event === 'writing' && e.file === 'tokenizer.json')
  const model = await ColBERT.fromPretrained(REPO, { cacheDir, threads: 1 })
  t.is(await writer.exit, 0, writer.stderr())

  // We never wrote to the file it was appending to: no download of ours for tokenizer.json.
  t.deepEqual(ours(hub.fetched('tokenizer.json')), [])
  t.true(writer.events.some((e) => e.event === 'done' && e.file === 'tokenizer.json'))
  t.is(writer.events.filter((e) => e.file === 'model.onnx' && (e.event === 'done' || e.event === 'exists')).length, 1)
  t.is(hub.fetched('model.onnx').length, 1, 'model.onnx came down once, by one of the two')
  assertBlobsIntact(t, root)
  // Both loads: ours, online and offline, and the files the other client would open.
  const direct = await ColBERT.fromPretrained(MODERNBERT, { threads: 1, quantized: false })
  t.deepEqual(await encodeAll(model), await encodeAll(direct))
  const offline = await ColBERT.fromPretrained(REPO, { cacheDir, threads: 1, localFilesOnly: true })
  t.deepEqual(await encodeAll(offline), await encodeAll(direct))
  for (const job of writerJobs(hub, cacheDir, REPO, sha, ['tokenizer.json', 'model.onnx'])) {
    t.deepEqual(fs.readFileSync(job.blob), fs.readFileSync(path.join(MODERNBERT, job.file)), job.file)
  }
})

test.serial('a Python-shaped download started while ours runs waits for our lock and uses our blob (Node first)', async (t) => {
  const hub = await FakeHub.start(t)
  const [sha] = hub.add(REPO, [modernbertRepo()])
  const cacheDir = tempDir()
  const root = repoDir(cacheDir, REPO)
  const jobs = writerJobs(hub, cacheDir, REPO, sha, ['model.onnx'])
  let release!: () => void
  const until = new Promise<void>((resolve) => (release = resolve))
  let writer: ReturnType<typeof startWriter> | undefined
  // Our download of model.onnx stops half-way until the other process is up and blocked (or,
  // were it not excluded, writing into our .incomplete file).
  hub.faults.set('model.onnx', {
    holdAfter: 600_000,
    until,
    times: 1,
    onHold: () => {
      writer = startWriter(t, jobs)
      void writer.until((e) => e.event === 'waiting' || e.event === 'writing').then(release)
    },
  })
  const model = await ColBERT.fromPretrained(REPO, { cacheDir, threads: 1 })
  t.truthy(writer)
  t.is(await writer!.exit, 0, writer!.stderr())
  t.deepEqual(
    writer!.events.map((e) => e.event),
    ['waiting', 'locked', 'exists'],
  )
  t.deepEqual(theirs(hub.seen), [], 'the other process downloaded nothing')
  assertBlobsIntact(t, root)
  t.deepEqual(fs.readFileSync(jobs[0].blob), fs.readFileSync(path.join(MODERNBERT, 'model.onnx')))
  const direct = await ColBERT.fromPretrained(MODERNBERT, { threads: 1, quantized: false })
  t.deepEqual(await encodeAll(model), await encodeAll(direct))
})

test.serial('waiting for a lock blocks no timer, and an AbortSignal ends the wait with the lock untouched', async (t) => {
  const hub = await FakeHub.start(t)
  const [sha] = hub.add(REPO, [modernbertRepo()])
  const cacheDir = tempDir()
  const [job] = writerJobs(hub, cacheDir, REPO, sha, ['tokenizer.json'])
  const held = native.tryLockFile(job.lock)! // another holder: this test's own handle
  t.teardown(() => held.release())
  let ticks = 0
  const timer = setInterval(() => ticks++, 10)
  const controller = new AbortController()
  setTimeout(() => controller.abort(), 500)
  const err = await failure(ColBERT.fromPretrained(REPO, { cacheDir, signal: controller.signal }))
  clearInterval(timer)
  t.is(err.code, 'ABORTED')
  t.true(ticks >= 20, `the event loop ran ${ticks} timer ticks while we waited`)
  t.deepEqual(ours(hub.fetched('tokenizer.json')), [])
  t.false(fs.existsSync(`${job.blob}.incomplete`))
  held.release()
  // Once the holder lets go, a call goes through.
  const model = await ColBERT.fromPretrained(REPO, { cacheDir })
  t.is(model.config.dim, 32)
})

test.serial('a leftover .incomplete with wrong bytes is resumed, caught by hashing the file on disk, and downloaded again', async (t) => {
  const hub = await FakeHub.start(t)
  hub.add(REPO, [modernbertRepo()])
  const cacheDir = tempDir()
  const root = repoDir(cacheDir, REPO)
  const onnx = fs.readFileSync(path.join(MODERNBERT, 'model.onnx'))
  const partial = path.join(root, 'blobs', `${sha256(onnx)}.incomplete`)
  fs.mkdirSync(path.dirname(partial), { recursive: true })
  fs.writeFileSync(partial, bytes(Buffer.alloc(1000, 7))) // not a prefix of the file
  await ColBERT.fromPretrained(REPO, { cacheDir })
  t.deepEqual(
    hub.fetched('model.onnx').map((s) => s.range),
    ['bytes=1000-', undefined],
  )
  assertBlobsIntact(t, root)
})

test.serial('when the hub lists the repository but cannot describe its files, the cached snapshot serves', async (t) => {
  const hub = await FakeHub.start(t)
  const [sha] = hub.add(REPO, [modernbertRepo()])
  const cacheDir = tempDir()
  await ColBERT.fromPretrained(REPO, { cacheDir })
  hub.resolveStatus = 503
  const model = await ColBERT.fromPretrained(REPO, { cacheDir, threads: 1 })
  t.is(model.onnxPath, path.join(repoDir(cacheDir, REPO), 'snapshots', sha, 'model.onnx'))
  // Nothing cached: the 503 is the answer.
  const err = await failure(ColBERT.fromPretrained(REPO, { cacheDir: tempDir() }))
  t.is(err.code, 'HUB_UNAVAILABLE')
  t.regex(err.message, /503/)
})

test.serial('online, a cached blob whose size differs from the hub is downloaded again', async (t) => {
  const hub = await FakeHub.start(t)
  const [sha] = hub.add(REPO, [modernbertRepo()])
  const cacheDir = tempDir()
  await ColBERT.fromPretrained(REPO, { cacheDir })
  const root = repoDir(cacheDir, REPO)
  const [tokenizer, onnx] = writerJobs(hub, cacheDir, REPO, sha, ['tokenizer.json', 'model.onnx'])
  // What two writers at once left behind: one file too long, one too short.
  fs.appendFileSync(tokenizer.blob, '{"more": 1}')
  fs.truncateSync(onnx.blob, 1000)
  hub.seen.length = 0
  const model = await ColBERT.fromPretrained(REPO, { cacheDir, threads: 1 })
  t.is(ours(hub.fetched('tokenizer.json')).length, 1)
  t.is(ours(hub.fetched('model.onnx')).length, 1)
  assertBlobsIntact(t, root)
  t.is(model.onnxPath, path.join(root, 'snapshots', sha, 'model.onnx'))
})

test.serial('a corrupt blob of the right size: offline it is MODEL_INVALID naming the file and removed; online it is repaired', async (t) => {
  const hub = await FakeHub.start(t)
  const [sha] = hub.add(REPO, [modernbertRepo()])
  const cacheDir = tempDir()
  await ColBERT.fromPretrained(REPO, { cacheDir })
  const root = repoDir(cacheDir, REPO)
  const [tokenizer] = writerJobs(hub, cacheDir, REPO, sha, ['tokenizer.json'])
  const good = fs.readFileSync(tokenizer.blob)
  const corrupt = () => {
    const bad = Buffer.alloc(good.length)
    good.copy(bytes(bad))
    bad.fill(0, 100, 200) // same size, no longer valid JSON
    fs.writeFileSync(tokenizer.blob, bytes(bad))
  }

  corrupt()
  const err = await failure(ColBERT.fromPretrained(REPO, { cacheDir, localFilesOnly: true }))
  t.is(err.code, 'MODEL_INVALID')
  t.true(err.message.includes('tokenizer.json') && err.message.includes(tokenizer.blob), err.message)
  t.regex(err.message, /git blob sha1/)
  t.regex(err.message, /network access/)
  t.false(fs.existsSync(tokenizer.blob), 'removed, so Python does not use it either')
  t.is((await failure(ColBERT.fromPretrained(REPO, { cacheDir, localFilesOnly: true }))).code, 'MODEL_NOT_FOUND')

  // Online, the missing blob comes back.
  await ColBERT.fromPretrained(REPO, { cacheDir, threads: 1 })
  t.deepEqual(fs.readFileSync(tokenizer.blob), good)

  // Online with the same corruption: the failed load re-hashes, downloads it again and loads.
  corrupt()
  hub.seen.length = 0
  const repaired = await ColBERT.fromPretrained(REPO, { cacheDir, threads: 1 })
  t.is(repaired.config.dim, 32)
  t.is(ours(hub.fetched('tokenizer.json')).length, 1)
  assertBlobsIntact(t, root)
  // Even pinned to a commit already in the cache (no request until the load fails).
  corrupt()
  hub.seen.length = 0
  const pinned = await ColBERT.fromPretrained(REPO, { cacheDir, threads: 1, revision: sha })
  t.is(pinned.config.dim, 32)
  t.is(ours(hub.fetched('tokenizer.json')).length, 1)
  assertBlobsIntact(t, root)
})

test.serial('a saved token file alone authenticates, as huggingface_hub reads it; never sent to another host', async (t) => {
  const hub = await FakeHub.start(t)
  hub.add('test-org/private', [modernbertRepo()], 'hf_secret')
  hub.redirectGets = true // every download leaves the hub's origin
  const home = tempDir()
  delete process.env.HF_TOKEN_PATH
  process.env.HF_HOME = home
  fs.writeFileSync(path.join(home, 'token'), '  hf_secret\r\n')
  t.is(hubTokenPath(), path.join(home, 'token'))
  t.deepEqual(hubToken(), { token: 'hf_secret', source: `the token file ${path.join(home, 'token')}` })

  const cacheDir = tempDir()
  const model = await ColBERT.fromPretrained('test-org/private', { cacheDir, threads: 1 })
  t.is(model.config.dim, 32)
  const toHub = hub.seen.filter((s) => s.server === 'hub')
  t.true(toHub.length > 3)
  t.true(toHub.every((s) => s.authorization === 'Bearer hf_secret'))
  const toCdn = hub.seen.filter((s) => s.server === 'cdn')
  t.true(toCdn.length > 3, 'config files came through the redirect too')
  t.true(toCdn.every((s) => s.authorization === undefined))

  // HF_TOKEN_PATH points elsewhere; HF_TOKEN and HUGGING_FACE_HUB_TOKEN come first, in that order.
  const elsewhere = path.join(tempDir(), 'my-token')
  fs.writeFileSync(elsewhere, 'hf_from_path\n')
  process.env.HF_TOKEN_PATH = elsewhere
  t.is(hubToken()?.token, 'hf_from_path')
  process.env.HUGGING_FACE_HUB_TOKEN = 'hf_legacy'
  t.deepEqual(hubToken(), { token: 'hf_legacy', source: 'HUGGING_FACE_HUB_TOKEN' })
  process.env.HF_TOKEN = ' hf_env\n'
  t.deepEqual(hubToken(), { token: 'hf_env', source: 'HF_TOKEN' })
  t.deepEqual(hubToken('hf_option'), { token: 'hf_option', source: 'the token option' })
  process.env.HF_HUB_DISABLE_IMPLICIT_TOKEN = '1'
  t.is(hubToken(), undefined)
  t.is(hubToken('hf_option')?.token, 'hf_option')
  delete process.env.HF_TOKEN
  delete process.env.HUGGING_FACE_HUB_TOKEN

  // Only the file, but implicit tokens are disabled: refused, and the message says where tokens come from.
  process.env.HF_TOKEN_PATH = path.join(home, 'token')
  const denied = await failure(ColBERT.fromPretrained('test-org/private', { cacheDir: tempDir() }))
  t.is(denied.code, 'HUB_UNAUTHORIZED')
  t.regex(denied.message, /hf auth login/)
  delete process.env.HF_HUB_DISABLE_IMPLICIT_TOKEN
  // A wrong saved token: the message names the file it came from.
  fs.writeFileSync(path.join(home, 'token'), 'hf_wrong')
  const wrong = await failure(ColBERT.fromPretrained('test-org/private', { cacheDir: tempDir() }))
  t.is(wrong.code, 'HUB_UNAUTHORIZED')
  t.true(wrong.message.includes(path.join(home, 'token')), wrong.message)
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
  const locks = path.join(cacheDir, '.locks', 'models--test-org--tiny-colbert')
  t.true(listTree(locks).length > 0)
  t.true(
    listTree(locks).every((l) => lockFree(path.join(locks, l))),
    'the abort released the lock',
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
