// The `colbert` command, spawned as users run it (node bin/colbert.js → dist/), with the
// bundled stand-in model: every command, its JSON output and its error paths and exit codes.
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import test from 'ava'

import { DATA, dataTest, FIXTURES, HAS_DATA, ROOT, STANDIN } from './helpers'

const BIN = path.join(ROOT, 'bin', 'colbert.js')
const MODEL = ['--model', STANDIN, '--quantized']
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-cli-'))

function run(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8', timeout: 170_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** A small Markdown folder: three files about different topics. */
function docsFolder(): string {
  const dir = tmp()
  fs.writeFileSync(
    path.join(dir, 'cats.md'),
    '# Cats\n\nCats are small carnivorous mammals kept as pets. They purr and hunt mice.\n\n## Food\n\nCats eat fish and meat; milk upsets many adult cats.\n',
  )
  fs.writeFileSync(path.join(dir, 'rust.md'), '# Rust\n\nRust is a systems programming language with ownership and borrowing.\n')
  fs.mkdirSync(path.join(dir, 'space'))
  fs.writeFileSync(path.join(dir, 'space', 'moon.txt'), 'The Moon orbits the Earth every 27 days and causes the tides.\n')
  fs.writeFileSync(path.join(dir, 'ignored.bin'), 'not text')
  return dir
}

/**
 * Tests that watch a running child by polling run alone: the other tests' spawnSync calls block
 * this worker's event loop for seconds, and a poll that resumes too late sees the child finished.
 */
const watchTest = HAS_DATA ? test.serial : test.skip

/**
 * Starts `colbert index` of Medline (or its first `limit` documents) into `target` and waits until
 * its temporary index exists (the model is loaded and encoding has started).
 */
async function startIndexingMedline(dir: string, target: string, limit?: number) {
  let source = path.join(DATA, 'medline')
  if (limit !== undefined) {
    source = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-cli-src-')), 'medline.jsonl')
    const lines = fs.readFileSync(path.join(DATA, 'medline', 'corpus.jsonl'), 'utf8').split('\n').slice(0, limit)
    fs.writeFileSync(source, lines.join('\n') + '\n')
  }
  const child = spawn(process.execPath, [BIN, 'index', source, '--index', target, ...MODEL], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (b) => (stderr += b))
  child.stdout.resume()
  const building = () => fs.readdirSync(dir).some((n) => n.startsWith(`${path.basename(target)}.tmp-`))
  const deadline = Date.now() + 60_000
  while (!building() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  return { child, started: building(), output: () => stderr }
}

const built = (async () => {
  const src = docsFolder()
  const out = path.join(tmp(), 'idx')
  const r = run(['index', src, '--index', out, ...MODEL, '--json'])
  return { src, out, r }
})()

test('help, version and usage errors have the documented exit codes', (t) => {
  const main = run(['--help'])
  t.is(main.code, 0)
  for (const c of ['index', 'search', 'rerank', 'eval', 'encode', 'info']) {
    t.regex(main.stdout, new RegExp(`\\b${c}\\b`))
    const h = run([c, '--help'])
    t.is(h.code, 0, c)
    t.regex(h.stdout, /^Usage: colbert /)
  }
  t.is(run([]).code, 2)
  const unknown = run(['frobnicate'])
  t.is(unknown.code, 2)
  t.regex(unknown.stderr, /unknown command "frobnicate"/)
  const noIndex = run(['search', 'hello', ...MODEL])
  t.is(noIndex.code, 2)
  t.regex(noIndex.stderr, /--index <dir> is required/)
  const badFlag = run(['search', '--bogus'])
  t.is(badFlag.code, 2)
  const badK = run(['search', '--index', 'x', '-k', '0', 'q'])
  t.is(badK.code, 2)
  t.regex(badK.stderr, /--k must be an integer/)
  t.regex(run(['--version']).stdout, /^\d+\.\d+\.\d+/)
})

test('index builds from a Markdown folder; search finds the right sections with text and metadata', async (t) => {
  const { out, r } = await built
  t.is(r.code, 0, r.stderr)
  const summary = JSON.parse(r.stdout)
  t.is(summary.documents, 4) // cats (2 sections), rust, moon; ignored.bin skipped
  t.deepEqual(
    fs.readdirSync(path.dirname(out)).filter((n) => n !== 'idx'),
    [],
    'no temporary folder left',
  )
  const s = run(['search', '--index', out, ...MODEL, '--json', '-k', '2', 'what do cats eat?', 'ownership and borrowing'])
  t.is(s.code, 0, s.stderr)
  const res = JSON.parse(s.stdout)
  t.is(res.length, 2)
  t.is(res[0].query, 'what do cats eat?')
  t.is(res[0].hits[0].id, 'cats.md#1')
  t.is(res[0].hits[0].metadata.path, 'cats.md')
  t.is(res[0].hits[0].metadata.heading, 'Food')
  t.regex(res[0].hits[0].text, /fish and meat/)
  t.is(res[1].hits[0].id, 'rust.md#0')
  t.true(res[0].hits[0].score >= res[0].hits[1].score)
  // Text output: ranks, scores, ids and snippets.
  const text = run(['search', '--index', out, ...MODEL, 'tides of the sea'])
  t.is(text.code, 0)
  t.regex(text.stdout, /^tides of the sea\n\s+1\.\s+\d+\.\d{3}\s+space\/moon\.txt#0\n\s+The Moon orbits/m)
  // Metadata filter.
  const f = run(['search', '--index', out, ...MODEL, '--json', '--filter', '{"path":"rust.md"}', 'cats'])
  t.deepEqual(
    JSON.parse(f.stdout)[0].hits.map((h: { id: string }) => h.id),
    ['rust.md#0'],
  )
  const badFilter = run(['search', '--index', out, ...MODEL, '--filter', '{"path":{"$regex":"x"}}', 'cats'])
  t.is(badFilter.code, 1)
  t.regex(badFilter.stderr, /INVALID_ARGUMENT: filter: unknown operator \$regex/)
  // info
  const info = run(['info', '--index', out, '--json'])
  t.is(info.code, 0, info.stderr)
  const i = JSON.parse(info.stdout)
  t.is(i.index.documents, 4)
  t.is(i.index.formatVersion, 3)
  t.truthy(i.runtime.version)
})

test('index refuses to replace an index without --overwrite and never leaves a half-written one', async (t) => {
  const { src, out } = await built
  const before = fs.readdirSync(out).sort()
  const again = run(['index', src, '--index', out, ...MODEL])
  t.is(again.code, 1)
  t.regex(again.stderr, /INDEX_EXISTS: .* --overwrite/)
  t.deepEqual(fs.readdirSync(out).sort(), before)

  // A bad JSONL line fails before anything is written.
  const dir = tmp()
  const jsonl = path.join(dir, 'docs.jsonl')
  fs.writeFileSync(jsonl, '{"id":"a","text":"one"}\n{"id":"b","text":2}\n')
  const target = path.join(dir, 'idx')
  const bad = run(['index', jsonl, '--index', target, ...MODEL])
  t.is(bad.code, 1)
  t.regex(bad.stderr, /INVALID_ARGUMENT: .*docs\.jsonl:2: needs a string "text"/)
  t.false(fs.existsSync(target))
  const aFile = run(['index', jsonl, '--index', jsonl, ...MODEL])
  t.is(aFile.code, 1)
  t.regex(aFile.stderr, /INDEX_EXISTS: .* is a file/)
  const missing = run(['index', path.join(dir, 'nope'), '--index', target, ...MODEL])
  t.is(missing.code, 1)
  t.regex(missing.stderr, /IO: .*does not exist/)
  fs.writeFileSync(jsonl, '{"id":"a","text":"one cat"}\n{"_id":"b","title":"T","text":"two dogs","metadata":{"lang":"en"}}\n')
  const noModel = run(['index', jsonl, '--index', target, '--model', path.join(dir, 'no-model')])
  t.is(noModel.code, 1)
  t.regex(noModel.stderr, /MODEL_NOT_FOUND/)
  t.deepEqual(fs.readdirSync(dir), ['docs.jsonl'])

  // --overwrite replaces the index with a complete new one.
  const ok = run(['index', jsonl, '--index', out, ...MODEL, '--overwrite', '--json'])
  t.is(ok.code, 0, ok.stderr)
  t.is(JSON.parse(ok.stdout).documents, 2)
  const s = JSON.parse(run(['search', '--index', out, ...MODEL, '--json', 'dogs']).stdout)
  t.deepEqual(s[0].hits[0], { ...s[0].hits[0], id: 'b', text: 'T two dogs', metadata: { lang: 'en', title: 'T' } })
})

watchTest('an interrupted index run exits 130 and leaves no index and no temporary folder', async (t) => {
  const dir = tmp()
  const target = path.join(dir, 'idx')
  const { child, started, output } = await startIndexingMedline(dir, target)
  t.true(started, 'indexing started')
  child.kill('SIGINT')
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
  t.is(code, 130, output())
  t.regex(output(), /ABORTED/)
  t.deepEqual(fs.readdirSync(dir), [])
})

watchTest('a run killed with SIGKILL leaves only a temporary folder, removed by the next run', async (t) => {
  const dir = tmp()
  const target = path.join(dir, 'idx')
  const { child } = await startIndexingMedline(dir, target)
  child.kill('SIGKILL')
  await new Promise((resolve) => child.on('exit', resolve))
  t.false(fs.existsSync(target), 'no half-written index at the target')
  const jsonl = path.join(dir, 'docs.jsonl')
  fs.writeFileSync(jsonl, '{"id":"a","text":"one cat"}\n{"id":"b","text":"two dogs"}\n')
  const ok = run(['index', jsonl, '--index', target, ...MODEL])
  t.is(ok.code, 0, ok.stderr)
  t.deepEqual(fs.readdirSync(dir).sort(), ['docs.jsonl', 'idx'])
})

dataTest('eval prints PyLate metrics for a BEIR folder, exhaustive and through an index', (t) => {
  const adi = path.join(DATA, 'adi')
  const ex = run(['eval', adi, ...MODEL, '--json'])
  t.is(ex.code, 0, ex.stderr)
  const a = JSON.parse(ex.stdout)
  t.is(a.mode, 'exhaustive')
  t.is(a.documents, 82)
  for (const key of ['accuracy@1', 'precision@10', 'recall@10', 'ndcg@10', 'mrr@10', 'map@100']) {
    t.true(a.metrics[key] >= 0 && a.metrics[key] <= 1, key)
  }
  t.true(a.metrics['ndcg@10'] > 0.2, `ndcg@10 ${a.metrics['ndcg@10']}`)
  const idx = path.join(tmp(), 'adi')
  t.is(run(['index', adi, '--index', idx, ...MODEL]).code, 0)
  const via = run(['eval', adi, ...MODEL, '--index', idx, '--json'])
  t.is(via.code, 0, via.stderr)
  const b = JSON.parse(via.stdout)
  t.is(b.mode, 'plaid')
  t.true(Math.abs(b.metrics['ndcg@10'] - a.metrics['ndcg@10']) < 0.05)
  const table = run(['eval', adi, ...MODEL, '--index', idx])
  t.regex(table.stdout, /\|\s*adi\s*\|/)
  t.regex(table.stdout, /ndcg@10/i)
  const bad = run(['eval', path.join(tmp(), 'none'), ...MODEL])
  t.is(bad.code, 1)
  const noPool = run(['eval', adi, ...MODEL, '--pool', path.join(tmp(), 'none.tsv')])
  t.is(noPool.code, 1)
  t.regex(noPool.stderr, /IO: cannot read the pool file/)
  t.is(run(['eval', adi, ...MODEL, '--pool', 'x', '--index', idx]).code, 2)
  t.is(run(['eval', adi, ...MODEL, '--ndcg', 'fancy']).code, 2)
})

test('rerank orders candidates by MaxSim; encode prints token embeddings', (t) => {
  const dir = tmp()
  const cands = path.join(dir, 'c.jsonl')
  fs.writeFileSync(cands, ['{"id":"x","text":"The stock market fell sharply."}', '{"id":"y","text":"Cats purr when they are happy."}', '{"id":"z","text":"Dogs bark."}'].join('\n'))
  const r = run(['rerank', '--query', 'why do cats purr', cands, ...MODEL, '--json'])
  t.is(r.code, 0, r.stderr)
  const ranked = JSON.parse(r.stdout)
  t.is(ranked[0].id, 'y')
  t.is(ranked.length, 3)
  t.true(ranked[0].score >= ranked[1].score && ranked[1].score >= ranked[2].score)
  const k1 = run(['rerank', '--query', 'why do cats purr', '-', ...MODEL, '-k', '1'], fs.readFileSync(cands, 'utf8'))
  t.is(k1.code, 0, k1.stderr)
  t.regex(k1.stdout, /^\s+1\.\s+\d+\.\d{3}\s+y\n\s+Cats purr/)
  t.is(run(['rerank', cands, ...MODEL]).code, 2)
  const noFile = run(['rerank', '--query', 'q', path.join(dir, 'missing.jsonl'), ...MODEL])
  t.is(noFile.code, 1)
  t.regex(noFile.stderr, /IO: cannot read .*missing\.jsonl/)
  fs.writeFileSync(cands, '{"id":"x","text":"a","metadata":"oops"}\nnull\n')
  const badMeta = run(['rerank', '--query', 'q', cands, ...MODEL])
  t.is(badMeta.code, 1)
  t.regex(badMeta.stderr, /INVALID_ARGUMENT: .*c\.jsonl:1: "metadata" must be an object/)
  fs.writeFileSync(cands, '{"id":"x","text":"a"}\nnull\n')
  t.regex(run(['rerank', '--query', 'q', cands, ...MODEL]).stderr, /c\.jsonl:2: expected a JSON object/)

  const e = run(['encode', ...MODEL, '--queries'], 'first query\nsecond one\n')
  t.is(e.code, 0, e.stderr)
  const lines = e.stdout.trim().split('\n').map((l) => JSON.parse(l))
  t.is(lines.length, 2)
  t.is(lines[0].id, '0')
  t.is(lines[0].shape[1], 128)
  t.is(lines[0].embeddings.length, lines[0].shape[0])
  const norm = Math.hypot(...lines[0].embeddings[0])
  t.true(Math.abs(norm - 1) < 1e-3)
})

test('--overwrite replaces an index in one transaction; another process holding a writer makes it INDEX_LOCKED', async (t) => {
  const dir = tmp()
  const jsonl = path.join(dir, 'docs.jsonl')
  fs.writeFileSync(jsonl, '{"id":"a","text":"one cat"}\n{"id":"b","text":"two dogs"}\n{"id":"c","text":"three birds"}\n')
  const target = path.join(dir, 'idx')
  t.is(run(['index', jsonl, '--index', target, ...MODEL]).code, 0)
  // Another process holds a write transaction open: --overwrite must not replace the index under it.
  const holder = spawn(
    process.execPath,
    [
      '-e',
      `const { PlaidIndex } = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))})
       // The gate stays reachable (a promise nothing refers to could be collected with the
       // transaction waiting on it), and the timer keeps the process alive until it is killed.
       globalThis.gate = new Promise((resolve) => (globalThis.open = resolve))
       setInterval(() => {}, 1000)
       PlaidIndex.open(process.argv[1]).then((i) => (globalThis.adding = i.add((async function* () { console.log('holding'); await globalThis.gate })())))`,
      target,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  try {
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()))
    await new Promise((r) => setTimeout(r, 200))
    const files = fs.readdirSync(target).sort()
    fs.writeFileSync(jsonl, '{"id":"x","text":"only this one"}\n')
    const locked = run(['index', jsonl, '--index', target, '--overwrite', ...MODEL])
    t.is(locked.code, 1)
    t.regex(locked.stderr, /INDEX_LOCKED: .*another process/)
    t.deepEqual(fs.readdirSync(target).sort(), files, 'the index was left as it was')
  } finally {
    holder.kill('SIGKILL')
    await new Promise((resolve) => holder.on('exit', resolve))
  }
  // With the writer gone, --overwrite replaces the documents; other files in the folder stay.
  fs.writeFileSync(path.join(target, 'README.txt'), 'my notes about this index')
  const ok = run(['index', jsonl, '--index', target, '--overwrite', '--nbits', '2', ...MODEL, '--json'])
  t.is(ok.code, 0, ok.stderr)
  t.is(JSON.parse(ok.stdout).documents, 1)
  t.is(fs.readFileSync(path.join(target, 'README.txt'), 'utf8'), 'my notes about this index')
  const info = JSON.parse(run(['info', '--index', target, '--json']).stdout).index
  t.is(info.documents, 1)
  t.is(info.nbits, 2)
  t.deepEqual(fs.readdirSync(dir).sort(), ['docs.jsonl', 'idx'], 'no temporary folder')
})

watchTest('a new index never replaces one another run put at the same path meanwhile', async (t) => {
  const dir = tmp()
  const target = path.join(dir, 'idx')
  const { child, started, output } = await startIndexingMedline(dir, target, 150)
  t.true(started, 'indexing started')
  // Someone else's index appears at the target while the run encodes.
  fs.mkdirSync(target)
  fs.writeFileSync(path.join(target, 'MANIFEST'), 'theirs')
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
  t.is(code, 1, output())
  t.regex(output(), /INDEX_EXISTS: .*filled by another process/)
  t.is(fs.readFileSync(path.join(target, 'MANIFEST'), 'utf8'), 'theirs')
  t.deepEqual(fs.readdirSync(dir), ['idx'], 'the temporary index was removed')
})

test('progress goes to a non-terminal stderr as plain lines; info prints nested fields; eval writes a TREC run and per-query metrics', async (t) => {
  const dir = tmp()
  const adi = path.join(FIXTURES, 'beir-mini')
  const idx = path.join(dir, 'mini')
  const built = run(['index', adi, '--index', idx, ...MODEL])
  t.is(built.code, 0, built.stderr)
  t.regex(built.stderr, /^encoding \d+\/24$/m)
  t.regex(built.stderr, /^encoding 24\/24$/m, 'the end of a stage is printed')
  t.regex(built.stderr, /^k-means \d+\/\d+$/m)
  t.is(run(['index', adi, '--index', path.join(dir, 'quiet'), ...MODEL, '--quiet']).stderr, '')
  const info = run(['info', '--index', idx])
  t.notRegex(info.stdout, /\[object Object\]/)
  t.regex(info.stdout, /^ {2}drift:\n {4}embeddings: 0\n {4}outlierFraction: /m)
  const runFile = path.join(dir, 'run.txt')
  const ev = run(['eval', adi, ...MODEL, '--index', idx, '--run', runFile, '--json'])
  t.is(ev.code, 0, ev.stderr)
  const out = JSON.parse(ev.stdout)
  const lines = fs.readFileSync(runFile, 'utf8').trim().split('\n')
  const qids = Object.keys(out.perQuery)
  t.is(qids.length, out.queries)
  // Each query's top-k in TREC format, ranks from 1, scores descending.
  const first = lines.filter((l) => l.startsWith(`${qids[0]} `)).map((l) => l.split(' '))
  t.true(first.length > 0)
  first.forEach((f, i) => {
    t.is(f.length, 6)
    t.is(f[1], 'Q0')
    t.is(Number(f[3]), i + 1)
    t.is(f[5], 'colbert-plaid')
    if (i > 0) t.true(Number(f[4]) <= Number(first[i - 1][4]))
  })
  // The per-query values average to the reported metrics.
  const mean = qids.reduce((a, q) => a + out.perQuery[q]['ndcg@10'], 0) / qids.length
  t.true(Math.abs(mean - out.metrics['ndcg@10']) < 1e-12, `${mean} vs ${out.metrics['ndcg@10']}`)
})
