// The integration subpaths as packaged (dist/): `colbert` never loads LangChain or LlamaIndex;
// `colbert/langchain` and `colbert/llamaindex` resolve through package.json "exports", and without
// their framework installed they fail with DEPENDENCY_MISSING, saying what to install.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import test from 'ava'

import { ROOT } from './helpers'

const SUBPATHS = [
  { subpath: 'colbert/langchain', file: 'integrations/langchain.js', framework: '@langchain/core', exports: ['ColbertRetriever', 'ColbertReranker', 'addDocuments'], loads: true },
  { subpath: 'colbert/llamaindex', file: 'integrations/llamaindex.js', framework: '@llamaindex/core', exports: ['ColbertRetriever', 'ColbertReranker', 'addNodes'], loads: true },
  // The cluster index only needs the client's types: the caller passes its own Client.
  { subpath: 'colbert/opensearch', file: 'opensearch/index.js', framework: '@opensearch-project/opensearch', exports: ['OpenSearchIndex', 'WriteIncompleteError'], loads: false },
]

function node(args: string[], cwd: string): string {
  const env = { ...process.env }
  delete env.NODE_PATH
  delete env.NODE_OPTIONS
  return execFileSync(process.execPath, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

test('importing colbert (require and import) loads neither framework', (t) => {
  const probe = `const loaded = () => Object.keys(require.cache).filter((k) => /[\\\\/]@(langchain|llamaindex|opensearch-project)[\\\\/]/.test(k))
const c = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))})
const afterRequire = loaded()
import(${JSON.stringify(path.join(ROOT, 'dist', 'index.mjs'))}).then((m) => {
  console.log(JSON.stringify({ afterRequire, afterImport: loaded(), fuse: typeof m.fuse, ColBERT: typeof c.ColBERT }))
})`
  const out = JSON.parse(node(['-e', probe], ROOT))
  t.deepEqual(out, { afterRequire: [], afterImport: [], fuse: 'function', ColBERT: 'function' })
})

for (const { subpath, file, framework, exports, loads } of SUBPATHS) {
  test(`${subpath} resolves through package.json exports (require and import)${loads ? ` and loads ${framework}` : ''}`, (t) => {
    const probe = `const m = require(${JSON.stringify(subpath)})
import(${JSON.stringify(subpath)}).then((e) => {
  const loaded = Object.keys(require.cache).some((k) => k.includes(${JSON.stringify(path.join('node_modules', framework))}))
  console.log(JSON.stringify({ path: require.resolve(${JSON.stringify(subpath)}), cjs: ${JSON.stringify(exports)}.map((n) => typeof m[n]), esm: ${JSON.stringify(exports)}.map((n) => typeof e[n]), loaded }))
})`
    const out = JSON.parse(node(['-e', probe], ROOT))
    t.is(out.path, path.join(ROOT, 'dist', 'src', ...file.split('/')))
    t.deepEqual(out.cjs, exports.map(() => 'function'))
    t.deepEqual(out.esm, exports.map(() => 'function'))
    t.is(out.loaded, loads)
  })

  test(`${subpath} without ${framework} installed: ColbertError DEPENDENCY_MISSING naming the package`, (t) => {
    // The package as installed in an app that has not installed the framework.
    const app = fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-nopeer-'))
    t.teardown(() => fs.rmSync(app, { recursive: true, force: true }))
    const pkg = path.join(app, 'node_modules', 'colbert')
    fs.mkdirSync(pkg, { recursive: true })
    for (const p of ['dist', 'native.js', 'package.json']) fs.cpSync(path.join(ROOT, p), path.join(pkg, p), { recursive: true })
    const probe = `const show = (e) => ({ name: e.name, code: e.code, message: e.message, isColbert: e instanceof require('colbert').ColbertError })
let cjs
try { require(${JSON.stringify(subpath)}) } catch (e) { cjs = show(e) }
import(${JSON.stringify(subpath)}).then(() => console.log('loaded'), (e) => console.log(JSON.stringify({ cjs, esm: show(e), colbert: typeof require('colbert').fuse })))`
    const out = JSON.parse(node(['-e', probe], app))
    for (const e of [out.cjs, out.esm]) {
      t.like(e, { name: 'ColbertError', code: 'DEPENDENCY_MISSING', isColbert: true })
      t.true(e.message.includes(`${subpath} needs the optional package ${framework}`), e.message)
      t.regex(e.message, new RegExp(`npm install ${framework.replace('/', '\\/')}@`))
    }
    t.is(out.colbert, 'function', 'colbert itself still works')
  })
}
