// Bad input reaches JavaScript as a ColbertError with a stable code, never as a crash.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import test from 'ava'

import { ColBERT, ColbertError } from '../index'
import { fromNative } from '../src/errors'
import { FIXTURES, ROOT } from './helpers'

const MODEL = path.join(FIXTURES, 'tiny-modernbert')

function copyModel(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-model-'))
  fs.cpSync(MODEL, dir, { recursive: true })
  return dir
}

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
    return undefined
  } catch (e) {
    if (!(e instanceof ColbertError)) throw e
    return e.code
  }
}

test('a missing folder is MODEL_NOT_FOUND', async (t) => {
  t.is(await code(ColBERT.fromPretrained(path.join(FIXTURES, 'no-such-model'))), 'MODEL_NOT_FOUND')
})

test('a folder without ONNX weights is MODEL_NOT_FOUND and says how to export', async (t) => {
  const dir = copyModel()
  fs.rmSync(path.join(dir, 'model.onnx'))
  fs.rmSync(path.join(dir, 'model_int8.onnx'))
  const err = await t.throwsAsync(ColBERT.fromPretrained(dir), { instanceOf: ColbertError })
  t.is(err?.code, 'MODEL_NOT_FOUND')
  t.regex(err!.message, /export_onnx\.py/)
})

test('quantized: true without model_int8.onnx is MODEL_NOT_FOUND', async (t) => {
  const dir = copyModel()
  fs.rmSync(path.join(dir, 'model_int8.onnx'))
  t.is(await code(ColBERT.fromPretrained(dir, { quantized: true })), 'MODEL_NOT_FOUND')
})

test('a missing tokenizer.json is MODEL_NOT_FOUND', async (t) => {
  const dir = copyModel()
  fs.rmSync(path.join(dir, 'tokenizer.json'))
  t.is(await code(ColBERT.fromPretrained(dir)), 'MODEL_NOT_FOUND')
})

test('malformed JSON is MODEL_INVALID and names the file', async (t) => {
  for (const file of ['config_sentence_transformers.json', 'modules.json', 'tokenizer.json']) {
    const dir = copyModel()
    fs.writeFileSync(path.join(dir, file), '{ "query_length": 32,')
    const err = await t.throwsAsync(ColBERT.fromPretrained(dir), { instanceOf: ColbertError })
    t.is(err?.code, 'MODEL_INVALID', file)
    t.true(err!.message.includes(file), err!.message)
  }
})

test('a config value of the wrong type is MODEL_INVALID', async (t) => {
  const dir = copyModel()
  const f = path.join(dir, 'config_sentence_transformers.json')
  const cfg = JSON.parse(fs.readFileSync(f, 'utf8'))
  cfg.query_length = 'thirty-two'
  fs.writeFileSync(f, JSON.stringify(cfg))
  t.is(await code(ColBERT.fromPretrained(dir)), 'MODEL_INVALID')
})

test('an ONNX graph without the expected inputs and outputs is MODEL_INVALID', async (t) => {
  const dir = copyModel()
  fs.copyFileSync(path.join(FIXTURES, 'wrong-io.onnx'), path.join(dir, 'model.onnx'))
  const err = await t.throwsAsync(ColBERT.fromPretrained(dir, { quantized: false }), { instanceOf: ColbertError })
  t.is(err?.code, 'MODEL_INVALID')
  t.regex(err!.message, /input_ids/)
})

test('a file that is not ONNX is MODEL_INVALID', async (t) => {
  const dir = copyModel()
  fs.writeFileSync(path.join(dir, 'model.onnx'), 'not a model')
  t.is(await code(ColBERT.fromPretrained(dir, { quantized: false })), 'MODEL_INVALID')
})

test('bad options and texts are INVALID_ARGUMENT', async (t) => {
  t.is(await code(ColBERT.fromPretrained(MODEL, { threads: 0 })), 'INVALID_ARGUMENT')
  t.is(await code(ColBERT.fromPretrained(MODEL, { executionProvider: 'tpu' as 'cpu' })), 'INVALID_ARGUMENT')
  t.is(await code(ColBERT.fromPretrained(MODEL, { bogus: 1 } as object)), 'INVALID_ARGUMENT')
  t.is(await code(ColBERT.fromPretrained(MODEL, { queryLength: 2 })), 'INVALID_ARGUMENT')
  const model = await ColBERT.fromPretrained(MODEL)
  t.is(await code(model.encode(['ok', 3 as unknown as string])), 'INVALID_ARGUMENT')
  t.is(await code(model.encode('not an array' as unknown as string[])), 'INVALID_ARGUMENT')
  t.is(await code(model.encode(['ok'], { batchSize: 0 })), 'INVALID_ARGUMENT')
  t.is(await code(model.encode(['ok'], { signal: {} as AbortSignal })), 'INVALID_ARGUMENT')
})

test('an already aborted signal rejects with ABORTED and nothing runs', async (t) => {
  const model = await ColBERT.fromPretrained(MODEL)
  let calls = 0
  const err = await t.throwsAsync(
    model.encode(['a'], { signal: AbortSignal.abort(), onProgress: () => calls++ }),
    { instanceOf: ColbertError },
  )
  t.is(err?.code, 'ABORTED')
  t.is(calls, 0)
})

test('aborting during a long call rejects with ABORTED, and the model keeps working', async (t) => {
  const model = await ColBERT.fromPretrained(MODEL, { threads: 1 })
  const texts = Array.from({ length: 400 }, (_, i) => `document number ${i} `.repeat(30))
  const controller = new AbortController()
  let seen = 0
  const p = model.encode(texts, {
    isQuery: false,
    batchSize: 4,
    signal: controller.signal,
    onProgress: ({ done }) => {
      seen = done
      if (done >= 8) controller.abort()
    },
  })
  const err = await t.throwsAsync(p, { instanceOf: ColbertError })
  t.is(err?.code, 'ABORTED')
  t.true(seen < texts.length, `stopped early (saw ${seen} of ${texts.length})`)
  const ok = await model.encode(['still works'], { isQuery: false })
  t.true(ok.data.length > 0)
})

test('empty texts and empty lists have defined results', async (t) => {
  const model = await ColBERT.fromPretrained(MODEL)
  const none = await model.encode([])
  t.is(none.offsets.length, 1)
  t.is(none.data.length, 0)
  const d = await model.encode(['', '   '], { isQuery: false })
  // CLS, [D] and SEP remain for an empty document, as in PyLate.
  t.is(d.offsets[1] - d.offsets[0], 3)
  t.is(d.offsets[2] - d.offsets[1], 3)
  const q = await model.encode([''], { isQuery: true })
  t.is(q.offsets[1], model.config.queryLength)
})

test('every code the engines raise reaches JavaScript as that code and is documented', (t) => {
  const engine = ['crates/colbert-encode/src/error.rs', 'crates/colbert-plaid/src/error.rs']
    .map((f) => fs.readFileSync(path.join(ROOT, f), 'utf8'))
    .join('\n')
  // The string literals of each error type's `code()` match.
  const codes = new Set<string>()
  for (const body of engine.split(/fn code\(/).slice(1)) {
    const match = body.slice(0, body.indexOf('\n    }\n'))
    for (const m of match.matchAll(/"([A-Z][A-Z0-9_]+)"/g)) codes.add(m[1])
  }
  t.true(codes.size >= 12, [...codes].join(' '))
  const architecture = fs.readFileSync(path.join(ROOT, 'ARCHITECTURE.md'), 'utf8')
  for (const code of codes) {
    const err = fromNative(new Error(`${code}: something`))
    t.is(err.code as string, code, `${code} is unknown to src/errors.ts`)
    t.is(err.message, 'something')
    t.true(architecture.includes(`\`${code}\``), `${code} is missing from ARCHITECTURE.md's table of codes`)
  }
  // Anything else is not passed off as a code.
  t.is(fromNative(new Error('NOT_A_CODE: x')).code, 'INTERNAL')
})
