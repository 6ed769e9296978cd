// The bad-input matrix: every case is a call a user could make by mistake, through the API or the
// `colbert` command. Each must fail with its exact code (CLI: exit 2 for usage errors, exit 1 and
// the code on stderr otherwise), and nothing on disk may change: the workspace (an index, a
// folder of someone's files, sources, model folders) is hashed before and after every case.
import { spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import test from 'ava'

import { ColBERT, ColbertError, evaluate, loadBeir, loadRuntime, maxsim, PlaidIndex, rerank, Retriever, type Embeddings } from '../index'
import { FIXTURES, ROOT, STANDIN } from './helpers'

const BIN = path.join(ROOT, 'bin', 'colbert.js')
const DIM = 128

/** Deterministic unit rows: `n` documents of `tokens` rows each. */
function embeddings(n: number, tokens = 5, seed = 1): Embeddings {
  let s = seed
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1
  const data = new Float32Array(n * tokens * DIM)
  for (let r = 0; r < n * tokens; r++) {
    let norm = 0
    for (let k = 0; k < DIM; k++) norm += (data[r * DIM + k] = rand()) ** 2
    for (let k = 0; k < DIM; k++) data[r * DIM + k] /= Math.sqrt(norm)
  }
  return { dim: DIM, offsets: Uint32Array.from({ length: n + 1 }, (_, i) => i * tokens), data }
}

function write(file: string, content: string | Uint8Array) {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, content)
}

/** Every file and folder under `dir`: relative path → content hash (or 'dir'). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name)
      const rel = path.relative(dir, p)
      if (e.isDirectory()) {
        out[rel] = 'dir'
        walk(p)
      } else out[rel] = crypto.createHash('sha256').update(fs.readFileSync(p).toString('base64')).digest('hex')
    }
  }
  walk(dir)
  return out
}

const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-bad-input-'))
const at = (...p: string[]) => path.join(ws, ...p)

const setup = (async () => {
  // Someone's own files, which no command may touch.
  write(at('notes', 'thesis.md'), '# Thesis\n\nChapter one is about retrieval.\n')
  write(at('notes', 'sub', 'notes.txt'), 'private notes\n')
  write(at('notes', 'photo.jpg'), Uint8Array.of(0xff, 0xd8, 0xff, 0xe0, 1, 2, 3))
  write(at('a-file'), 'just a file\n')
  write(at('docs.jsonl'), '{"id":"d1","text":"alpha"}\n{"id":"d2","text":"beta"}\n')
  write(at('bad.jsonl'), '{"id":"d1","text":"alpha"}\n{"id":"d2", oops}\n')
  write(at('dups.jsonl'), '{"id":"d1","text":"alpha"}\n{"id":"d1","text":"beta"}\n')
  write(at('no-text.jsonl'), '{"id":"d1","title":"t"}\n')
  write(at('surrogate.jsonl'), '{"id":"a\\ud800","text":"alpha"}\n')
  write(at('empty.jsonl'), '')
  write(at('pools.tsv'), 'q1\n')
  // A BEIR folder of another collection than the index's.
  write(at('beir', 'corpus.jsonl'), '{"_id":"other-1","title":"","text":"gamma"}\n{"_id":"other-2","title":"","text":"delta"}\n')
  write(at('beir', 'queries.jsonl'), '{"_id":"q1","text":"gamma?"}\n')
  write(at('beir', 'qrels', 'test.tsv'), 'query-id\tcorpus-id\tscore\nq1\tother-1\t1\n')
  // Broken model folders, copies of the tiny BERT fixture.
  const tiny = path.join(FIXTURES, 'tiny-bert')
  for (const name of ['list-config', 'bad-json', 'too-long', 'no-tokenizer', 'string-length', 'dense-list']) {
    fs.cpSync(tiny, at('models', name), { recursive: true, filter: (src) => !src.includes(`${path.sep}golden`) })
  }
  write(at('models', 'list-config', 'config_sentence_transformers.json'), '[]')
  write(at('models', 'bad-json', 'config_sentence_transformers.json'), '{ "query_length": 32,')
  const st = JSON.parse(fs.readFileSync(path.join(tiny, 'config_sentence_transformers.json'), 'utf8'))
  write(at('models', 'too-long', 'config_sentence_transformers.json'), JSON.stringify({ ...st, document_length: 4096 }))
  write(at('models', 'string-length', 'config_sentence_transformers.json'), JSON.stringify({ ...st, query_length: '32' }))
  write(at('models', 'dense-list', '1_Dense', 'config.json'), '[128]')
  fs.rmSync(at('models', 'no-tokenizer', 'tokenizer.json'))
  // An index with stored documents.
  const index = await PlaidIndex.create(at('index'), { numCentroids: 16 })
  const ids = Array.from({ length: 30 }, (_, i) => `doc-${i}`)
  await index.add(ids, embeddings(30), { documents: ids.map((id) => ({ text: `text of ${id}`, metadata: { n: Number(id.slice(4)) } })) })
  const model = await ColBERT.fromPretrained(STANDIN, { quantized: true })
  loadRuntime()
  return { index, model }
})()

test.after.always(() => fs.rmSync(ws, { recursive: true, force: true }))

// ---------------------------------------------------------------------------------------------
// The API

type Setup = Awaited<typeof setup>
const api: Array<[string, string, (s: Setup) => unknown]> = [
  // Models
  ['fromPretrained: a missing folder', 'MODEL_NOT_FOUND', () => ColBERT.fromPretrained(at('models', 'missing'))],
  ['fromPretrained: a folder without tokenizer.json', 'MODEL_NOT_FOUND', () => ColBERT.fromPretrained(at('models', 'no-tokenizer'))],
  ['fromPretrained: a settings file holding []', 'MODEL_INVALID', () => ColBERT.fromPretrained(at('models', 'list-config'))],
  ['fromPretrained: a Dense config holding a list', 'MODEL_INVALID', () => ColBERT.fromPretrained(at('models', 'dense-list'))],
  ['fromPretrained: malformed JSON', 'MODEL_INVALID', () => ColBERT.fromPretrained(at('models', 'bad-json'))],
  ['fromPretrained: a string where a length belongs', 'MODEL_INVALID', () => ColBERT.fromPretrained(at('models', 'string-length'))],
  ['fromPretrained: the folder asks for more positions than the model has', 'MODEL_INVALID', () => ColBERT.fromPretrained(at('models', 'too-long'))],
  ['fromPretrained: documentLength above the model positions', 'INVALID_ARGUMENT', () => ColBERT.fromPretrained(STANDIN, { documentLength: 513 })],
  ['fromPretrained: queryLength above the model positions', 'INVALID_ARGUMENT', () => ColBERT.fromPretrained(STANDIN, { queryLength: 100_000 })],
  ['fromPretrained: queryLength 2 leaves no room', 'INVALID_ARGUMENT', () => ColBERT.fromPretrained(STANDIN, { queryLength: 2 })],
  ['fromPretrained: an unknown option', 'INVALID_ARGUMENT', () => ColBERT.fromPretrained(STANDIN, { quantised: true } as never)],
  ['fromPretrained: threads 0', 'INVALID_ARGUMENT', () => ColBERT.fromPretrained(STANDIN, { threads: 0 })],
  ['fromPretrained: an unknown execution provider', 'INVALID_ARGUMENT', () => ColBERT.fromPretrained(STANDIN, { executionProvider: 'tpu' } as never)],
  ['fromPretrained: quantized without model_int8.onnx', 'MODEL_NOT_FOUND', () => ColBERT.fromPretrained(at('models', 'missing-int8'), { quantized: true })],
  ['fromPretrained: a graph with other inputs', 'MODEL_INVALID', () => ColBERT.fromPretrained(wrongIoFolder())],
  ['fromPretrained: another ONNX Runtime once one is loaded', 'ORT_LOAD_FAILED', () => ColBERT.fromPretrained(STANDIN, { ortLibraryPath: at('other', 'libonnxruntime.so.1') })],
  ['fromPretrained: a name that is not a string', 'INVALID_ARGUMENT', () => ColBERT.fromPretrained(42 as never)],
  ['fromPretrained: an already aborted signal', 'ABORTED', () => ColBERT.fromPretrained(STANDIN, { signal: AbortSignal.abort() })],
  // Encoding
  ['encode: texts that are not an array', 'INVALID_ARGUMENT', ({ model }) => model.encode('one text' as never)],
  ['encode: a text that is not a string', 'INVALID_ARGUMENT', ({ model }) => model.encode(['ok', 7 as never])],
  ['encode: batchSize 0', 'INVALID_ARGUMENT', ({ model }) => model.encode(['a'], { batchSize: 0 })],
  ['encode: isQuery that is not a boolean', 'INVALID_ARGUMENT', ({ model }) => model.encode(['a'], { isQuery: 'yes' as never })],
  ['encode: a signal that is not an AbortSignal', 'INVALID_ARGUMENT', ({ model }) => model.encode(['a'], { signal: {} as never })],
  ['encode: an aborted signal', 'ABORTED', ({ model }) => model.encode(['a'], { signal: AbortSignal.abort() })],
  ['encode: onProgress that is not a function', 'INVALID_ARGUMENT', ({ model }) => model.encode(['a'], { onProgress: 1 as never })],
  ['encode: an unknown option', 'INVALID_ARGUMENT', ({ model }) => model.encode(['a'], { batch: 2 } as never)],
  // MaxSim and reranking
  ['maxsim: offsets that are not a Uint32Array', 'INVALID_ARGUMENT', () => maxsim({ dim: DIM, offsets: [0, 1] as never, data: new Float32Array(DIM) }, embeddings(1))],
  ['maxsim: different dims', 'INVALID_ARGUMENT', () => maxsim({ dim: 4, offsets: Uint32Array.of(0, 1), data: new Float32Array(4) }, embeddings(1))],
  ['maxsim: offsets past the data', 'INVALID_ARGUMENT', () => maxsim({ dim: DIM, offsets: Uint32Array.of(0, 9), data: new Float32Array(DIM) }, embeddings(1))],
  ['maxsim: NaN in the data', 'INVALID_ARGUMENT', () => maxsim({ dim: DIM, offsets: Uint32Array.of(0, 1), data: new Float32Array(DIM).fill(NaN) }, embeddings(1))],
  ['rerank: one id list for two queries', 'INVALID_ARGUMENT', () => rerank({ documentsIds: [['a']], queriesEmbeddings: embeddings(2), documentsEmbeddings: [embeddings(1)] })],
  ['rerank: ids and embeddings of different lengths', 'INVALID_ARGUMENT', () => rerank({ documentsIds: [['a', 'b']], queriesEmbeddings: embeddings(1), documentsEmbeddings: [embeddings(1)] })],
  ['Retriever: not an index', 'INVALID_ARGUMENT', () => new Retriever({} as never)],
  // Creating and opening indexes
  ['create: a folder of other files', 'INDEX_EXISTS', () => PlaidIndex.create(at('notes'))],
  ['create: a folder of other files, with overwrite', 'INDEX_EXISTS', () => PlaidIndex.create(at('notes'), { overwrite: true })],
  ['create: over an index without overwrite', 'INDEX_EXISTS', () => PlaidIndex.create(at('index'))],
  ['create: over a file', 'IO', () => PlaidIndex.create(at('a-file'))],
  ['create: nbits 3', 'INVALID_ARGUMENT', () => PlaidIndex.create(at('new-3'), { nbits: 3 as never })],
  ['create: a negative seed', 'INVALID_ARGUMENT', () => PlaidIndex.create(at('new-seed'), { seed: -1 })],
  ['create: numCentroids 0', 'INVALID_ARGUMENT', () => PlaidIndex.create(at('new-k'), { numCentroids: 0 })],
  ['create: an unknown option', 'INVALID_ARGUMENT', () => PlaidIndex.create(at('new-opt'), { bits: 4 } as never)],
  ['create: an empty path', 'INVALID_ARGUMENT', () => PlaidIndex.create('')],
  ['open: a missing folder', 'INDEX_NOT_FOUND', () => PlaidIndex.open(at('missing'))],
  ['open: a folder of other files', 'INDEX_NOT_FOUND', () => PlaidIndex.open(at('notes'))],
  ['open: a path that is not a string', 'INVALID_ARGUMENT', () => PlaidIndex.open(undefined as never)],
  // Adding
  ['add: fewer ids than documents', 'INVALID_ARGUMENT', ({ index }) => index.add(['x1'], embeddings(2))],
  ['add: a duplicate id in one call', 'INVALID_ARGUMENT', ({ index }) => index.add(['x1', 'x1'], embeddings(2))],
  ['add: an id already in the index', 'INVALID_ARGUMENT', ({ index }) => index.add(['doc-1'], embeddings(1))],
  ['add: an empty id', 'INVALID_ARGUMENT', ({ index }) => index.add([''], embeddings(1))],
  ['add: an id that is not a string', 'INVALID_ARGUMENT', ({ index }) => index.add([5 as never], embeddings(1))],
  ['add: an id with a lone high surrogate', 'INVALID_ARGUMENT', ({ index }) => index.add(['a\uD800'], embeddings(1))],
  ['add: an id with a lone low surrogate', 'INVALID_ARGUMENT', ({ index }) => index.add(['\uDC00b'], embeddings(1))],
  ['add: another dim than the index', 'INVALID_ARGUMENT', ({ index }) => index.add(['x1'], { dim: 4, offsets: Uint32Array.of(0, 1), data: Float32Array.of(1, 0, 0, 0) })],
  ['add: a NaN embedding', 'INVALID_ARGUMENT', ({ index }) => index.add(['x1'], { dim: DIM, offsets: Uint32Array.of(0, 1), data: new Float32Array(DIM).fill(NaN) })],
  ['add: a document without tokens', 'INVALID_ARGUMENT', ({ index }) => index.add(['x1'], { dim: DIM, offsets: Uint32Array.of(0, 0), data: new Float32Array(0) })],
  ['add: fewer stored documents than ids', 'INVALID_ARGUMENT', ({ index }) => index.add(['x1', 'x2'], embeddings(2), { documents: [{ text: 'a' }] })],
  ['add: metadata that is an array', 'INVALID_ARGUMENT', ({ index }) => index.add(['x1'], embeddings(1), { documents: [{ metadata: [1] as never }] })],
  ['add: metadata holding NaN', 'INVALID_ARGUMENT', ({ index }) => index.add(['x1'], embeddings(1), { documents: [{ metadata: { n: NaN } }] })],
  ['add: metadata holding Infinity', 'INVALID_ARGUMENT', ({ index }) => index.add(['x1'], embeddings(1), { documents: [{ metadata: { deep: { n: -Infinity } } }] })],
  ['add: metadata holding a BigInt', 'INVALID_ARGUMENT', ({ index }) => index.add(['x1'], embeddings(1), { documents: [{ metadata: { n: 1n } as never }] })],
  ['add: metadata with a lone surrogate', 'INVALID_ARGUMENT', ({ index }) => index.add(['x1'], embeddings(1), { documents: [{ metadata: { s: 'x\uD800' } }] })],
  ['add: a stored text with a lone surrogate', 'INVALID_ARGUMENT', ({ index }) => index.add(['x1'], embeddings(1), { documents: [{ text: 'x\uDFFF' }] })],
  ['add: a stored text that is not a string', 'INVALID_ARGUMENT', ({ index }) => index.add(['x1'], embeddings(1), { documents: [{ text: 3 as never }] })],
  ['add: an unknown stored-document key', 'INVALID_ARGUMENT', ({ index }) => index.add(['x1'], embeddings(1), { documents: [{ title: 't' } as never] })],
  ['add: an unknown option', 'INVALID_ARGUMENT', ({ index }) => index.add(['x1'], embeddings(1), { upsert: true } as never)],
  ['add: replace that is not a boolean', 'INVALID_ARGUMENT', ({ index }) => index.add(['x1'], embeddings(1), { replace: 'yes' as never })],
  ['add: a null batch in a stream', 'INVALID_ARGUMENT', ({ index }) => index.add([{ ids: ['x1'], embeddings: embeddings(1) }, null as never])],
  ['add: documents beside a stream', 'INVALID_ARGUMENT', ({ index }) => index.add([{ ids: ['x1'], embeddings: embeddings(1) }], { documents: [] })],
  ['add: neither ids nor batches', 'INVALID_ARGUMENT', ({ index }) => index.add(42 as never)],
  ['add: an aborted signal', 'ABORTED', ({ index }) => index.add(['x1'], embeddings(1), { signal: AbortSignal.abort() })],
  ['replaceAll: nbits 3', 'INVALID_ARGUMENT', ({ index }) => index.replaceAll(['x1'], embeddings(1), { nbits: 3 as never })],
  ['replaceAll: replace is not one of its options', 'INVALID_ARGUMENT', ({ index }) => index.replaceAll(['x1'], embeddings(1), { replace: true } as never)],
  ['replaceAll: a duplicate id', 'INVALID_ARGUMENT', ({ index }) => index.replaceAll(['x1', 'x1'], embeddings(2))],
  // Searching and reading
  ['search: k 0', 'INVALID_ARGUMENT', ({ index }) => index.search(embeddings(1), { k: 0 })],
  ['search: k above 2^32', 'INVALID_ARGUMENT', ({ index }) => index.search(embeddings(1), { k: 2 ** 33 })],
  ['search: a fractional nProbe', 'INVALID_ARGUMENT', ({ index }) => index.search(embeddings(1), { nProbe: 1.5 })],
  ['search: a NaN threshold', 'INVALID_ARGUMENT', ({ index }) => index.search(embeddings(1), { centroidScoreThreshold: NaN })],
  ['search: a filter holding NaN', 'INVALID_ARGUMENT', ({ index }) => index.search(embeddings(1), { filter: { n: NaN } })],
  ['search: a filter with an unknown operator', 'INVALID_ARGUMENT', ({ index }) => index.search(embeddings(1), { filter: { n: { $near: 3 } } })],
  ['search: $in without a list', 'INVALID_ARGUMENT', ({ index }) => index.search(embeddings(1), { filter: { n: { $in: 3 } } })],
  ['search: a filter that is an array', 'INVALID_ARGUMENT', ({ index }) => index.search(embeddings(1), { filter: [] as never })],
  ['search: a filter with a lone surrogate', 'INVALID_ARGUMENT', ({ index }) => index.search(embeddings(1), { filter: { s: '\uD800' } })],
  ['search: a subset with a number', 'INVALID_ARGUMENT', ({ index }) => index.search(embeddings(1), { subset: [1 as never] })],
  ['search: a subset id with a lone surrogate', 'INVALID_ARGUMENT', ({ index }) => index.search(embeddings(1), { subset: ['doc-1\uD800'] })],
  ['search: queries of another dim', 'INVALID_ARGUMENT', ({ index }) => index.search({ dim: 4, offsets: Uint32Array.of(0, 1), data: Float32Array.of(1, 0, 0, 0) })],
  ['search: an unknown option', 'INVALID_ARGUMENT', ({ index }) => index.search(embeddings(1), { topK: 3 } as never)],
  ['search: withDocuments that is not a boolean', 'INVALID_ARGUMENT', ({ index }) => index.search(embeddings(1), { withDocuments: 'yes' as never })],
  ['search: an aborted signal', 'ABORTED', ({ index }) => index.search(embeddings(1), { signal: AbortSignal.abort() })],
  ['delete: ids that are not an array', 'INVALID_ARGUMENT', ({ index }) => index.delete('doc-1' as never)],
  ['delete: an id with a lone surrogate', 'INVALID_ARGUMENT', ({ index }) => index.delete(['doc-1\uDBFF'])],
  ['documents: an id that is not a string', 'INVALID_ARGUMENT', ({ index }) => index.documents([null as never])],
  ['select: no filter', 'INVALID_ARGUMENT', ({ index }) => index.select(undefined as never)],
  ['select: a filter comparing with an object', 'INVALID_ARGUMENT', ({ index }) => index.select({ n: { $gt: { a: 1 } } })],
  ['compact: onProgress that is not a function', 'INVALID_ARGUMENT', ({ index }) => index.compact({ onProgress: 'x' as never })],
  ['search on a closed handle', 'CLOSED', async () => {
    const other = await PlaidIndex.open(at('index'))
    await other.close()
    return other.search(embeddings(1))
  }],
  // Evaluation
  ['loadBeir: a missing folder', 'INVALID_ARGUMENT', () => loadBeir(at('missing'))],
  ['loadBeir: a corpus line that is not JSON', 'INVALID_ARGUMENT', () => loadBeirFrom('{"_id": "1", "text": "a"}\nnot json\n')],
  ['evaluate: no model', 'INVALID_ARGUMENT', () => evaluate({ dataset: at('beir') } as never)],
]

/** A model folder whose ONNX graph has other inputs and outputs. */
function wrongIoFolder(): string {
  const dir = at('models', 'wrong-io')
  if (!fs.existsSync(dir)) {
    fs.cpSync(path.join(FIXTURES, 'tiny-bert'), dir, { recursive: true, filter: (src) => !src.includes(`${path.sep}golden`) })
    fs.copyFileSync(path.join(FIXTURES, 'wrong-io.onnx'), path.join(dir, 'model.onnx'))
  }
  return dir
}

async function loadBeirFrom(corpus: string) {
  const dir = at('beir-bad')
  if (!fs.existsSync(dir)) {
    fs.cpSync(at('beir'), dir, { recursive: true })
    write(path.join(dir, 'corpus.jsonl'), corpus)
  }
  return loadBeir(dir)
}

for (const [name, code, call] of api) {
  test.serial(`API ${name} → ${code}`, async (t) => {
    const s = await setup
    if (name === 'fromPretrained: quantized without model_int8.onnx' && !fs.existsSync(at('models', 'missing-int8'))) {
      fs.cpSync(path.join(FIXTURES, 'tiny-bert'), at('models', 'missing-int8'), { recursive: true, filter: (src) => !src.endsWith('model_int8.onnx') && !src.includes(`${path.sep}golden`) })
    }
    if (name.startsWith('fromPretrained: a graph')) wrongIoFolder()
    if (name.startsWith('loadBeir: a corpus line')) await loadBeirFrom('{"_id": "1", "text": "a"}\nnot json\n').catch(() => undefined)
    const before = snapshot(ws)
    let error: unknown
    try {
      await call(s)
    } catch (e) {
      error = e
    }
    t.true(error instanceof ColbertError, `expected a ColbertError, got ${error === undefined ? 'success' : String(error)}`)
    t.is((error as ColbertError | undefined)?.code as string | undefined, code, (error as Error | undefined)?.message)
    t.deepEqual(snapshot(ws), before, 'nothing on disk changed')
  })
}

// ---------------------------------------------------------------------------------------------
// The command line

function cli(args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env }
    delete env.COLBERT_MODEL
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ws, env })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('close', (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(input)
  })
}

const M = ['--model', STANDIN, '--quantized']
/** [name, args, expected: 'USAGE' (exit 2) or the code printed with exit 1, stdin] */
const commands: Array<[string, string[], string, string?]> = [
  ['no command', [], 'USAGE'],
  ['an unknown command', ['frobnicate'], 'USAGE'],
  ['index: a folder of other files with --overwrite', ['index', 'docs.jsonl', '--index', 'notes', '--overwrite', ...M], 'INDEX_EXISTS'],
  ['index: its own sources as the index, with --overwrite', ['index', 'notes', '--index', 'notes', '--overwrite', ...M], 'INDEX_EXISTS'],
  ['index: a folder of other files', ['index', 'docs.jsonl', '--index', 'notes', ...M], 'INDEX_EXISTS'],
  ['index: over an index without --overwrite', ['index', 'docs.jsonl', '--index', 'index', ...M], 'INDEX_EXISTS'],
  ['index: a file as --index', ['index', 'docs.jsonl', '--index', 'a-file', '--overwrite', ...M], 'INDEX_EXISTS'],
  ['index: a source that does not exist', ['index', 'missing.md', '--index', 'new-a', ...M], 'IO'],
  ['index: a JSONL line that is not JSON', ['index', 'bad.jsonl', '--index', 'new-b', ...M], 'INVALID_ARGUMENT'],
  ['index: a JSONL line without text', ['index', 'no-text.jsonl', '--index', 'new-c', ...M], 'INVALID_ARGUMENT'],
  ['index: duplicate ids', ['index', 'dups.jsonl', '--index', 'new-d', ...M], 'INVALID_ARGUMENT'],
  ['index: an id with a lone surrogate', ['index', 'surrogate.jsonl', '--index', 'new-s', ...M], 'INVALID_ARGUMENT'],
  ['index: an empty JSONL file', ['index', 'empty.jsonl', '--index', 'new-e', ...M], 'INVALID_ARGUMENT'],
  ['index: a folder without text files', ['index', 'models/list-config/1_Dense', '--index', 'new-f', ...M], 'INVALID_ARGUMENT'],
  ['index: a file of another type', ['index', 'a-file', '--index', 'new-g', ...M], 'INVALID_ARGUMENT'],
  ['index: --nbits 3', ['index', 'docs.jsonl', '--index', 'new-h', '--nbits', '3', ...M], 'USAGE'],
  ['index: --no-query-expansion (documents have no expansion)', ['index', 'docs.jsonl', '--index', 'new-i', '--no-query-expansion', ...M], 'USAGE'],
  ['index: no source', ['index', '--index', 'new-j', ...M], 'USAGE'],
  ['index: no --index', ['index', 'docs.jsonl', ...M], 'USAGE'],
  ['index: --batch-size 0', ['index', 'docs.jsonl', '--index', 'new-k', '--batch-size', '0', ...M], 'USAGE'],
  ['index: --chunk-chars 5', ['index', 'docs.jsonl', '--index', 'new-l', '--chunk-chars', '5', ...M], 'USAGE'],
  ['index: --threads 0', ['index', 'docs.jsonl', '--index', 'new-m', '--threads', '0', ...M], 'USAGE'],
  ['index: a missing model', ['index', 'docs.jsonl', '--index', 'new-n', '--model', './models/missing'], 'MODEL_NOT_FOUND'],
  ['index: a model whose settings file holds []', ['index', 'docs.jsonl', '--index', 'new-o', '--model', 'models/list-config'], 'MODEL_INVALID'],
  ['search: -k 10000000000', ['search', '--index', 'index', '-k', '10000000000', ...M, 'q'], 'USAGE'],
  ['search: -k 1.5', ['search', '--index', 'index', '-k', '1.5', ...M, 'q'], 'USAGE'],
  ['search: -k 1e3', ['search', '--index', 'index', '-k', '1e3', ...M, 'q'], 'USAGE'],
  ['search: --filter that is not JSON', ['search', '--index', 'index', '--filter', '{n:1}', ...M, 'q'], 'USAGE'],
  ['search: --filter with an unknown operator', ['search', '--index', 'index', '--filter', '{"n":{"$near":1}}', ...M, 'q'], 'INVALID_ARGUMENT'],
  ['search: --filter that is a list', ['search', '--index', 'index', '--filter', '[1]', ...M, 'q'], 'INVALID_ARGUMENT'],
  ['search: a missing index', ['search', '--index', 'missing', ...M, 'q'], 'INDEX_NOT_FOUND'],
  ['search: a folder of other files as the index', ['search', '--index', 'notes', ...M, 'q'], 'INDEX_NOT_FOUND'],
  ['search: no query', ['search', '--index', 'index', ...M], 'USAGE'],
  ['search: no model', ['search', '--index', 'index', 'q'], 'USAGE'],
  ['search: an unknown flag', ['search', '--bogus'], 'USAGE'],
  ['rerank: no --query', ['rerank', 'docs.jsonl', ...M], 'USAGE'],
  ['rerank: no candidates', ['rerank', '--query', 'q', 'empty.jsonl', ...M], 'INVALID_ARGUMENT'],
  ['rerank: no candidates on stdin', ['rerank', '--query', 'q', '-', ...M], 'INVALID_ARGUMENT', ''],
  ['rerank: a missing candidates file', ['rerank', '--query', 'q', 'missing.jsonl', ...M], 'IO'],
  ['rerank: two candidate files', ['rerank', '--query', 'q', 'docs.jsonl', 'docs.jsonl', ...M], 'USAGE'],
  ['eval: a missing folder', ['eval', 'missing', ...M], 'INVALID_ARGUMENT'],
  ['eval: an index of another collection', ['eval', 'beir', '--index', 'index', ...M], 'INVALID_ARGUMENT'],
  ['eval: --index and --pool', ['eval', 'beir', '--index', 'index', '--pool', 'pools.tsv', ...M], 'USAGE'],
  ['eval: --ndcg of another kind', ['eval', 'beir', '--ndcg', 'sometimes', ...M], 'USAGE'],
  ['eval: a pool line without a corpus id', ['eval', 'beir', '--pool', 'pools.tsv', ...M], 'INVALID_ARGUMENT'],
  ['eval: a missing pool file', ['eval', 'beir', '--pool', 'missing.tsv', ...M], 'IO'],
  ['eval: no folder', ['eval', ...M], 'USAGE'],
  ['encode: two inputs', ['encode', 'docs.jsonl', 'docs.jsonl', ...M], 'USAGE'],
  ['encode: --batch-size x', ['encode', 'docs.jsonl', '--batch-size', 'x', ...M], 'USAGE'],
  ['encode: a JSONL line that is not JSON', ['encode', 'bad.jsonl', ...M], 'INVALID_ARGUMENT'],
  ['info: a missing index', ['info', '--index', 'missing'], 'INDEX_NOT_FOUND'],
  ['info: a missing model', ['info', '--model', './models/missing'], 'MODEL_NOT_FOUND'],
]

for (const [name, args, want, input] of commands) {
  test.serial(`CLI ${name} → ${want}`, async (t) => {
    await setup
    const before = snapshot(ws)
    const r = await cli(args, input)
    if (want === 'USAGE') {
      t.is(r.code, 2, r.stderr)
      t.regex(r.stderr, /usage|Usage|--help|unknown command/, r.stderr)
    } else {
      t.is(r.code, 1, r.stderr)
      t.regex(r.stderr, new RegExp(`: ${want}: `), r.stderr)
    }
    t.notRegex(r.stderr, /\n\s+at /, 'no stack trace')
    t.deepEqual(snapshot(ws), before, 'nothing on disk changed')
  })
}

test.serial('the matrix has at least 80 cases', (t) => {
  t.true(api.length + commands.length >= 80, `${api.length} API + ${commands.length} CLI cases`)
  t.log(`${api.length} API + ${commands.length} CLI cases`)
})
