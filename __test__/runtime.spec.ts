// Loading ONNX Runtime: a wrong library is a clean ORT_LOAD_FAILED, and a good path afterwards works.
// This file runs in its own process (ava, workerThreads: false), so ONNX Runtime starts unloaded.
import path from 'node:path'

import test from 'ava'

import { ColBERT, ColbertError, loadRuntime, runtimeInfo, threadBudget } from '../index'
import { ortLibraryCandidates, unasar } from '../src/runtime'
import { FIXTURES } from './helpers'

test.serial('a missing library, then a non-ORT library, fail with ORT_LOAD_FAILED; a good path then works', async (t) => {
  t.is(runtimeInfo(), undefined)
  const missing = t.throws(() => loadRuntime('/nonexistent/libonnxruntime.so.1'), { instanceOf: ColbertError })
  t.is(missing?.code, 'ORT_LOAD_FAILED')
  // A real shared library that is not ONNX Runtime (the addon itself).
  const notOrt = path.join(__dirname, '..', `colbert.${process.platform === 'linux' ? `linux-${process.arch}-gnu` : ''}.node`)
  const wrong = t.throws(() => loadRuntime(notOrt), { instanceOf: ColbertError })
  t.is(wrong?.code, 'ORT_LOAD_FAILED')
  t.regex(wrong!.message, /not an ONNX Runtime library|cannot load/)
  const err = await t.throwsAsync(
    ColBERT.fromPretrained(path.join(FIXTURES, 'tiny-modernbert'), { ortLibraryPath: '/nope/libonnxruntime.so.1' }),
    { instanceOf: ColbertError },
  )
  t.is(err?.code, 'ORT_LOAD_FAILED')
  t.is(runtimeInfo(), undefined, 'nothing was half-initialised')

  const info = loadRuntime()
  t.regex(info.version, /^1\.\d+\.\d+/)
  t.true(path.isAbsolute(info.path))
  const model = await ColBERT.fromPretrained(path.join(FIXTURES, 'tiny-modernbert'))
  const e = await model.encode(['hello'], { isQuery: false })
  t.true(e.data.length > 0)
  t.deepEqual(loadRuntime(), info, 'later calls return the library already loaded')
  t.deepEqual(loadRuntime(info.path), info, 'so does naming the same library again')
  // Another library once one is loaded is an error, never silently ignored.
  const conflict = t.throws(() => loadRuntime('/other/libonnxruntime.so.1'), { instanceOf: ColbertError })
  t.is(conflict?.code, 'ORT_LOAD_FAILED')
  t.regex(conflict?.message ?? '', /already loaded from .*cannot be used too/)
  const viaModel = await t.throwsAsync(
    ColBERT.fromPretrained(path.join(FIXTURES, 'tiny-modernbert'), { ortLibraryPath: '/other/libonnxruntime.so.1' }),
    { instanceOf: ColbertError },
  )
  t.is(viaModel?.code, 'ORT_LOAD_FAILED')
})

test('the lookup order is explicit, COLBERT_ORT_DYLIB_PATH, ORT_DYLIB_PATH, bundled, onnxruntime-node', (t) => {
  const c = ortLibraryCandidates('/a/explicit.so', { COLBERT_ORT_DYLIB_PATH: '/b/colbert.so', ORT_DYLIB_PATH: '/c/ort.so' })
  t.deepEqual(c.slice(0, 3), ['/a/explicit.so', '/b/colbert.so', '/c/ort.so'])
  t.true(c[c.length - 1].includes(path.join('onnxruntime-node', 'bin', 'napi-v6')))
})

test('Electron asar paths are rewritten to app.asar.unpacked', (t) => {
  t.is(unasar('/app/resources/app.asar/node_modules/x.so'), '/app/resources/app.asar.unpacked/node_modules/x.so')
  t.is(unasar('/plain/path.so'), '/plain/path.so')
})

test('the thread budget defaults to the machine cores', (t) => {
  t.true(threadBudget() >= 1)
})
