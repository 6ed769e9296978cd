// Builds the addon (`npm run build:native`). On a Linux x64 host every Linux target links with
// napi-rs' gcc cross toolchain, whose sysroot is glibc 2.17, so the addon runs on any glibc the
// bundled ONNX Runtime runs on (2.28) and not only on the glibc of the machine that built it. The
// toolchains are npm packages pinned in scripts/toolchain/package-lock.json; this script installs
// them there (npm ci) and unpacks the one it needs into scripts/toolchain/node_modules/.unpacked/.
// Other hosts (macOS, Windows, Linux arm64) build with their own toolchain.
//
//   node scripts/build-native.mjs [--target <rust triple>] [--debug]
//
// The host's target is built into the repository root with native.js and native.d.ts, as before.
// Another target (e.g. aarch64-unknown-linux-gnu on x64) goes to target/cross/<platform>/, where
// scripts/stage-platform.mjs --platform <platform> picks it up.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { npmCiIfChanged } from './npm-ci.mjs'
import { PLATFORMS, platformOfTriple } from './platforms.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const log = (s) => process.stderr.write(`build-native: ${s}\n`)
const args = process.argv.slice(2)
const flag = (name) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}
const debug = args.includes('--debug')

const host = execFileSync('rustc', ['-vV'], { cwd: root, encoding: 'utf8' }).match(/^host: (\S+)$/m)[1]
const target = flag('--target') ?? host

const platform = platformOfTriple(target)
if (!platform) {
  const known = Object.values(PLATFORMS).map((p) => p.triple).join(', ')
  throw new Error(`build-native: ${target} is not one of the targets we ship (${known})`)
}

function ensureRustTarget(triple) {
  const installed = execFileSync('rustup', ['target', 'list', '--installed'], { cwd: root, encoding: 'utf8' }).split('\n')
  if (!installed.includes(triple)) {
    log(`installing the Rust standard library for ${triple} (rustup target add)`)
    execFileSync('rustup', ['target', 'add', triple], { cwd: root, stdio: 'inherit' })
  }
}

/**
 * The unpacked glibc 2.17 gcc toolchain for `triple`, or undefined where there is none for this
 * host. Installs scripts/toolchain when its lock changed and unpacks the toolchain once.
 */
function crossToolchain(triple) {
  if (process.platform !== 'linux' || process.arch !== 'x64') return undefined
  const dir = path.join(root, 'scripts', 'toolchain')
  npmCiIfChanged(dir, { what: 'the glibc 2.17 cross toolchains', log })
  const require = createRequire(path.join(dir, 'package.json'))
  const name = `@napi-rs/cross-toolchain-x64-target-${triple.split('-')[0]}`
  let pkg
  try {
    pkg = require(`${name}/package.json`)
  } catch {
    return undefined
  }
  const out = path.join(dir, 'node_modules', '.unpacked', `${triple}-${pkg.version}`)
  if (!fs.existsSync(path.join(out, '.complete'))) {
    log(`unpacking ${name}@${pkg.version} into ${path.relative(root, out)} ...`)
    const { xz } = require('@napi-rs/lzma')
    const { Archive } = require('@napi-rs/tar')
    fs.rmSync(out, { recursive: true, force: true })
    fs.mkdirSync(out, { recursive: true })
    new Archive(xz.decompressSync(fs.readFileSync(require(name).toolchainPath))).unpack(out)
    fs.writeFileSync(path.join(out, '.complete'), '')
  }
  return out
}

const env = { ...process.env }
if (target !== host) ensureRustTarget(target)
if (target.endsWith('-linux-gnu')) {
  const tc = crossToolchain(target)
  if (tc) {
    const bin = (tool) => path.join(tc, 'bin', `${target}-${tool}`)
    const upper = target.toUpperCase().replace(/-/g, '_')
    const lower = target.replace(/-/g, '_')
    env[`CARGO_TARGET_${upper}_LINKER`] = bin('gcc')
    // cc-rs (C code in build scripts) reads CC_<triple> for the target, in host and cross builds.
    env[`CC_${lower}`] = bin('gcc')
    env[`CXX_${lower}`] = bin('g++')
    env[`AR_${lower}`] = bin('ar')
    log(`linking ${target} with ${path.relative(root, bin('gcc'))} (glibc 2.17 sysroot)`)
  } else {
    log(`no glibc 2.17 toolchain for a ${process.platform}-${process.arch} host: ${target} links against this machine's glibc`)
  }
}

const cross = target !== host
const outDir = cross ? path.join('target', 'cross', platform) : '.'
const napi = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
const napiArgs = ['build', '--platform', '--target', target, '-o', outDir, '--manifest-path', 'crates/colbert-node/Cargo.toml']
if (!debug) napiArgs.push('--release')
if (cross) napiArgs.push('--no-js', '--dts', 'native.d.ts')
else napiArgs.push('--js', 'native.js', '--dts', 'native.d.ts')
execFileSync(process.execPath, [napi, ...napiArgs], { cwd: root, env, stdio: 'inherit' })
log(`built ${path.join(outDir, `colbert.${platform}.node`)}`)
