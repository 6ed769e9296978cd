// Hugging Face hub downloads for `ColBERT.fromPretrained('org/name')`: the files a model folder
// needs are fetched into the Hugging Face cache, in huggingface_hub's layout, so Python and Node
// share one cache:
//
//   <cache>/models--org--name/blobs/<etag>                    file contents, named by their ETag
//   <cache>/models--org--name/snapshots/<commit>/<path>       relative symlinks into blobs/ (copies where links fail)
//   <cache>/models--org--name/refs/<revision>                 the commit a branch or tag pointed to
//   <cache>/.locks/models--org--name/<etag>.lock              huggingface_hub's per-blob lock files
//
// Each blob is downloaded, verified and renamed while holding huggingface_hub's lock on its
// `.locks` file (flock / LockFileEx, as Python's filelock takes it; `colbert_encode::file_lock`),
// so a Python process and this one never write the same `blobs/<etag>.incomplete`. Downloads are
// atomic (the `.incomplete` file is renamed once complete), resumable (a leftover `.incomplete`
// continues with an HTTP Range request) and checked on disk against the size and ETag the hub
// announced (sha256 for LFS files, the git blob sha1 for the others). Snapshot links are only made
// once every file of a call is in blobs/, so an interrupted call leaves no partial snapshot. A
// cached model that fails to load has its blobs re-hashed: corrupt ones are removed (and, online,
// downloaded again).
import crypto from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

import { abortError, callNative, ColbertError, invalidArgument } from './errors'
import { native, type Native } from './native'
import { guard } from './progress'

/** One progress event of a download, in bytes. Files already in the cache report nothing. */
export interface DownloadProgress {
  /** The file's path in the repository, e.g. `model.onnx`. */
  file: string
  /** Bytes of the file on disk so far (a resumed download starts at what was already there). */
  downloaded: number
  /** The file's size in bytes. */
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
  /** Access token (default, as huggingface_hub: `HF_TOKEN`, `HUGGING_FACE_HUB_TOKEN`, then the file `HF_TOKEN_PATH`, default `HF_HOME/token`). */
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
/** How often a waiter retries a held lock (Python's filelock polls every 50 ms too). */
const LOCK_POLL_MS = 50
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

/** `HF_HOME`, default `XDG_CACHE_HOME/huggingface`, default `~/.cache/huggingface`. */
function hfHome(env: Env): string {
  const home = envValue(env, 'HF_HOME')
  if (home) return path.resolve(expandHome(home))
  const xdg = envValue(env, 'XDG_CACHE_HOME')
  return xdg ? path.resolve(expandHome(xdg), 'huggingface') : path.join(os.homedir(), '.cache', 'huggingface')
}

/** The file `huggingface-cli login` / `hf auth login` saves the token to: `HF_TOKEN_PATH`, default `HF_HOME/token`. */
export function hubTokenPath(env: Env = process.env): string {
  const file = envValue(env, 'HF_TOKEN_PATH')
  return file ? path.resolve(expandHome(file)) : path.join(hfHome(env), 'token')
}

/** huggingface_hub's `_clean_token`: newlines removed, spaces trimmed, empty is none. */
function cleanToken(token: string | undefined): string | undefined {
  return token?.replace(/[\r\n]/g, '').trim() || undefined
}

/** The token sent to the hub and where it came from. */
export interface HubToken {
  token: string
  source: string
}

/**
 * The token as huggingface_hub picks it (`get_token_to_send`): the option; else, unless
 * `HF_HUB_DISABLE_IMPLICIT_TOKEN` is set, `HF_TOKEN` or `HUGGING_FACE_HUB_TOKEN`, then the saved
 * token file.
 */
export function hubToken(option?: string, env: Env = process.env): HubToken | undefined {
  if (option !== undefined) return option === '' ? undefined : { token: option, source: 'the token option' }
  if (['1', 'ON', 'YES', 'TRUE'].includes((env.HF_HUB_DISABLE_IMPLICIT_TOKEN ?? '').trim().toUpperCase())) return undefined
  const variable = env.HF_TOKEN ? 'HF_TOKEN' : env.HUGGING_FACE_HUB_TOKEN ? 'HUGGING_FACE_HUB_TOKEN' : undefined
  if (variable) {
    const token = cleanToken(env[variable])
    return token ? { token, source: variable } : undefined
  }
  const file = hubTokenPath(env)
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch {
    return undefined // not logged in (or unreadable, which huggingface_hub reports; we send no token)
  }
  const token = cleanToken(text)
  return token ? { token, source: `the token file ${file}` } : undefined
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

/** huggingface_hub's lock file for one blob: `<cache>/.locks/models--org--name/<etag>.lock`. */
export function blobLockPath(cacheDir: string, repo: string, blob: string): string {
  return path.join(cacheDir, '.locks', path.basename(repoCacheDir(cacheDir, repo)), `${blob}.lock`)
}

interface Context {
  endpoint: string
  token?: HubToken
  cacheDir: string
  offline: boolean
  revision: string
  quantized?: boolean
  signal?: AbortSignal
  progress?: (progress: DownloadProgress) => void
  /** Ask the hub even where the cache would do (a repair after a corrupt blob). */
  refresh?: boolean
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

/** A model folder `fromPretrained` may load, and for hub snapshots what to do if loading fails. */
export interface ResolvedModel {
  dir: string
  /**
   * For a folder of the hub cache, after a failed load: re-hashes its blobs and removes corrupt
   * ones. Resolves to a repaired folder to load again (online), or `undefined` when every blob is
   * intact (the load error stands); rejects with `MODEL_INVALID` naming the corrupt files when
   * they cannot be downloaded again (offline, or the hub unreachable).
   */
  recover?: () => Promise<string | undefined>
}

/**
 * Resolves what `fromPretrained` was given to a model folder: a path that exists is used as is;
 * a string shaped like `org/name` is looked up in the hub cache, downloading what is missing;
 * anything else is returned resolved, for the loader to report.
 */
export async function resolveModel(nameOrPath: string, options: HubOptions = {}): Promise<ResolvedModel> {
  const signal = options.signal
  if (signal?.aborted) throw abortError(signal)
  if (fs.existsSync(nameOrPath) || !isRepoId(nameOrPath)) return { dir: path.resolve(nameOrPath) }
  const revision = options.revision ?? 'main'
  if (typeof revision !== 'string' || revision === '' || revision.includes('\\') || revision.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw invalidArgument(`revision must be a branch, tag or commit sha, got ${JSON.stringify(revision)}`)
  }
  const ctx: Context = {
    endpoint: hubEndpoint(),
    token: hubToken(options.token),
    cacheDir: path.resolve(expandHome(options.cacheDir ?? hubCacheDir())),
    offline: options.localFilesOnly === true || hubOffline(),
    revision,
    quantized: options.quantized,
    signal,
    progress: guard(options.onProgress, 'onProgress'),
  }
  let found: Found
  try {
    found = await hubCall(ctx, () => resolveRepo(ctx, nameOrPath))
  } catch (e) {
    // `models/minilm` may be a mistyped folder rather than a hub id: every "not found" and
    // "cannot reach" says both, here in one place.
    if (e instanceof ColbertError && (e.code === 'HUB_UNAVAILABLE' || e.code === 'MODEL_NOT_FOUND')) {
      throw new ColbertError(
        e.code,
        `${nameOrPath} is not a folder on disk (${path.resolve(nameOrPath)}; write ./${nameOrPath} for a local folder), so it was looked up on the Hugging Face hub: ${e.message}`,
        { cause: e },
      )
    }
    throw e
  }
  return { dir: found.dir, recover: () => hubCall(ctx, () => recover(ctx, nameOrPath, found)) }
}

/** Runs a hub operation, reporting file-system failures as `IO` and aborts as `ABORTED`. */
async function hubCall<T>(ctx: Context, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    if (e instanceof ColbertError) throw e
    if (ctx.signal?.aborted) throw abortError(ctx.signal)
    throw new ColbertError('IO', `hub cache at ${ctx.cacheDir}: ${e instanceof Error ? e.message : String(e)}`, { cause: e })
  }
}

/** LightOn publishes ONNX exports of its models as `<name>-onnx`. */
function companionOf(repo: string): string | undefined {
  return repo.endsWith('-onnx') ? undefined : `${repo}-onnx`
}

/** A snapshot folder and the repository it belongs to (the one asked for, or its companion). */
interface Found {
  dir: string
  repo: string
}

async function resolveRepo(ctx: Context, repo: string): Promise<Found> {
  const companion = companionOf(repo)
  const fromCache = (): Found | undefined => {
    const dir = cachedSnapshot(ctx, repo, ctx.revision)
    if (dir) return { dir, repo }
    const other = companion ? cachedSnapshot(ctx, companion, 'main') : undefined
    return other && companion ? { dir: other, repo: companion } : undefined
  }
  if (ctx.offline) return fromCache() ?? notCached(ctx, repo)
  // A commit's files never change: a complete snapshot needs no network.
  if (COMMIT.test(ctx.revision) && !ctx.refresh) {
    const dir = cachedSnapshot(ctx, repo, ctx.revision)
    if (dir) return { dir, repo }
  }
  let info: RepoInfo
  try {
    info = await repoInfo(ctx, repo, ctx.revision)
  } catch (e) {
    // Like huggingface_hub: when the hub cannot be reached, a cached snapshot will do.
    if (e instanceof ColbertError && e.code === 'HUB_UNAVAILABLE' && !ctx.refresh) {
      const found = fromCache()
      if (found) return found
    }
    throw e
  }
  const plan = pickFiles(info.files, ctx.quantized)
  if (plan) return { dir: await download(ctx, repo, ctx.revision, info, plan), repo }
  if (companion) {
    let other: RepoInfo | undefined
    try {
      other = await repoInfo(ctx, companion, 'main')
    } catch (e) {
      if (!(e instanceof ColbertError && e.code === 'MODEL_NOT_FOUND')) throw e
    }
    const otherPlan = other && pickFiles(other.files, ctx.quantized)
    if (other && otherPlan) return { dir: await download(ctx, companion, 'main', other, otherPlan), repo: companion }
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
    `revision ${ctx.revision} of ${repo} is not in the Hugging Face cache at ${root} ` +
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

const MAX_REDIRECTS = 10

/**
 * One HTTP request. Redirects are followed here rather than by fetch, so the token goes to the
 * hub's origin only, never to a CDN or another host a redirect points to.
 */
async function request(
  ctx: Context,
  url: string,
  init: { method?: string; headers?: Record<string, string>; redirect?: 'follow' | 'manual' } = {},
): Promise<Response> {
  for (let hops = 0; ; hops++) {
    const headers: Record<string, string> = {
      'user-agent': `colbert (node ${process.versions.node})`,
      // Sizes are compared with the bytes on disk: no transparent decompression.
      'accept-encoding': 'identity',
      ...init.headers,
    }
    if (ctx.token && sameOrigin(url, ctx.endpoint)) headers.authorization = `Bearer ${ctx.token.token}`
    let res: Response
    try {
      res = await fetch(url, { method: init.method ?? 'GET', headers, redirect: 'manual', signal: ctx.signal })
    } catch (e) {
      if (ctx.signal?.aborted) throw abortError(ctx.signal)
      throw unavailable(`cannot reach ${url} (${describe(e)})`, e)
    }
    const location = res.headers.get('location')
    if (init.redirect === 'manual' || res.status < 300 || res.status >= 400 || location === null || hops >= MAX_REDIRECTS) return res
    await res.body?.cancel().catch(() => undefined)
    url = new URL(location, url).href
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
        `${ctx.token ? `The token from ${ctx.token.source} lacks access to it` : 'Log in with `hf auth login` (or set HF_TOKEN, or pass the token option) with a Hugging Face access token that can read it'}` +
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
        `${ctx.token ? '' : '; if it is private, log in with `hf auth login` or set HF_TOKEN'}`,
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

/** Runs every task, then rethrows the first failure in list order (none is left running). */
async function all<T>(tasks: Array<Promise<T>>): Promise<T[]> {
  const settled = await Promise.allSettled(tasks)
  for (const s of settled) if (s.status === 'rejected') throw s.reason
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value)
}

/**
 * Makes `snapshots/<commit>` hold the planned files: each one's ETag and size are asked of the hub
 * (as huggingface_hub does on every call), a missing blob or one whose size differs is downloaded,
 * and once every blob is in, the snapshot gets its links and the revision its ref.
 */
async function download(ctx: Context, repo: string, revision: string, info: RepoInfo, plan: { configs: string[]; weights: string[] }): Promise<string> {
  const root = repoCacheDir(ctx.cacheDir, repo)
  const snapshot = path.join(root, 'snapshots', info.sha)
  const pending: Array<{ pointer: string; blob: string }> = []
  const fetchFile = async (file: string): Promise<string> => {
    const pointer = path.join(snapshot, ...file.split('/'))
    let meta: FileMeta
    try {
      meta = await fileMetadata(ctx, repo, info.sha, file)
    } catch (e) {
      // As huggingface_hub: when the hub cannot say, a file already in the snapshot will do.
      if (e instanceof ColbertError && e.code === 'HUB_UNAVAILABLE' && !ctx.refresh && fs.existsSync(pointer)) return pointer
      throw e
    }
    const blob = await fetchBlob(ctx, repo, file, meta)
    if (!(await pointsTo(pointer, blob, meta.size))) pending.push({ pointer, blob })
    return blob
  }
  const configs = await all(plan.configs.map(fetchFile))
  const modules = plan.configs.indexOf('modules.json')
  if (modules >= 0) {
    const dense = denseConfigs(configs[modules]).filter((f) => info.files.has(f) && !plan.configs.includes(f))
    await all(dense.map(fetchFile))
  }
  for (const file of plan.weights) await fetchFile(file)
  // Every file is in blobs/ now: only now does the snapshot get its links.
  for (const { pointer, blob } of pending) await linkPointer(blob, pointer)
  if (revision !== info.sha) await writeRef(root, revision, info.sha)
  return snapshot
}

/** Whether a snapshot entry already serves `blob`: a link to it, or (where links fail) a copy of its size. */
async function pointsTo(pointer: string, blob: string, size: number): Promise<boolean> {
  let stat: fs.Stats
  try {
    stat = await fsp.lstat(pointer)
  } catch {
    return false
  }
  if (stat.isSymbolicLink()) return path.resolve(path.dirname(pointer), await fsp.readlink(pointer)) === blob
  return stat.isFile() && stat.size === size
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

/**
 * Makes sure `blobs/<etag>` holds the file. A blob of the announced size is trusted; anything
 * else is (re)downloaded under huggingface_hub's lock, which another process may hold: then we
 * wait, and usually find its finished blob.
 */
async function fetchBlob(ctx: Context, repo: string, file: string, meta: FileMeta): Promise<string> {
  const name = blobName(meta.etag)
  const blob = path.join(repoCacheDir(ctx.cacheDir, repo), 'blobs', name)
  if ((await sizeOf(blob)) === meta.size) return blob
  await withBlobLock(ctx, blobLockPath(ctx.cacheDir, repo, name), async () => {
    // Another process (or call) may have finished it while we waited.
    if ((await sizeOf(blob)) === meta.size) return
    await fsp.mkdir(path.dirname(blob), { recursive: true })
    // A blob of the wrong size is replaced by the rename at the end, never edited in place.
    await downloadBlob(ctx, repo, file, meta, blob)
  })
  return blob
}

interface HashCheck {
  /** `sha256`, `git blob sha1`, or `size` (an ETag that names no hash). */
  what: string
  expected: string
  actual: string
}

/** Hashes a file on disk the way its ETag (or blob name) was made: sha256 for LFS files, the git blob sha1 for the others. */
async function hashFile(file: string, etag: string): Promise<HashCheck | undefined> {
  const expected = etag.toLowerCase()
  let what: string
  let hash: crypto.Hash
  if (SHA256.test(expected)) {
    what = 'sha256'
    hash = crypto.createHash('sha256')
  } else if (COMMIT.test(expected)) {
    what = 'git blob sha1'
    hash = crypto.createHash('sha1').update(`blob ${(await fsp.stat(file)).size}\0`)
  } else {
    return undefined
  }
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Uint8Array)
  return { what, expected, actual: hash.digest('hex') }
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

/**
 * Downloads into `<blob>.incomplete` (resuming what is there), verifies the file on disk and
 * renames it to `blob`. Only ever called holding the blob's lock: no one else writes the
 * `.incomplete` file meanwhile, so truncating or appending to it is ours to do.
 */
async function downloadBlob(ctx: Context, repo: string, file: string, meta: FileMeta, blob: string): Promise<void> {
  const partial = `${blob}.incomplete`
  for (let attempt = 0; ; attempt++) {
    let have = (await sizeOf(partial)) ?? 0
    if (have > meta.size) {
      await fsp.rm(partial, { force: true })
      have = 0
    }
    const resumed = have > 0
    if (have < meta.size) {
      const res = await request(ctx, meta.url, { headers: have > 0 ? { range: `bytes=${have}-` } : {} })
      let flags = 'a'
      let got = have
      if (res.status === 200) {
        // A full answer (the server ignored the range): start over.
        flags = 'w'
        got = 0
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
      } else if (sameOrigin(res.url || meta.url, ctx.endpoint)) {
        throw await statusError(ctx, res, repo, `downloading ${file} of ${repo}`)
      } else {
        // The CDN's own errors (an expired signed URL, ...) are no statement about the repository.
        await res.body?.cancel().catch(() => undefined)
        throw unavailable(`downloading ${file} of ${repo}: ${new URL(res.url || meta.url).origin} answered ${res.status}`)
      }
      const report = reporter(ctx, file, meta.size)
      const handle = await fsp.open(partial, flags)
      try {
        report(got, true)
        if (res.body) {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            await handle.write(chunk)
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
    // What is verified is the file on disk, not the stream: size first, then the hash.
    const size = (await sizeOf(partial)) ?? 0
    if (size !== meta.size) {
      if (size > meta.size) await fsp.rm(partial, { force: true })
      throw unavailable(
        size < meta.size
          ? `the download of ${file} from ${repo} ended after ${size} of ${meta.size} bytes; the part is kept in ${partial} and the next call resumes it`
          : `the download of ${file} from ${repo} left ${size} bytes, more than the ${meta.size} announced; it was discarded`,
      )
    }
    const check = await hashFile(partial, meta.etag)
    if (check && check.actual !== check.expected) {
      await fsp.rm(partial, { force: true })
      // A resumed part may be what was wrong: try once more from the start.
      if (resumed && attempt === 0) continue
      throw unavailable(`${file} from ${repo} failed its ${check.what} check against the ETag ${meta.etag}; the download was discarded`)
    }
    await fsp.rename(partial, blob)
    return
  }
}

// ---- recovery ------------------------------------------------------------------------------

interface Corrupt {
  /** The file's path in the repository. */
  file: string
  blob: string
  check: HashCheck
  stat: fs.Stats
}

/** Every snapshot link whose blob's content does not hash to the blob's name. */
async function corruptBlobs(snapshot: string): Promise<Corrupt[]> {
  const out: Corrupt[] = []
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name)
      const file = prefix ? `${prefix}/${entry.name}` : entry.name
      if (entry.isDirectory()) await walk(full, file)
      if (!entry.isSymbolicLink()) continue // a copy (no links here): nothing names its hash
      const blob = path.resolve(dir, await fsp.readlink(full))
      let stat: fs.Stats
      try {
        stat = await fsp.stat(blob)
      } catch {
        continue // a missing blob is not a corrupt one
      }
      const check = await hashFile(blob, path.basename(blob))
      if (check && check.actual !== check.expected) out.push({ file, blob, check, stat })
    }
  }
  await walk(snapshot, '')
  return out
}

/** After a failed load: removes corrupt blobs, and online downloads them again. */
async function recover(ctx: Context, name: string, found: Found): Promise<string | undefined> {
  const corrupt = await corruptBlobs(found.dir)
  if (corrupt.length === 0) return undefined
  for (const c of corrupt) {
    // Under the blob's lock, and only if it is still the file we hashed (not one just renamed in).
    await withBlobLock(ctx, blobLockPath(ctx.cacheDir, found.repo, path.basename(c.blob)), async () => {
      const now = await fsp.stat(c.blob).catch(() => undefined)
      if (now && now.ino === c.stat.ino && now.size === c.stat.size && now.mtimeMs === c.stat.mtimeMs) await fsp.rm(c.blob, { force: true })
    })
  }
  const what = corrupt.map((c) => `${c.file} (${c.blob} has ${c.check.what} ${c.check.actual}, its name says ${c.check.expected})`).join('; ')
  const corruptError = (then: string, cause?: unknown) =>
    new ColbertError(
      'MODEL_INVALID',
      `${found.repo} in the Hugging Face cache at ${ctx.cacheDir} had corrupt files (written by two downloads at once, or damaged on disk): ${what}. ` +
        `They were deleted; ${then}`,
      { cause },
    )
  if (ctx.offline) {
    throw corruptError('load the model once with network access (without localFilesOnly and with HF_HUB_OFFLINE unset) to download them again')
  }
  let again: Found
  try {
    again = await resolveRepo({ ...ctx, refresh: true }, name)
  } catch (e) {
    if (e instanceof ColbertError && e.code === 'ABORTED') throw e
    throw corruptError(`downloading them again failed (${e instanceof Error ? e.message : String(e)})`, e)
  }
  return again.dir
}

// ---- locking -------------------------------------------------------------------------------

/**
 * Runs `fn` holding huggingface_hub's lock on one blob (an exclusive flock / LockFileEx on
 * `<cache>/.locks/models--org--name/<etag>.lock`), so no other process — Python or Node — writes
 * the same `.incomplete` file meanwhile. A held lock is retried every 50 ms on a timer, so waiting
 * blocks neither the event loop nor a thread; the signal aborts the wait. The lock is released on
 * every path; the lock file stays, as huggingface_hub leaves it.
 */
async function withBlobLock<T>(ctx: Context, lockFile: string, fn: () => Promise<T>): Promise<T> {
  let lock: Native.NativeFileLock | null
  for (;;) {
    if (ctx.signal?.aborted) throw abortError(ctx.signal)
    try {
      lock = callNative(() => native.tryLockFile(lockFile))
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e)
      throw new ColbertError(
        'IO',
        `${message}. Concurrent downloads (ours and huggingface_hub's) are kept apart by file locks (flock); ` +
          'if the cache is on a file system without them (some network mounts), point cacheDir or HF_HUB_CACHE at a local disk',
        { cause: e },
      )
    }
    if (lock) break
    try {
      await sleep(LOCK_POLL_MS, undefined, { signal: ctx.signal })
    } catch {
      throw abortError(ctx.signal)
    }
  }
  try {
    return await fn()
  } finally {
    lock.release()
  }
}
