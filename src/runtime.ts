// Finding and loading the ONNX Runtime shared library.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { callNative, ColbertError } from './errors'
import { native } from './native'

const KEY = `${process.platform}-${process.arch}`

const ORT_FILE: Record<string, string> = {
  'linux-x64': 'libonnxruntime.so.1',
  'linux-arm64': 'libonnxruntime.so.1',
  'darwin-arm64': 'libonnxruntime.1.dylib',
  'win32-x64': 'onnxruntime.dll',
  'win32-arm64': 'onnxruntime.dll',
}

const PLATFORM_PACKAGE: Record<string, string> = {
  'linux-x64': 'colbert-linux-x64-gnu',
  'linux-arm64': 'colbert-linux-arm64-gnu',
  'darwin-arm64': 'colbert-darwin-arm64',
  'win32-x64': 'colbert-win32-x64-msvc',
  'win32-arm64': 'colbert-win32-arm64-msvc',
}

/** The ONNX Runtime library in use. */
export interface RuntimeInfo {
  /** The ONNX Runtime version, e.g. `1.30.0`. */
  version: string
  /** The absolute path it was loaded from. */
  path: string
}

/** Electron: native code cannot read inside app.asar, so point at app.asar.unpacked. */
export function unasar(p: string): string {
  return p.replace(/([\\/])app\.asar([\\/])/, '$1app.asar.unpacked$2')
}

function packageDir(name: string): string | undefined {
  try {
    return path.dirname(require.resolve(`${name}/package.json`))
  } catch {
    return undefined
  }
}

/**
 * The places the ONNX Runtime library is looked for, first hit wins: an explicit path,
 * `COLBERT_ORT_DYLIB_PATH`, `ORT_DYLIB_PATH`, the library bundled in our platform package (or
 * beside the addon), then an installed `onnxruntime-node`.
 */
export function ortLibraryCandidates(
  explicit?: string,
  env: NodeJS.ProcessEnv = process.env,
  /** Where packages and this module are (tests stand in for Electron's asar view here). */
  where: { packageDir: (name: string) => string | undefined; dirname: string } = { packageDir, dirname: __dirname },
): string[] {
  const file = ORT_FILE[KEY]
  const out: string[] = []
  for (const p of [explicit, env.COLBERT_ORT_DYLIB_PATH, env.ORT_DYLIB_PATH]) if (p) out.push(p)
  if (file) {
    const own = PLATFORM_PACKAGE[KEY] && where.packageDir(PLATFORM_PACKAGE[KEY])
    if (own) out.push(path.join(own, file))
    for (const up of ['..', path.join('..', '..')]) out.push(path.join(where.dirname, up, file))
    const ortNode = where.packageDir('onnxruntime-node')
    if (ortNode) out.push(path.join(ortNode, 'bin', 'napi-v6', process.platform, process.arch, file))
  }
  return out.map((p) => path.resolve(unasar(p)))
}

function resolveOrtLibrary(explicit?: string): string {
  const candidates = ortLibraryCandidates(explicit)
  // An explicitly named library is used as given, so that a wrong path is reported, not skipped.
  if (explicit || process.env.COLBERT_ORT_DYLIB_PATH || process.env.ORT_DYLIB_PATH) return candidates[0]
  const hit = candidates.find((c) => fs.statSync(c, { throwIfNoEntry: false })?.isFile())
  if (!hit) {
    throw new ColbertError(
      'ORT_LOAD_FAILED',
      `no ONNX Runtime library found for ${KEY} (looked in: ${candidates.join(', ') || 'nowhere'}); ` +
        'install the platform package, or set COLBERT_ORT_DYLIB_PATH to libonnxruntime',
    )
  }
  return hit
}

let budgetSet = false

function applyThreadBudget(): void {
  if (budgetSet) return
  budgetSet = true
  const fromEnv = Number.parseInt(process.env.COLBERT_THREADS ?? '', 10)
  const threads = Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : os.availableParallelism()
  native.setThreadBudget(threads)
}

/**
 * Loads ONNX Runtime (once per process; later calls return the library already loaded). A failed
 * load throws `ORT_LOAD_FAILED` and can be retried with another path.
 */
export function loadRuntime(libraryPath?: string): RuntimeInfo {
  const loaded = native.runtimeInfo()
  if (loaded) {
    if (libraryPath !== undefined && !sameFile(path.resolve(unasar(libraryPath)), loaded.path)) {
      throw new ColbertError(
        'ORT_LOAD_FAILED',
        `ONNX Runtime ${loaded.version} is already loaded from ${loaded.path}, and a process loads one ONNX Runtime: ` +
          `ortLibraryPath ${libraryPath} cannot be used too. Pass the same path (or none) to every model, or set COLBERT_ORT_DYLIB_PATH`,
      )
    }
    return loaded
  }
  applyThreadBudget()
  const lib = resolveOrtLibrary(libraryPath)
  return callNative(() => native.initRuntime(lib))
}

function sameFile(a: string, b: string): boolean {
  if (a === b) return true
  try {
    return fs.realpathSync(a) === fs.realpathSync(b)
  } catch {
    return false
  }
}

/** The loaded ONNX Runtime, or `undefined` before the first model load. */
export function runtimeInfo(): RuntimeInfo | undefined {
  return native.runtimeInfo() ?? undefined
}

/**
 * The number of cores all models share (tokenization and inference together). Set it with the
 * `COLBERT_THREADS` environment variable before the first model loads; default: all cores.
 */
export function threadBudget(): number {
  applyThreadBudget()
  return native.threadBudget()
}
