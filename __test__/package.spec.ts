// The shipped packages: pack the linux-x64 platform package (addon + ONNX Runtime) and the main
// package, install both into an empty project without onnxruntime-node, and encode there with
// `require` and with `import`, type-checking both entry points.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import test from 'ava'

import { FIXTURES, ROOT } from './helpers'

const supported = process.platform === 'linux' && process.arch === 'x64'

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

;(supported ? test : test.skip)('packed packages install offline and encode without onnxruntime-node', (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-pack-'))
  run(process.execPath, [path.join(ROOT, 'scripts', 'stage-platform.mjs')], ROOT)
  const platformTgz = run('npm', ['pack', '--silent', '--pack-destination', work], path.join(ROOT, 'npm', 'linux-x64-gnu')).trim()
  const mainTgz = run('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', work], ROOT).trim()
  const listing = run('tar', ['-tzf', path.join(work, platformTgz)], work)
  t.regex(listing, /libonnxruntime\.so\.1/)
  t.regex(listing, /colbert\.linux-x64-gnu\.node/)
  t.regex(listing, /ThirdPartyNotices\.txt/)
  const notices = fs.readFileSync(path.join(ROOT, 'npm', 'linux-x64-gnu', 'ThirdPartyNotices.txt'), 'utf8')
  t.regex(notices, /ONNX Runtime/)
  t.regex(notices, /^tokenizers \d+\.\d+\.\d+ — Apache-2\.0$/m, 'the Rust crates compiled into the addon are listed')
  t.notRegex(notices, /^(quote|proc-macro2|napi-derive) /m, 'proc-macros and what only they use are not in the binary')

  const app = path.join(work, 'app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }))
  run('npm', ['install', '--offline', '--no-audit', '--no-fund', path.join(work, platformTgz), path.join(work, mainTgz)], app)
  t.false(fs.existsSync(path.join(app, 'node_modules', 'onnxruntime-node')))

  const env = { ...process.env }
  delete env.COLBERT_ORT_DYLIB_PATH
  delete env.ORT_DYLIB_PATH
  delete env.NAPI_RS_NATIVE_LIBRARY_PATH
  const model = path.join(FIXTURES, 'tiny-modernbert')
  fs.writeFileSync(
    path.join(app, 'cjs.cts'),
    `import { ColBERT, maxsim, runtimeInfo } = require('colbert')
const main = async () => {
  const m = await ColBERT.fromPretrained(${JSON.stringify(model)})
  const q = await m.encode(['what is colbert?'], { isQuery: true })
  const d = await m.encode(['ColBERT is a late-interaction retriever.'], { isQuery: false })
  console.log(JSON.stringify({ ort: runtimeInfo()?.path, rows: q.offsets[1], score: maxsim(q, d)[0] }))
}
main().catch((e) => { console.error(e); process.exit(1) })
`.replace("import { ColBERT, maxsim, runtimeInfo } = require('colbert')", "import colbert = require('colbert')\nconst { ColBERT, maxsim, runtimeInfo } = colbert"),
  )
  fs.writeFileSync(
    path.join(app, 'esm.mts'),
    `import { ColBERT, type Embeddings } from 'colbert'
const m = await ColBERT.fromPretrained(${JSON.stringify(model)})
const e: Embeddings = await m.encode(['hello'], { isQuery: false })
console.log(JSON.stringify({ dim: e.dim }))
`,
  )
  run(
    process.execPath,
    [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--strict', '--skipLibCheck', '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), 'cjs.cts', 'esm.mts'],
    app,
  )
  const cjs = JSON.parse(run(process.execPath, ['cjs.cjs'], app, env))
  t.true(cjs.ort.includes(path.join('node_modules', 'colbert-linux-x64-gnu')), `ORT from the platform package: ${cjs.ort}`)
  t.is(cjs.rows, 32)
  t.true(Number.isFinite(cjs.score))
  const esm = JSON.parse(run(process.execPath, ['esm.mjs'], app, env))
  t.true(esm.dim > 0)
})

test('without its addon the package says PLATFORM_UNSUPPORTED, and the CLI still answers --help and --version', (t) => {
  // The package as installed on a platform we do not build for: everything but the addon.
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-noaddon-'))
  const pkg = path.join(work, 'node_modules', 'colbert')
  fs.mkdirSync(pkg, { recursive: true })
  for (const p of ['bin', 'dist', 'native.js', 'package.json']) fs.cpSync(path.join(ROOT, p), path.join(pkg, p), { recursive: true })
  const env = { ...process.env }
  delete env.NAPI_RS_NATIVE_LIBRARY_PATH
  t.regex(run(process.execPath, [path.join(pkg, 'bin', 'colbert.js'), '--version'], work, env), /^\d+\.\d+\.\d+\n$/)
  t.regex(run(process.execPath, [path.join(pkg, 'bin', 'colbert.js'), '--help'], work, env), /^colbert — /)
  const probe = (arch: string) =>
    JSON.parse(
      run(
        process.execPath,
        [
          '-e',
          `Object.defineProperty(process, 'arch', { value: ${JSON.stringify(arch)} })
           const c = require('colbert')
           const metrics = c.computeMetrics(new Map([['q', [{ id: 'd', score: 1 }]]]), new Map([['q', new Map([['d', 1]])]]))
           c.ColBERT.fromPretrained('x').catch((e) => console.log(JSON.stringify({ code: e.code, message: e.message, ndcg: metrics['ndcg@10'] })))`,
        ],
        work,
        env,
      ),
    )
  // A listed platform whose package is missing: reinstall.
  const missing = probe(process.arch)
  t.is(missing.code, 'PLATFORM_UNSUPPORTED')
  t.is(missing.ndcg, 1, 'what needs no addon works')
  t.regex(missing.message, /platform package \(colbert-.+\) is missing or broken.*npm install --os=linux --cpu=x64 --libc=glibc/)
  // A platform we do not build for: the list of those we do.
  const other = probe('ia32')
  t.is(other.code, 'PLATFORM_UNSUPPORTED')
  t.regex(other.message, /no prebuilt addon for \w+-ia32.*supported: linux-x64-gnu, linux-arm64-gnu, darwin-arm64, win32-x64-msvc, win32-arm64-msvc/)
})
