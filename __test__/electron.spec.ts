// Electron packaging: an app is packed into app.asar the way electron-builder does it (with
// @electron/asar and the asarUnpack globs README's Electron section gives), and the paths our
// loader computes from inside app.asar must point at real files in app.asar.unpacked: the addon
// (which Electron's require then loads from there) and the ONNX Runtime library (which we load
// by path, so it must be a real file). No Electron binary is needed (none can be downloaded here).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import test from 'ava'

import { ortLibraryCandidates } from '../src/runtime'
import { ROOT } from './helpers'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const asar = require('@electron/asar') as {
  createPackageWithOptions(src: string, dest: string, options: { unpack?: string; unpackDir?: string }): Promise<void>
  listPackage(archive: string, options: { isPack: boolean }): string[]
}

const supported = process.platform === 'linux' && process.arch === 'x64'
const ADDON = 'colbert.linux-x64-gnu.node'
const ORT = 'libonnxruntime.so.1'

/** README's electron-builder `asarUnpack`: the addon and the ONNX Runtime library. */
const ASAR_UNPACK = ['**/*.node', '**/libonnxruntime*', '**/onnxruntime*.dll']

;(supported ? test : test.skip)('an app packed into app.asar finds the addon and ONNX Runtime in app.asar.unpacked', async (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-electron-'))
  // The app as electron-builder sees it before packing: our package and its platform package.
  const app = path.join(work, 'app')
  const pkg = path.join(app, 'node_modules', 'colbert')
  const platform = path.join(app, 'node_modules', 'colbert-linux-x64-gnu')
  fs.mkdirSync(pkg, { recursive: true })
  fs.mkdirSync(platform, { recursive: true })
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', main: 'main.js' }))
  fs.copyFileSync(path.join(ROOT, 'examples', 'electron', 'main.js'), path.join(app, 'main.js'))
  for (const p of ['dist', 'native.js', 'package.json']) fs.cpSync(path.join(ROOT, p), path.join(pkg, p), { recursive: true })
  fs.copyFileSync(path.join(ROOT, ADDON), path.join(platform, ADDON))
  const ortLib = path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', 'linux', 'x64', ORT)
  fs.copyFileSync(ortLib, path.join(platform, ORT))
  fs.writeFileSync(path.join(platform, 'package.json'), JSON.stringify({ name: 'colbert-linux-x64-gnu', main: ADDON }))

  const resources = path.join(work, 'resources')
  fs.mkdirSync(resources)
  const archive = path.join(resources, 'app.asar')
  await asar.createPackageWithOptions(app, archive, { unpack: `{${ASAR_UNPACK.map((g) => g.replace('**/', '')).join(',')}}` })

  // Inside the archive: the code; beside it, unpacked: the two native files.
  const inside = asar.listPackage(archive, { isPack: true }).join('\n')
  t.regex(inside, /colbert[\\/]dist[\\/]src[\\/]runtime\.js/)
  const unpacked = path.join(resources, 'app.asar.unpacked', 'node_modules', 'colbert-linux-x64-gnu')
  t.true(fs.existsSync(path.join(unpacked, ADDON)), 'the addon is unpacked')
  t.true(fs.existsSync(path.join(unpacked, ORT)), 'the ONNX Runtime library is unpacked')

  // What our loader computes inside Electron, where require.resolve and __dirname give app.asar paths.
  const inAsar = (...p: string[]) => path.join(archive, 'node_modules', ...p)
  const candidates = ortLibraryCandidates(undefined, {}, {
    packageDir: (name) => (name === 'colbert-linux-x64-gnu' ? inAsar(name) : undefined),
    dirname: inAsar('colbert', 'dist', 'src'),
  })
  t.is(candidates[0], path.join(unpacked, ORT), 'the platform package library, rewritten to app.asar.unpacked')
  t.true(fs.existsSync(candidates[0]))
  t.false(candidates.some((c) => c.includes(`app.asar${path.sep}`)), 'no candidate points into the archive')

  // electron-builder's default (only *.node unpacked) leaves the library inside the archive,
  // where native code cannot open it: the reason README names it in asarUnpack.
  const defaults = path.join(work, 'default')
  fs.mkdirSync(defaults)
  await asar.createPackageWithOptions(app, path.join(defaults, 'app.asar'), { unpack: '*.node' })
  t.false(fs.existsSync(path.join(defaults, 'app.asar.unpacked', 'node_modules', 'colbert-linux-x64-gnu', ORT)))
  fs.rmSync(work, { recursive: true, force: true })
})
