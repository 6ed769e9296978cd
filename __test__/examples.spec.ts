// The runnable examples run as their npm scripts run them (after the set-up, which `npm test` has
// done): examples/rag-langchain (LangChain RAG over this repository's docs, fake chat model) and
// examples/worker-indexer (a worker_threads indexer with a main-thread searcher).
// examples/service is run by serve.spec.ts; examples/electron is checked by electron.spec.ts.
import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'

import test from 'ava'

import { ROOT } from './helpers'

const run = async (script: string, ...args: string[]) =>
  (await promisify(execFile)(process.execPath, [path.join(ROOT, script), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 150_000 })).stdout

test('examples/rag-langchain: retrieves, reranks and prompts the fake chat model with the cited sections', async (t) => {
  const out = await run('examples/rag-langchain/index.mjs', 'How does the package find the ONNX Runtime library?')
  t.regex(out, /^indexed \d+ sections of README\.md and ARCHITECTURE\.md$/m)
  const sources = /^sources: (.+)$/m.exec(out)?.[1].split(', ') ?? []
  t.is(sources.length, 3)
  t.true(sources.every((s) => /^(README|ARCHITECTURE)\.md#\d+ \(\d+\.\d\d\)$/.test(s)), sources.join(', '))
  t.regex(out, /the fake chat model was asked:\nAnswer the question from these sections/)
  t.regex(out, /\[(README|ARCHITECTURE)\.md#\d+\] /)
  t.regex(out, /How does the package find the ONNX Runtime library\?/)
  t.regex(out, /ONNX Runtime/, 'the sections retrieved talk about ONNX Runtime')
})

test('examples/worker-indexer: the main thread searches each commit of the worker and ends with every section', async (t) => {
  const out = await run('examples/worker-indexer/main.mjs', 'How are errors reported?')
  const counts = [...out.matchAll(/^after commit \d+: (\d+) documents indexed/gm)].map((m) => Number(m[1]))
  t.true(counts.length >= 2, out)
  t.deepEqual(
    counts,
    [...counts].sort((a, b) => a - b),
    'each search sees at least the commits before it',
  )
  const done = Number(/^done: (\d+) documents indexed, best: \S+ \(/m.exec(out)?.[1])
  t.true(done >= counts[counts.length - 1] && done > 16, out)
  t.regex(out, /^worst event-loop lag on the main thread: \d+ ms$/m)
})
