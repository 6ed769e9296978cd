// Loads the napi-generated binding (`native.js` at the package root, a build output) and types it.
// The load is lazy, on the first native call, so that what needs no addon (the CLI's --help and
// --version, loadBeir, computeMetrics) works on any platform, and a missing addon is a
// ColbertError that says what to do instead of napi's generic text.
import fs from 'node:fs'
import path from 'node:path'

import type * as Native from '../native'
import { ColbertError } from './errors'

/** The targets we publish a platform package for (package.json `napi.targets`). */
export const SUPPORTED_PLATFORMS = ['linux-x64-gnu', 'linux-arm64-gnu', 'darwin-arm64', 'win32-x64-msvc', 'win32-arm64-msvc'] as const

/** This machine as napi names its packages: `linux-x64-gnu`, `linux-x64-musl`, `darwin-x64`, … */
export function platformId(): string {
  const { platform, arch } = process
  if (platform === 'linux') {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
    return `linux-${arch}-${report?.header?.glibcVersionRuntime ? 'gnu' : 'musl'}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

/** `npm install` flags that select a platform package when installing for another machine. */
function installHint(): string {
  return "to install for another platform than this one (a Docker image built on a Mac, an Electron app packaged for another OS), pass npm install --os=linux --cpu=x64 --libc=glibc (or arm64, darwin, win32)"
}

function platformError(cause: unknown): ColbertError {
  const found = platformId()
  const listed = (SUPPORTED_PLATFORMS as readonly string[]).includes(found)
  const message = listed
    ? `the colbert addon for ${found} did not load: its platform package (colbert-${found}) is missing or broken. ` +
      `Reinstall it (npm has skipped optional dependencies before: remove node_modules and package-lock.json, then npm install); ${installHint()}`
    : `colbert has no prebuilt addon for ${found}; supported: ${SUPPORTED_PLATFORMS.join(', ')}. ${installHint()}`
  return new ColbertError('PLATFORM_UNSUPPORTED', message, { cause })
}

function locate(): string {
  // From source (tsx: src/) the root is one level up; from the build (dist/src/) two.
  for (const up of ['..', path.join('..', '..')]) {
    const candidate = path.join(__dirname, up, 'native.js')
    if (fs.existsSync(candidate)) return candidate
  }
  throw new ColbertError('INTERNAL', 'native.js not found next to the package: run `npm run build` first')
}

let binding: typeof Native | undefined

function load(): typeof Native {
  if (binding) return binding
  const file = locate()
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    binding = require(file) as typeof Native
  } catch (e) {
    throw platformError(e)
  }
  return binding
}

/** The binding, loaded on first use (every property access goes to the loaded module). */
export const native: typeof Native = new Proxy({} as typeof Native, {
  get: (_, key) => Reflect.get(load(), key),
  has: (_, key) => Reflect.has(load(), key),
})
export type { Native }
