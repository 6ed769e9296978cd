// The set-up both README commands start with (`npm run demo`, `npm test`): install the
// dependencies the way `npm ci` does when they are missing or out of date, then build the addon
// and the TypeScript layer when their sources changed. A second run with nothing changed does
// nothing and says so. Uses only Node's standard library (it runs before anything is installed).
//
//   node scripts/setup.mjs [--force]   (--force: reinstall and rebuild everything)
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { npmCiIfChanged, npmCommand } from './npm-ci.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const force = process.argv.includes('--force')
const at = (...p) => path.join(root, ...p)
const log = (s) => process.stderr.write(`setup: ${s}\n`)

function run(cmd, args, env = {}) {
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } })
}

const npm = (args, env) => run(...npmCommand(args), env)

/** Newest modification time (ms) under the given files and folders (skipping build outputs). */
function newest(paths) {
  let t = 0
  const visit = (p) => {
    let st
    try {
      st = fs.statSync(p)
    } catch {
      return
    }
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(p)) if (name !== 'target' && name !== 'node_modules' && !name.startsWith('.')) visit(path.join(p, name))
    } else t = Math.max(t, st.mtimeMs)
  }
  paths.forEach(visit)
  return t
}

const mtime = (p) => fs.statSync(p, { throwIfNoEntry: false })?.mtimeMs ?? 0

// 1. Dependencies: `npm ci` when package-lock.json is not what was last installed.
// onnxruntime-node's install script would download CUDA files (and fail offline); the CPU library
// we use ships in its npm tarball. npm 11 skips that script (package.json allowScripts); npm 10
// runs it, and this variable tells it to do nothing.
const installed = npmCiIfChanged(root, { what: 'dependencies', env: { ONNXRUNTIME_NODE_INSTALL: 'skip' }, force, log })
if (!installed) log('dependencies are up to date')

// 2. The addon: cargo rebuilds what changed; skip it entirely when no Rust input is newer.
// This machine's addon (napi's name for the platform); a cross-built one lives in target/cross/.
const abi = process.platform === 'linux' ? '-gnu' : process.platform === 'win32' ? '-msvc' : ''
const addon = `colbert.${process.platform}-${process.arch}${abi}.node`
const rustInputs = [
  at('crates'),
  at('Cargo.toml'),
  at('Cargo.lock'),
  at('rust-toolchain.toml'),
  at('.cargo'),
  at('scripts', 'build-native.mjs'),
  at('scripts', 'toolchain', 'package-lock.json'),
]
if (force || !fs.existsSync(at(addon)) || !fs.existsSync(at('native.js')) || newest(rustInputs) > Math.min(mtime(at(addon)), mtime(at('native.d.ts')))) {
  log('building the addon (scripts/build-native.mjs: napi build --release) ...')
  npm(['run', '--silent', 'build:native'])
} else log(`the addon is up to date (${addon})`)

// 3. The TypeScript layer.
const tsInputs = [at('index.ts'), at('src'), at('tsconfig.json'), at('tsconfig.build.json'), at('native.d.ts'), at('native.js'), at('package.json')]
if (force || newest(tsInputs) > mtime(at('dist', 'index.mjs'))) {
  log('building the TypeScript layer (dist/) ...')
  npm(['run', '--silent', 'build:ts'])
} else log('dist/ is up to date')
