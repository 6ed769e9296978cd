// Hugging Face hub downloads for `ColBERT.fromPretrained('org/name')`: the files a model folder
// needs are fetched into the Hugging Face cache, in huggingface_hub's layout, so Python and Node
// share one cache:
//
//   <cache>/models--org--name/blobs/<etag>                    file contents, named by their ETag
//   <cache>/models--org--name/snapshots/<commit>/<path>       relative symlinks into blobs/ (copies where links fail)
//   <cache>/models--org--name/refs/<revision>                 the commit a branch or tag pointed to
//
// Downloads are atomic (`blobs/<etag>.incomplete`, renamed when complete and verified), resumable
// (a leftover `.incomplete` continues with an HTTP Range request) and checked against the size and
// ETag the hub announced (sha256 for LFS files, the git blob sha1 for the others). Snapshot links
// are only made once every file of a call is in blobs/, so an interrupted call leaves no partial
// snapshot.
import crypto from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

import { abortError, ColbertError, invalidArgument } from './errors'
import { guard } from './progress'
import { processAlive } from './pid'

/** One progress event of a download, in bytes. Files already in the cache report nothing. */
export interface DownloadProgress {
  /** The file's path in the repository, e.g. `model.onnx`. */
  file: string
  downloaded: number
  total: number
}

/** The hub options of `ColBERT.fromPretrained` (ignored for a folder on disk). */
export interface HubOptions {
  /** Branch, tag or commit sha (default `main`). */
  revision?: string
  /** The cache folder (default: `HF_HUB_CACHE`, `HF_HOME/hub`, `XDG_CACHE_HOME/huggingface/hub`, `~/.cache/huggingface/hub`). */
  cacheDir?: string
  /** Use the cache only, never the network (as `HF_HUB_OFFLINE=1`). */
  localFilesOnly?: boolean
  /** Access token (default: `HF_TOKEN`). */
  token?: string
  /** Which ONNX file to fetch: as the `quantized` option of `fromPretrained`. */
  quantized?: boolean
  signal?: AbortSignal
  /** Called as files download. A callback that throws is reported as a warning and ignored. */
  onProgress?: (progress: DownloadProgress) => void
}

const DEFAULT_ENDPOINT = 'https://huggingface.co'
/** Settings and tokenizer files a model folder may use (see crates/colbert-encode/src/config.rs). */
const CONFIG_FILES = [
  'config.json',
  'config_sentence_transformers.json',
  'sentence_bert_config.json',
  'modules.json',
  'onnx_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
]
const FP32 = 'model.onnx'
const INT8 = 'model_int8.onnx'
const COMMIT = /^[0-9a-f]{40}$/
const SHA256 = /^[0-9a-f]{64}$/
const PROGRESS_INTERVAL_MS = 100
const LOCK_POLL_MS = 100
const LOCK_REFRESH_MS = 5_000
const LOCK_STALE_MS = 30_000
const OFFLINE_HINT = 'set HF_HUB_OFFLINE=1 or pass localFilesOnly: true to use a model already in the cache'

type Env = Record<string, string | undefined>

function envValue(env: Env, name: string): string | undefined {
  const value = env[name]
  return value === undefined || value === '' ? undefined : value
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') || p.startsWith('~\\') ? path.join(os.homedir(), p.slice(1)) : p
}

/** The hub cache folder: `HF_HUB_CACHE`, `HF_HOME/hub`, `XDG_CACHE_HOME/huggingface/hub`, `~/.cache/huggingface/hub`. */
export function hubCacheDir(env: Env = process.env): string {
  const hubCache = envValue(env, 'HF_HUB_CACHE')
  if (hubCache) return path.resolve(expandHome(hubCache))
  const home = envValue(env, 'HF_HOME')
  if (home) return path.resolve(expandHome(home), 'hub')
  const xdg = envValue(env, 'XDG_CACHE_HOME')
  if (xdg) return path.resolve(expandHome(xdg), 'huggingface', 'hub')
  return path.join(os.homedir(), '.cache', 'huggingface', 'hub')
}

/** `HF_ENDPOINT` without a trailing slash, default https://huggingface.co. */
export function hubEndpoint(env: Env = process.env): string {
  return (envValue(env, 'HF_ENDPOINT') ?? DEFAULT_ENDPOINT).replace(/\/+$/, '')
}

/** `HF_HUB_OFFLINE` set to 1, on, yes or true (as huggingface_hub reads it). */
export function hubOffline(env: Env = process.env): boolean {
  return ['1', 'ON', 'YES', 'TRUE'].includes((env.HF_HUB_OFFLINE ?? '').trim().toUpperCase())
}

/** Whether a string is shaped like a hub model id, `org/name`. */
export function isRepoId(name: string): boolean {
  return (
    name.length <= 200 &&
    /^[A-Za-z0-9][A-Za-z0-9_.-]*\/[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name) &&
    !name.includes('--') &&
    !name.includes('..')
  )
}

/** The cache folder of one repository: `<cache>/models--org--name`. */
export function repoCacheDir(cacheDir: string, repo: string): string {
  return path.join(cacheDir, `models--${repo.split('/').join('--')}`)
}

interface Context {
  endpoint: string
  token?: string
  cacheDir: string
  offline: boolean
  revision: string
  quantized?: boolean
  signal?: AbortSignal
  progress?: (progress: DownloadProgress) => void
}

interface RepoInfo {
  sha: string
  files: Set<string>
}

interface FileMeta {
  etag: string
  size: number
  /** Where the bytes come from: the resolve URL, or the CDN it redirects to. */
  url: string
}

/**
 * Resolves what `fromPretrained` was given to a model folder: a path that exists is used as is;
 * a string shaped like `org/name` is looked up in the hub cache, downloading what is missing;
 * anything else is returned resolved, for the loader to report.
 */
export async function resolveModelPath(nameOrPath: string, options: HubOptions = {}): Promise<string> {
  const signal = options.signal
  if (signal?.aborted) throw abortError(signal)
  if (fs.existsSync(nameOrPath) || !isRepoId(nameOrPath)) return path.resolve(nameOrPath)
  const revision = options.revision ?? 'main'
  if (typeof revision !== 'string' || revision === '' || revision.includes('\\') || revision.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw invalidArgument(`revision must be a branch, tag or commit sha, got ${JSON.stringify(revision)}`)
  }
  const ctx: Context = {
    endpoint: hubEndpoint(),
    token: options.token ?? envValue(process.env, 'HF_TOKEN'),
    cacheDir: path.resolve(expandHome(options.cacheDir ?? hubCacheDir())),
    offline: options.localFilesOnly === true || hubOffline(),
    revision,
    quantized: options.quantized,
    signal,
    progress: guard(options.onProgress, 'onProgress'),
  }
  try {
    return await resolveRepo(ctx, nameOrPath)
  } catch (e) {
    if (e instanceof ColbertError) throw e
    if (signal?.aborted) throw abortError(signal)
    throw new ColbertError('IO', `hub cache at ${ctx.cacheDir}: ${e instanceof Error ? e.message : String(e)}`, { cause: e })
  }
}

/** LightOn publishes ONNX exports of its models as `<name>-onnx`. */
function companionOf(repo: string): string | undefined {
  return repo.endsWith('-onnx') ? undefined : `${repo}-onnx`
}

async function resolveRepo(ctx: Context, repo: string): Promise<string> {
  const companion = companionOf(repo)
  const fromCache = () => cachedSnapshot(ctx, repo, ctx.revision) ?? (companion ? cachedSnapshot(ctx, companion, 'main') : undefined)
  if (ctx.offline) return fromCache() ?? notCached(ctx, repo)
  // A commit's files never change: a complete snapshot needs no network.
  if (COMMIT.test(ctx.revision)) {
    const dir = cachedSnapshot(ctx, repo, ctx.revision)
    if (dir) return dir
  }
  let info: RepoInfo
  try {
    info = await repoInfo(ctx, repo, ctx.revision)
  } catch (e) {
    // Like huggingface_hub: when the hub cannot be reached, a cached snapshot will do.
    if (e instanceof ColbertError && e.code === 'HUB_UNAVAILABLE') {
      const dir = fromCache()
      if (dir) return dir
    }
    throw e
  }
  const plan = pickFiles(info.files, ctx.quantized)
  if (plan) return download(ctx, repo, ctx.revision, info, plan)
  if (companion) {
    let other: RepoInfo | undefined
    try {
      other = await repoInfo(ctx, companion, 'main')
    } catch (e) {
      if (!(e instanceof ColbertError && e.code === 'MODEL_NOT_FOUND')) throw e
    }
    const otherPlan = other && pickFiles(other.files, ctx.quantized)
    if (other && otherPlan) return download(ctx, companion, 'main', other, otherPlan)
  }
  if (info.files.has(FP32) || info.files.has(INT8)) {
    const wanted = ctx.quantized ? INT8 : FP32
    throw new ColbertError('MODEL_NOT_FOUND', `${repo} has no ${wanted}${companion ? ` and neither has ${companion}` : ''}; pass quantized: ${!ctx.quantized} to use the other ONNX file`)
  }
  throw new ColbertError(
    'MODEL_NOT_ONNX',
    `${repo} has no ONNX weights (model.onnx)${companion ? ` and there is no ${companion} repository with them` : ''}. ` +
      `Export it: download the PyLate model (e.g. \`huggingface-cli download ${repo} --local-dir <dir>\`), run ` +
      '`python tools/export_onnx.py <dir> <out>` from the colbert repository (see its README and tools/README.md), ' +
      "then load the folder with ColBERT.fromPretrained('<out>')",
  )
}

/** The files to fetch, or `undefined` when the repository lacks the ONNX file asked for. */
function pickFiles(files: Set<string>, quantized: boolean | undefined): { configs: string[]; weights: string[] } | undefined {
  const onnx = quantized === true ? INT8 : quantized === false ? FP32 : files.has(FP32) ? FP32 : INT8
  if (!files.has(onnx)) return undefined
  // Weights too large for one protobuf file live beside it (torch.onnx.export's external data).
  const weights = [`${onnx}.data`, `${onnx}_data`].filter((f) => files.has(f))
  weights.push(onnx)
  return { configs: CONFIG_FILES.filter((f) => files.has(f)), weights }
}

/** Whether `dir` has a tokenizer and the ONNX file `quantized` asks for. */
function usable(dir: string, quantized: boolean | undefined): boolean {
  const has = (f: string) => fs.existsSync(path.join(dir, f)) // follows links: a dangling one is missing
  if (!has('tokenizer.json')) return false
  return quantized === true ? has(INT8) : quantized === false ? has(FP32) : has(FP32) || has(INT8)
}

function cachedSnapshot(ctx: Context, repo: string, revision: string): string | undefined {
  const root = repoCacheDir(ctx.cacheDir, repo)
  let commit = revision
  if (!COMMIT.test(revision)) {
    try {
      commit = fs.readFileSync(path.join(root, 'refs', ...revision.split('/')), 'utf8').trim()
    } catch {
      return undefined
    }
    if (!COMMIT.test(commit)) return undefined
  }
  const dir = path.join(root, 'snapshots', commit)
  return usable(dir, ctx.quantized) ? dir : undefined
}

function notCached(ctx: Context, repo: string): never {
  const root = repoCacheDir(ctx.cacheDir, repo)
  const wanted = ctx.quantized === true ? INT8 : ctx.quantized === false ? FP32 : 'model.onnx or model_int8.onnx'
  throw new ColbertError(
    'MODEL_NOT_FOUND',
    `${repo} is not a folder on disk, and revision ${ctx.revision} of it is not in the Hugging Face cache at ${root} ` +
      `(no snapshot with tokenizer.json and ${wanted}). ` +
      'Download it once with network access: call fromPretrained without localFilesOnly and with HF_HUB_OFFLINE unset; ' +
      'or point cacheDir / HF_HUB_CACHE at the cache that holds it',
  )
}

// ---- HTTP ----------------------------------------------------------------------------------

function describe(e: unknown): string {
  // fetch fails with a TypeError ('fetch failed', 'terminated') whose cause says what happened.
  const cause = (e as { cause?: { code?: unknown; message?: unknown } } | null)?.cause
  if (cause && typeof cause.message === 'string' && cause.message !== '') return cause.message
  if (cause && typeof cause.code === 'string') return cause.code
  return e instanceof Error ? e.message : String(e)
}

function unavailable(message: string, cause?: unknown): ColbertError {
  return new ColbertError('HUB_UNAVAILABLE', `${message}; ${OFFLINE_HINT}`, { cause })
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin
  } catch {
    return false
  }
}

async function request(
  ctx: Context,
  url: string,
  init: { method?: string; headers?: Record<string, string>; redirect?: 'follow' | 'manual' } = {},
): Promise<Response> {
  const headers: Record<string, string> = {
    'user-agent': `colbert (node ${process.versions.node})`,
    // Sizes are compared with the bytes on disk: no transparent decompression.
    'accept-encoding': 'identity',
    ...init.headers,
  }
  // The token goes to the hub only, never to the CDN it redirects to.
  if (ctx.token && sameOrigin(url, ctx.endpoint)) headers.authorization = `Bearer ${ctx.token}`
  try {
    return await fetch(url, { method: init.method ?? 'GET', headers, redirect: init.redirect ?? 'follow', signal: ctx.signal })
  } catch (e) {
    if (ctx.signal?.aborted) throw abortError(ctx.signal)
    throw unavailable(`cannot reach ${url} (${describe(e)})`, e)
  }
}

async function statusError(ctx: Context, res: Response, repo: string, what: string): Promise<ColbertError> {
  await res.body?.cancel().catch(() => undefined)
  const code = res.headers.get('x-error-code')
  const detail = res.headers.get('x-error-message')
  const answered = `${res.status}${detail ? `: ${detail}` : ''}`
  const page = `${ctx.endpoint}/${repo}`
  if (code === 'GatedRepo' || ((res.status === 401 || res.status === 403) && code !== 'RepoNotFound')) {
    return new ColbertError(
      'HUB_UNAUTHORIZED',
      `${what}: ${ctx.endpoint} refused access to ${repo} (${answered}). ` +
        `${ctx.token ? 'The token given (token option or HF_TOKEN) lacks access to it' : 'Set HF_TOKEN to a Hugging Face access token with read access'}` +
        `, and if the model is gated, accept its licence at ${page}`,
    )
  }
  if (code === 'RevisionNotFound') {
    return new ColbertError('MODEL_NOT_FOUND', `${what}: revision ${ctx.revision} of ${repo} does not exist on ${ctx.endpoint} (${answered})`)
  }
  if (res.status === 404 || code === 'RepoNotFound' || code === 'EntryNotFound') {
    return new ColbertError(
      'MODEL_NOT_FOUND',
      `${what}: ${repo} is neither a folder on disk nor a model on ${ctx.endpoint} (${answered})` +
        `${ctx.token ? '' : '; if it is private, set HF_TOKEN'}`,
    )
  }
  return unavailable(`${what}: ${res.url || page} answered ${answered}${res.statusText ? ` ${res.statusText}` : ''}`)
}

/** The commit a revision points to and the repository's file list. */
async function repoInfo(ctx: Context, repo: string, revision: string): Promise<RepoInfo> {
  const url = `${ctx.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}`
  const res = await request(ctx, url)
  if (!res.ok) throw await statusError(ctx, res, repo, `looking up ${repo}`)
  let body: unknown
  try {
    body = await res.json()
  } catch (e) {
    if (ctx.signal?.aborted) throw abortError(ctx.signal)
    throw unavailable(`${url} did not answer valid JSON (${describe(e)})`, e)
  }
  const { sha, siblings } = (body ?? {}) as { sha?: unknown; siblings?: unknown }
  if (typeof sha !== 'string' || !COMMIT.test(sha) || !Array.isArray(siblings)) {
    throw unavailable(`${url} did not answer a model description (a commit sha and siblings); is HF_ENDPOINT (${ctx.endpoint}) a Hugging Face hub?`)
  }
  const files = new Set<string>()
  for (const s of siblings) {
    const name = (s as { rfilename?: unknown } | null)?.rfilename
    if (typeof name === 'string' && isSafeRelative(name)) files.add(name)
  }
  return { sha, files }
}

function isSafeRelative(file: string): boolean {
  return file !== '' && !file.startsWith('/') && !file.includes('\\') && !file.split('/').some((s) => s === '' || s === '.' || s === '..')
}

function normalizeEtag(value: string | null): string | undefined {
  if (!value) return undefined
  const etag = value.trim().replace(/^W\//, '').replace(/^"|"$/g, '')
  return etag === '' ? undefined : etag
}

/** HEAD of the resolve URL: ETag, size and download URL, as huggingface_hub reads them. */
async function fileMetadata(ctx: Context, repo: string, commit: string, file: string): Promise<FileMeta> {
  let url = `${ctx.endpoint}/${repo}/resolve/${commit}/${file.split('/').map(encodeURIComponent).join('/')}`
  for (let hops = 0; ; hops++) {
    const res = await request(ctx, url, { method: 'HEAD', redirect: 'manual' })
    const location = res.headers.get('location')
    const redirect = res.status >= 300 && res.status < 400 && location !== null
    // Relative redirects are the hub's own (a renamed repository): follow them. An absolute one
    // goes to the CDN, and this answer carries the file's metadata.
    if (redirect && !/^[a-z][a-z0-9+.-]*:/i.test(location) && hops < 5) {
      url = new URL(location, url).href
      continue
    }
    if (!res.ok && !redirect) throw await statusError(ctx, res, repo, `downloading ${file} of ${repo}`)
    const etag = normalizeEtag(res.headers.get('x-linked-etag') ?? res.headers.get('etag'))
    const size = Number(res.headers.get('x-linked-size') ?? res.headers.get('content-length') ?? NaN)
    if (!etag || !Number.isSafeInteger(size) || size < 0) {
      throw unavailable(`${url} answered without an ETag or a size; is HF_ENDPOINT (${ctx.endpoint}) a Hugging Face hub?`)
    }
    return { etag, size, url: redirect ? new URL(location, url).href : url }
  }
}

// ---- cache ---------------------------------------------------------------------------------

/** Downloads what the snapshot lacks, links it into `snapshots/<commit>`, records the ref. */
async function download(ctx: Context, repo: string, revision: string, info: RepoInfo, plan: { configs: string[]; weights: string[] }): Promise<string> {
  const root = repoCacheDir(ctx.cacheDir, repo)
  const snapshot = path.join(root, 'snapshots', info.sha)
  const pending: Array<{ pointer: string; blob: string }> = []
  const fetchFile = async (file: string): Promise<string> => {
    const pointer = path.join(snapshot, ...file.split('/'))
    if (fs.existsSync(pointer)) return pointer
    const blob = await fetchBlob(ctx, repo, info.sha, file, path.join(root, 'blobs'))
    pending.push({ pointer, blob })
    return blob
  }
  const configs = plan.configs
  for (const file of configs) {
    const local = await fetchFile(file)
    if (file === 'modules.json') {
      for (const dense of denseConfigs(local)) if (info.files.has(dense) && !configs.includes(dense)) await fetchFile(dense)
    }
  }
  for (const file of plan.weights) await fetchFile(file)
  // Every file is in blobs/ now: only now does the snapshot get its links.
  for (const { pointer, blob } of pending) await linkPointer(blob, pointer)
  if (revision !== info.sha) await writeRef(root, revision, info.sha)
  return snapshot
}

/** `<path>/config.json` of every Dense module listed in modules.json (their weights are inside the ONNX graph). */
function denseConfigs(modulesJson: string): string[] {
  let modules: unknown
  try {
    modules = JSON.parse(fs.readFileSync(modulesJson, 'utf8'))
  } catch {
    return [] // the loader reports a malformed modules.json
  }
  if (!Array.isArray(modules)) return []
  const out: string[] = []
  for (const m of modules) {
    const { type, path: sub } = (m ?? {}) as { type?: unknown; path?: unknown }
    if (typeof type === 'string' && type.endsWith('Dense') && typeof sub === 'string' && sub !== '') {
      const file = `${sub.replace(/\/+$/, '')}/config.json`
      if (isSafeRelative(file)) out.push(file)
    }
  }
  return out
}

async function linkPointer(blob: string, pointer: string): Promise<void> {
  await fsp.mkdir(path.dirname(pointer), { recursive: true })
  const tmp = `${pointer}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`
  try {
    await fsp.symlink(path.relative(path.dirname(pointer), blob), tmp)
  } catch {
    // Windows without the symlink privilege, or a file system without links: a copy.
    await fsp.copyFile(blob, tmp)
  }
  await fsp.rename(tmp, pointer)
}

async function writeRef(root: string, revision: string, commit: string): Promise<void> {
  const ref = path.join(root, 'refs', ...revision.split('/'))
  try {
    if (fs.readFileSync(ref, 'utf8').trim() === commit) return
  } catch {
    // no ref yet
  }
  await fsp.mkdir(path.dirname(ref), { recursive: true })
  const tmp = `${ref}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`
  await fsp.writeFile(tmp, commit)
  await fsp.rename(tmp, ref)
}

function blobName(etag: string): string {
  return /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(etag) ? etag : crypto.createHash('sha256').update(etag).digest('hex')
}

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    return (await fsp.stat(file)).size
  } catch {
    return undefined
  }
}

/** Makes sure `blobs/<etag>` holds the file, downloading it under a lock. */
async function fetchBlob(ctx: Context, repo: string, commit: string, file: string, blobs: string): Promise<string> {
  const meta = await fileMetadata(ctx, repo, commit, file)
  const blob = path.join(blobs, blobName(meta.etag))
  if ((await sizeOf(blob)) === meta.size) return blob
  await fsp.mkdir(blobs, { recursive: true })
  await withLock(ctx, `${blob}.lock`, async () => {
    // Another process (or call) may have finished it while we waited.
    if ((await sizeOf(blob)) !== meta.size) await downloadBlob(ctx, repo, file, meta, blob)
  })
  return blob
}

interface Check {
  what: string
  update(chunk: Uint8Array): void
  ok(): boolean
}

/** LFS ETags are the content's sha256; other files' are the git blob sha1. */
function checkFor(meta: FileMeta): Check {
  const etag = meta.etag.toLowerCase()
  if (SHA256.test(etag)) {
    const hash = crypto.createHash('sha256')
    return { what: 'sha256', update: (c) => hash.update(c), ok: () => hash.digest('hex') === etag }
  }
  if (COMMIT.test(etag)) {
    const hash = crypto.createHash('sha1').update(`blob ${meta.size}\0`)
    return { what: 'git blob sha1', update: (c) => hash.update(c), ok: () => hash.digest('hex') === etag }
  }
  return { what: 'size', update: () => undefined, ok: () => true }
}

function reporter(ctx: Context, file: string, total: number) {
  let last = -Infinity
  return (downloaded: number, force: boolean) => {
    if (!ctx.progress) return
    const now = Date.now()
    if (!force && now - last < PROGRESS_INTERVAL_MS) return
    last = now
    ctx.progress({ file, downloaded, total })
  }
}

async function downloadBlob(ctx: Context, repo: string, file: string, meta: FileMeta, blob: string): Promise<void> {
  const partial = `${blob}.incomplete`
  for (let attempt = 0; ; attempt++) {
    let have = (await sizeOf(partial)) ?? 0
    if (have > meta.size) {
      await fsp.rm(partial, { force: true })
      have = 0
    }
    const resumed = have > 0
    let check = checkFor(meta)
    if (resumed) for await (const chunk of fs.createReadStream(partial)) check.update(chunk as Uint8Array)
    let got = have
    if (!(resumed && have === meta.size)) {
      const res = await request(ctx, meta.url, { headers: have > 0 ? { range: `bytes=${have}-` } : {} })
      let flags = 'a'
      if (res.status === 200) {
        // A full answer (the server ignored the range): start over.
        flags = 'w'
        got = 0
        check = checkFor(meta)
      } else if (res.status === 206) {
        const start = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')
        if (!start || Number(start[1]) !== have) {
          await res.body?.cancel().catch(() => undefined)
          await fsp.rm(partial, { force: true })
          throw unavailable(`${meta.url} answered a range other than the one asked for (${res.headers.get('content-range')})`)
        }
      } else if (res.status === 416 && attempt === 0) {
        await res.body?.cancel().catch(() => undefined)
        await fsp.rm(partial, { force: true })
        continue
      } else if (sameOrigin(meta.url, ctx.endpoint)) {
        throw await statusError(ctx, res, repo, `downloading ${file} of ${repo}`)
      } else {
        // The CDN's own errors (an expired signed URL, ...) are no statement about the repository.
        await res.body?.cancel().catch(() => undefined)
        throw unavailable(`downloading ${file} of ${repo}: ${new URL(meta.url).origin} answered ${res.status}`)
      }
      const report = reporter(ctx, file, meta.size)
      const handle = await fsp.open(partial, flags)
      try {
        report(got, true)
        if (res.body) {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            await handle.write(chunk)
            check.update(chunk)
            got += chunk.length
            report(got, got === meta.size)
          }
        }
      } catch (e) {
        if (ctx.signal?.aborted) throw abortError(ctx.signal)
        throw unavailable(
          `the download of ${file} from ${repo} stopped after ${got} of ${meta.size} bytes (${describe(e)}); ` +
            `the part is kept in ${partial} and the next call resumes it`,
          e,
        )
      } finally {
        await handle.close()
      }
    }
    if (got !== meta.size) {
      if (got > meta.size) await fsp.rm(partial, { force: true })
      throw unavailable(
        got < meta.size
          ? `the download of ${file} from ${repo} ended after ${got} of ${meta.size} bytes; the part is kept in ${partial} and the next call resumes it`
          : `the download of ${file} from ${repo} sent ${got} bytes, more than the ${meta.size} announced; it was discarded`,
      )
    }
    if (!check.ok()) {
      await fsp.rm(partial, { force: true })
      // A resumed part may be what was wrong: try once more from the start.
      if (resumed && attempt === 0) continue
      throw unavailable(`${file} from ${repo} failed its ${check.what} check against the ETag ${meta.etag}; the download was discarded`)
    }
    await fsp.rename(partial, blob)
    return
  }
}

// ---- locking -------------------------------------------------------------------------------


/** A lock whose owner died (same host) or stopped refreshing it is stale. */
async function staleLock(lock: string): Promise<boolean> {
  try {
    const stat = await fsp.stat(lock)
    if (Date.now() - stat.mtimeMs > LOCK_STALE_MS) return true
    const [host, pid] = (await fsp.readFile(lock, 'utf8')).trim().split(' ')
    return host === os.hostname() && Number(pid) > 0 && Number(pid) !== process.pid && !processAlive(Number(pid))
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT'
  }
}

/**
 * Runs `fn` holding `lock` (created exclusively), so two calls or processes never write the same
 * `.incomplete` file. The holder refreshes the lock's mtime; a waiter takes over a stale lock.
 */
async function withLock<T>(ctx: Context, lock: string, fn: () => Promise<T>): Promise<T> {
  let handle: fsp.FileHandle
  for (;;) {
    try {
      handle = await fsp.open(lock, 'wx')
      break
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
    }
    if (await staleLock(lock)) {
      await fsp.rm(lock, { force: true })
      continue
    }
    try {
      await sleep(LOCK_POLL_MS, undefined, { signal: ctx.signal })
    } catch {
      throw abortError(ctx.signal)
    }
  }
  const timer = setInterval(() => {
    const now = new Date()
    fs.utimes(lock, now, now, () => undefined)
  }, LOCK_REFRESH_MS)
  timer.unref()
  try {
    await handle.writeFile(`${os.hostname()} ${process.pid}\n`)
    return await fn()
  } finally {
    clearInterval(timer)
    await handle.close().catch(() => undefined)
    await fsp.rm(lock, { force: true })
  }
}
