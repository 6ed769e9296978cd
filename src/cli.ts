// The command-line tool (`npx colbert …`): encode, index, search, rerank, eval, info.
// Everything goes through the public API; this file only parses arguments, reads inputs and
// prints. Exit codes: 0 success, 1 a ColbertError or I/O failure, 2 a usage error, 130 interrupted.
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import { parseArgs, type ParseArgsConfig } from 'node:util'

import { checkWellFormed } from './arguments'
import { count, item, type Embeddings } from './embeddings'
import { ColbertError } from './errors'
import { badLine, parseJsonLine } from './jsonl'
import { computeMetrics, evaluate, formatMetricsTable, loadBeir, documentText, type EvaluateProgress, type Rankings } from './evaluate'
import { ColBERT, type ColBERTOptions } from './model'
import { PlaidIndex, type AddProgress, type AddResult, type DocumentBatch, type PlaidIndexInfo, type SearchHit, type StoredDocument } from './plaid_index'
import { rerank } from './rank'
import { runtimeInfo, loadRuntime } from './runtime'
import { processAlive } from './pid'

class UsageError extends Error {}

interface Io {
  out: (s: string) => void
  err: (s: string) => void
  /** stderr is a terminal: progress is a bar redrawn in place, else plain lines. */
  tty: boolean
  /** --quiet: no progress output. */
  quiet: boolean
  /** Plain-line progress state: the last label printed, when, and the last count seen. */
  lastLabel: string
  lastLine: number
  lastDone: number
}

const DOCUMENT_MODEL_HELP = `  --model <path|org/name>  model folder or Hugging Face repo (default: $COLBERT_MODEL)
  --quantized              use model_int8.onnx
  --threads <n>            intra-op threads`
const MODEL_HELP = `${DOCUMENT_MODEL_HELP}
  --no-query-expansion     encode queries without mask-token expansion`

const HELP: Record<string, string> = {
  main: `colbert — ColBERT late-interaction retrieval (PyLate-compatible) for Node.js

Usage: colbert <command> [options]

Commands:
  index    build a PLAID index from Markdown/text files, a JSONL file or a BEIR corpus
  search   search an index with one or more queries
  rerank   rerank candidate documents for a query by exact MaxSim
  eval     evaluate a model on a BEIR folder (exhaustive MaxSim or through an index)
  encode   encode texts into token embeddings (JSON lines)
  info     show the runtime, a model's settings and an index's state

Run 'colbert <command> --help' for a command's options.`,
  index: `Usage: colbert index <source> [<source> ...] --index <dir> [options]

A <source> is a .md/.markdown/.txt file or a folder of them (split into sections at headings,
then blank-line paragraphs up to --chunk-chars; ids are "path#n"), a .jsonl file of
{ id | _id, text, title?, metadata? }, or a BEIR folder (its corpus.jsonl). Texts and metadata are
stored with the index. A new index is built in a temporary folder and moved into place only when
complete; --overwrite replaces an existing index in one transaction (searches see the old one
until the new one is complete). A folder that holds anything but an index is never touched.

${DOCUMENT_MODEL_HELP}
  --index <dir>            where to write the index (required): a new or empty folder, or an
                           index with --overwrite
  --overwrite              replace the index in <dir>
  --nbits <1|2|4>          residual bits per dimension (default 4)
  --batch-size <n>         texts per encoder batch (default 32)
  --chunk-chars <n>        maximum characters per section of a text file (default 1500)
  --quiet                  no progress output`,
  search: `Usage: colbert search --index <dir> [options] <query> [<query> ...]

${MODEL_HELP}
  --index <dir>            the index to search (required)
  -k, --k <n>              results per query (default 10)
  --filter <json>          metadata filter, e.g. '{"path":"README.md"}'
  --json                   print JSON: [{ query, hits: [{ id, score, text, metadata }] }]`,
  rerank: `Usage: colbert rerank --query <text> <candidates.jsonl | -> [options]

Candidates are JSON lines { id | _id, text, title? } (from a file, or stdin with '-').

${MODEL_HELP}
  --query <text>           the query (required)
  -k, --k <n>              keep the n best (default: all)
  --json                   print JSON: [{ id, score }]`,
  eval: `Usage: colbert eval <beir-folder> [options]

Encodes the judged queries and ranks the corpus by exhaustive MaxSim (default) or through an
index built from the same corpus (--index), then prints PyLate's metrics.

${MODEL_HELP}
  --index <dir>            rank through this PLAID index (ids = the corpus _id)
  --split <name>           qrels split (default test)
  --pool <file.tsv>        rerank per-query candidate pools (query-id, corpus-id[, rank]) instead
  --batch-size <n>         texts per encoder batch (default 32)
  --name <name>            column name in the table (default: the folder name)
  --ndcg <auto|binary|graded>  nDCG gains: graded (trec_eval) or binary (PyLate); auto = graded
                           when some qrels grade is above 1
  --run <file>             also write the ranking as a TREC run file (qid Q0 docid rank score run)
  --json                   print JSON: { metrics, perQuery, queries, documents, timings }
  --quiet                  no progress output`,
  encode: `Usage: colbert encode [<input>] [options]

<input> is a .jsonl file of { id | _id, text } or a text file with one text per line (default:
stdin). Prints one JSON line per text: { id, shape: [tokens, dim], embeddings: number[][] }.

${MODEL_HELP}
  --queries                encode as queries (default: documents)
  --batch-size <n>         texts per encoder batch (default 32)`,
  info: `Usage: colbert info [--model <path|org/name>] [--index <dir>] [--json]

Prints the ONNX Runtime in use, the model's settings and the index's state.`,
}

const MODEL_OPTIONS = {
  model: { type: 'string' },
  quantized: { type: 'boolean' },
  'no-query-expansion': { type: 'boolean' },
  threads: { type: 'string' },
} as const

const COMMON = { help: { type: 'boolean', short: 'h' }, quiet: { type: 'boolean' }, json: { type: 'boolean' } } as const

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options: { ...COMMON, ...options }, allowPositionals: true, strict: true })
  } catch (e) {
    throw new UsageError((e as Error).message)
  }
}

const MAX_INT = 2 ** 32 - 1

function int(value: string | undefined, name: string, min = 1): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!/^\s*\d+\s*$/.test(value) || !Number.isInteger(n) || n < min || n > MAX_INT) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${MAX_INT}, got ${JSON.stringify(value)}`)
  }
  return n
}

async function loadModel(values: Record<string, unknown>, io: Io, signal: AbortSignal): Promise<ColBERT> {
  const name = (values.model as string | undefined) ?? process.env.COLBERT_MODEL
  if (!name) throw new UsageError('--model is required (a model folder or an org/name hub repo; or set COLBERT_MODEL)')
  const options: ColBERTOptions = { signal }
  if (values.quantized) options.quantized = true
  if (values['no-query-expansion']) options.doQueryExpansion = false
  const threads = int(values.threads as string | undefined, 'threads')
  if (threads !== undefined) options.threads = threads
  options.onProgress = (p) => bar(io, `downloading ${p.file}`, p.downloaded, p.total ?? 0)
  const model = await ColBERT.fromPretrained(name, options)
  endBar(io)
  return model
}

/**
 * Progress on stderr: a bar redrawn in place on a terminal; elsewhere (CI logs, `2>log`) a plain
 * line when a stage starts, at most every 5 s, and when it completes. Nothing with --quiet.
 */
function bar(io: Io, label: string, done: number, total: number) {
  if (io.quiet) return
  if (!io.tty) {
    const now = Date.now()
    const finished = total > 0 && done >= total
    if (label !== io.lastLabel || now - io.lastLine >= 5000 || (finished && io.lastDone < total)) {
      io.err(`${label} ${done}/${total}\n`)
      io.lastLabel = label
      io.lastLine = now
    }
    io.lastDone = done
    return
  }
  const width = 30
  const frac = total > 0 ? Math.min(1, done / total) : 0
  const fill = Math.round(frac * width)
  io.err(`\r\x1b[K${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${done}/${total}`)
}

/** Clears a terminal progress bar. */
function endBar(io: Io) {
  if (io.tty && !io.quiet) io.err('\r\x1b[K')
}

function snippet(text: string | undefined, n = 160): string {
  if (!text) return ''
  const flat = text.replace(/\s+/g, ' ').trim()
  return flat.length > n ? `${flat.slice(0, n - 1)}…` : flat
}

// ---------------------------------------------------------------------------------------------
// Reading documents

interface SourceDocument {
  id: string
  text: string
  metadata?: Record<string, unknown>
}

const TEXT_EXTENSIONS = new Set(['.md', '.markdown', '.txt'])

/** Splits a Markdown/text file into sections: at headings, then paragraphs up to `maxChars`. */
export function splitText(text: string, maxChars: number): { heading: string; text: string }[] {
  const sections: { heading: string; lines: string[] }[] = [{ heading: '', lines: [] }]
  let fence = false
  for (const line of text.split(/\r?\n/)) {
    if (/^\s*(```|~~~)/.test(line)) fence = !fence
    const h = !fence && /^#{1,6}\s+(.*)$/.exec(line)
    if (h) sections.push({ heading: h[1].trim(), lines: [line] })
    else sections[sections.length - 1].lines.push(line)
  }
  const out: { heading: string; text: string }[] = []
  for (const s of sections) {
    const paragraphs = s.lines.join('\n').split(/\n\s*\n/).map((p) => p.trim()).filter(Boolean)
    let current = ''
    for (const p of paragraphs) {
      if (current && current.length + p.length + 2 > maxChars) {
        out.push({ heading: s.heading, text: current })
        current = ''
      }
      current = current ? `${current}\n\n${p}` : p
    }
    if (current.trim()) out.push({ heading: s.heading, text: current })
  }
  return out
}

function walk(dir: string): string[] {
  const files: string[] = []
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.') || entry.name === 'node_modules') continue
    const p = path.join(dir, entry.name)
    if (entry.isDirectory()) files.push(...walk(p))
    else if (entry.isFile() && TEXT_EXTENSIONS.has(path.extname(entry.name).toLowerCase())) files.push(p)
  }
  return files
}

async function* jsonlDocuments(file: string): AsyncGenerator<SourceDocument> {
  const input = file === '-' ? process.stdin : fs.createReadStream(file)
  const lines = readline.createInterface({ input, crlfDelay: Infinity })
  let n = 0
  try {
    for await (const line of lines) {
      n++
      if (!line.trim()) continue
      const obj = parseJsonLine(file, n, line)
      const id = obj.id ?? obj._id
      if (typeof id !== 'string' && typeof id !== 'number') throw badLine(file, n, 'needs a string "id" or "_id"')
      if (typeof obj.text !== 'string') throw badLine(file, n, 'needs a string "text"')
      if (obj.metadata !== undefined && (obj.metadata === null || typeof obj.metadata !== 'object' || Array.isArray(obj.metadata))) {
        throw badLine(file, n, '"metadata" must be an object')
      }
      const metadata: Record<string, unknown> = { ...((obj.metadata as Record<string, unknown> | undefined) ?? {}) }
      if (typeof obj.title === 'string' && obj.title) metadata.title = obj.title
      yield {
        id: String(id),
        text: documentText({ title: typeof obj.title === 'string' ? obj.title : '', text: obj.text }),
        metadata: Object.keys(metadata).length ? metadata : undefined,
      }
    }
  } catch (e) {
    if (e instanceof ColbertError) throw e
    throw new ColbertError('IO', `cannot read ${file}: ${(e as Error).message}`)
  } finally {
    lines.close()
  }
}

async function* sourceDocuments(source: string, chunkChars: number): AsyncGenerator<SourceDocument> {
  let stat: fs.Stats
  try {
    stat = fs.statSync(source)
  } catch {
    throw new ColbertError('IO', `${source} does not exist: pass a folder of .md/.txt files, a .jsonl file or a BEIR folder`)
  }
  if (stat.isDirectory() && fs.existsSync(path.join(source, 'corpus.jsonl'))) {
    yield* jsonlDocuments(path.join(source, 'corpus.jsonl'))
  } else if (stat.isDirectory()) {
    const files = walk(source)
    if (files.length === 0) throw new ColbertError('INVALID_ARGUMENT', `${source} holds no .md, .markdown or .txt file`)
    for (const file of files) {
      const rel = path.relative(source, file).split(path.sep).join('/')
      const sections = splitText(fs.readFileSync(file, 'utf8'), chunkChars)
      for (const [i, s] of sections.entries()) {
        yield { id: `${rel}#${i}`, text: s.text, metadata: { path: rel, ...(s.heading ? { heading: s.heading } : {}) } }
      }
    }
  } else if (source.endsWith('.jsonl')) {
    yield* jsonlDocuments(source)
  } else if (TEXT_EXTENSIONS.has(path.extname(source).toLowerCase())) {
    const rel = path.relative(process.cwd(), path.resolve(source)).split(path.sep).join('/')
    for (const [i, s] of splitText(fs.readFileSync(source, 'utf8'), chunkChars).entries()) {
      yield { id: `${rel}#${i}`, text: s.text, metadata: { path: rel, ...(s.heading ? { heading: s.heading } : {}) } }
    }
  } else {
    throw new ColbertError('INVALID_ARGUMENT', `${source}: expected a folder, a .md/.txt file, a .jsonl file or a BEIR folder`)
  }
}

async function readTexts(input: string | undefined): Promise<SourceDocument[]> {
  const file = input ?? '-'
  if (file.endsWith('.jsonl')) {
    const out: SourceDocument[] = []
    for await (const d of jsonlDocuments(file)) out.push(d)
    return out
  }
  const stream = file === '-' ? process.stdin : fs.createReadStream(file)
  const out: SourceDocument[] = []
  try {
    for await (const line of readline.createInterface({ input: stream, crlfDelay: Infinity })) {
      if (line.trim()) out.push({ id: String(out.length), text: line })
    }
  } catch (e) {
    throw new ColbertError('IO', `cannot read ${file}: ${(e as Error).message}`)
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Commands


/** Removes temporary folders left by `colbert index` runs that were killed (their pid is gone). */
function removeStale(target: string) {
  const dir = path.dirname(target)
  const base = path.basename(target)
  let names: string[] = []
  try {
    names = fs.readdirSync(dir)
  } catch {
    return
  }
  for (const name of names) {
    const m = /^(.*)\.(tmp|old)-(\d+)$/.exec(name)
    if (m && m[1] === base && (Number(m[3]) === process.pid || !processAlive(Number(m[3])))) {
      // A run killed between its two renames left the previous index as `.old-<pid>`: restore it.
      if (m[2] === 'old' && !fs.existsSync(target)) fs.renameSync(path.join(dir, name), target)
      else fs.rmSync(path.join(dir, name), { recursive: true, force: true })
    }
  }
}

/** What is at an --index path: nothing, an empty folder, an index, a file, or a folder of other files. */
function indexFolderState(target: string): 'missing' | 'empty' | 'index' | 'file' | 'foreign' {
  let stat: fs.Stats
  try {
    stat = fs.statSync(target)
  } catch {
    return 'missing'
  }
  if (!stat.isDirectory()) return 'file'
  const names = fs.readdirSync(target)
  if (names.length === 0) return 'empty'
  return names.includes('MANIFEST') ? 'index' : 'foreign'
}

async function cmdIndex(args: string[], io: Io, signal: AbortSignal) {
  const { values, positionals } = parse(args, {
    model: MODEL_OPTIONS.model,
    quantized: MODEL_OPTIONS.quantized,
    threads: MODEL_OPTIONS.threads,
    index: { type: 'string' },
    overwrite: { type: 'boolean' },
    nbits: { type: 'string' },
    'batch-size': { type: 'string' },
    'chunk-chars': { type: 'string' },
  })
  if (values.help) return io.out(HELP.index + '\n')
  if (positionals.length === 0) throw new UsageError('index needs at least one <source>')
  if (!values.index) throw new UsageError('--index <dir> is required')
  const nbits = int(values.nbits, 'nbits')
  if (nbits !== undefined && ![1, 2, 4].includes(nbits)) throw new UsageError('--nbits must be 1, 2 or 4')
  const batchSize = int(values['batch-size'], 'batch-size') ?? 32
  const chunkChars = int(values['chunk-chars'], 'chunk-chars', 100) ?? 1500
  const target = path.resolve(values.index)
  removeStale(target)
  // Never delete or replace anything this tool did not create: only an index is overwritten,
  // only a new or empty folder is written.
  const state = indexFolderState(target)
  if (state === 'file') throw new ColbertError('INDEX_EXISTS', `${target} is a file, not an index folder: choose another --index path`)
  if (state === 'foreign') {
    throw new ColbertError('INDEX_EXISTS', `${target} holds files that are not a colbert index; nothing was changed: choose a new or empty folder for --index`)
  }
  if (state === 'index' && !values.overwrite) {
    throw new ColbertError('INDEX_EXISTS', `${target} already holds an index: pass --overwrite to replace it, or choose another --index path`)
  }
  // Read the whole source first: a bad line fails before any encoding.
  const docs: SourceDocument[] = []
  for (const source of positionals) for await (const d of sourceDocuments(source, chunkChars)) docs.push(d)
  if (docs.length === 0) throw new ColbertError('INVALID_ARGUMENT', `${positionals.join(', ')} hold no documents`)
  const seen = new Set<string>()
  for (const d of docs) {
    if (seen.has(d.id)) throw new ColbertError('INVALID_ARGUMENT', `duplicate document id ${JSON.stringify(d.id)}`)
    checkWellFormed(d.id, `document id ${JSON.stringify(d.id)}`)
    seen.add(d.id)
  }
  const model = await loadModel(values, io, signal)
  const started = performance.now()
  const step = 256
  async function* batches(): AsyncGenerator<DocumentBatch> {
    for (let i = 0; i < docs.length; i += step) {
      const part = docs.slice(i, i + step)
      const embeddings = await model.encode(
        part.map((d) => d.text),
        { isQuery: false, batchSize, signal, onProgress: ({ done }) => bar(io, 'encoding', i + done, docs.length) },
      )
      yield {
        ids: part.map((d) => d.id),
        embeddings,
        documents: part.map((d): StoredDocument => (d.metadata ? { text: d.text, metadata: d.metadata } : { text: d.text })),
      }
    }
  }
  const addOptions = {
    signal,
    onProgress: (p: AddProgress) => {
      if (p.stage !== 'push') bar(io, p.stage === 'kmeans' ? 'k-means' : p.stage, p.done, p.total)
    },
  }
  let result: AddResult
  let info: PlaidIndexInfo
  if (state === 'index') {
    // One transaction on the existing index, holding its writer lock from the first batch to
    // the commit: other writers wait or get INDEX_LOCKED, searches see the old documents until
    // the new ones are complete, and an interrupted run changes nothing.
    const index = await openForOverwrite(target, nbits)
    try {
      result = await index.replaceAll(batches(), { ...addOptions, nbits: nbits as 1 | 2 | 4 | undefined })
      info = index.info
    } finally {
      await index.close()
    }
  } else {
    const tmp = `${target}.tmp-${process.pid}`
    const cleanup = () => fs.rmSync(tmp, { recursive: true, force: true })
    process.once('exit', cleanup)
    try {
      const index = await PlaidIndex.create(tmp, { nbits: nbits as 1 | 2 | 4 | undefined })
      result = await index.add(batches(), addOptions)
      info = index.info
      await index.close()
      moveIntoPlace(tmp, target)
    } finally {
      cleanup()
      process.removeListener('exit', cleanup)
    }
  }
  endBar(io)
  const seconds = (performance.now() - started) / 1000
  if (values.json) {
    io.out(JSON.stringify({ index: target, documents: result.added, embeddings: info.embeddings, centroids: result.numCentroids, bytesOnDisk: info.bytesOnDisk, seconds }) + '\n')
  } else {
    io.out(
      `indexed ${result.added} documents (${info.embeddings} token embeddings, ${result.numCentroids} centroids, ` +
        `${(info.bytesOnDisk / 1e6).toFixed(1)} MB) into ${target} in ${seconds.toFixed(1)} s\n`,
    )
  }
}

/**
 * Opens the index an --overwrite replaces. An index this version cannot read (another format,
 * a damaged manifest) is first replaced by an empty one, which is what it would become anyway.
 */
async function openForOverwrite(target: string, nbits: number | undefined): Promise<PlaidIndex> {
  try {
    return await PlaidIndex.open(target)
  } catch (e) {
    if (!(e instanceof ColbertError) || !['INDEX_FORMAT_UNSUPPORTED', 'INDEX_CORRUPT'].includes(e.code)) throw e
    return PlaidIndex.create(target, { overwrite: true, nbits: nbits as 1 | 2 | 4 | undefined })
  }
}

/**
 * Moves a finished index from its temporary folder to `target`, which must still be missing or
 * empty: if another process put something there meanwhile, nothing is replaced.
 */
function moveIntoPlace(tmp: string, target: string) {
  fs.mkdirSync(path.dirname(target), { recursive: true })
  try {
    // rmdir removes only an empty folder (rename over one is not portable); rename never
    // replaces a non-empty one.
    if (fs.existsSync(target)) fs.rmdirSync(target)
    fs.renameSync(tmp, target)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'EPERM' || code === 'ENOTDIR') {
      throw new ColbertError(
        'INDEX_EXISTS',
        `${target} was filled by another process while this run worked; nothing was replaced: run again (with --overwrite to replace an index)`,
      )
    }
    throw new ColbertError('IO', `cannot move the new index into ${target}: ${(e as Error).message}`)
  }
}

async function cmdSearch(args: string[], io: Io, signal: AbortSignal) {
  const { values, positionals } = parse(args, { ...MODEL_OPTIONS, index: { type: 'string' }, k: { type: 'string', short: 'k' }, filter: { type: 'string' } })
  if (values.help) return io.out(HELP.search + '\n')
  if (!values.index) throw new UsageError('--index <dir> is required')
  if (positionals.length === 0) throw new UsageError('search needs at least one query')
  const k = int(values.k, 'k') ?? 10
  let filter: Record<string, unknown> | undefined
  if (values.filter !== undefined) {
    try {
      filter = JSON.parse(values.filter)
    } catch (e) {
      throw new UsageError(`--filter must be JSON: ${(e as Error).message}`)
    }
  }
  const index = await PlaidIndex.open(values.index)
  try {
    const model = await loadModel(values, io, signal)
    const q = await model.encode(positionals, { isQuery: true, signal })
    const hits = await index.search(q, { k, filter, withDocuments: true, signal })
    if (values.json) {
      io.out(JSON.stringify(positionals.map((query, i) => ({ query, hits: hits[i] })), null, 2) + '\n')
      return
    }
    positionals.forEach((query, i) => {
      io.out(`${query}\n`)
      if (hits[i].length === 0) io.out('  (no results)\n')
      hits[i].forEach((h: SearchHit, rank) => {
        io.out(`  ${String(rank + 1).padStart(2)}. ${h.score.toFixed(3).padStart(8)}  ${h.id}\n`)
        const s = snippet(h.text)
        if (s) io.out(`      ${s}\n`)
      })
      if (i < positionals.length - 1) io.out('\n')
    })
  } finally {
    await index.close()
  }
}

async function cmdRerank(args: string[], io: Io, signal: AbortSignal) {
  const { values, positionals } = parse(args, { ...MODEL_OPTIONS, query: { type: 'string' }, k: { type: 'string', short: 'k' } })
  if (values.help) return io.out(HELP.rerank + '\n')
  if (values.query === undefined) throw new UsageError('--query <text> is required')
  if (positionals.length !== 1) throw new UsageError('rerank takes one candidates file (.jsonl, or - for stdin)')
  const k = int(values.k, 'k')
  const candidates: SourceDocument[] = []
  for await (const d of jsonlDocuments(positionals[0])) candidates.push(d)
  if (candidates.length === 0) {
    throw new ColbertError('INVALID_ARGUMENT', `${positionals[0] === '-' ? 'stdin' : positionals[0]} holds no candidates: pass JSON lines { "id": …, "text": … }`)
  }
  const model = await loadModel(values, io, signal)
  const q = await model.encode([values.query], { isQuery: true, signal })
  const d = await model.encode(
    candidates.map((c) => c.text),
    { isQuery: false, signal },
  )
  const [ranked] = rerank({ documentsIds: [candidates.map((c) => c.id)], queriesEmbeddings: q, documentsEmbeddings: [d] })
  const top = k === undefined ? ranked : ranked.slice(0, k)
  if (values.json) return io.out(JSON.stringify(top, null, 2) + '\n')
  const byId = new Map(candidates.map((c) => [c.id, c]))
  top.forEach((r, rank) => {
    io.out(`${String(rank + 1).padStart(3)}. ${r.score.toFixed(3).padStart(8)}  ${r.id}\n`)
    io.out(`      ${snippet(byId.get(r.id)?.text)}\n`)
  })
}

/** Reads candidate pools: TSV rows (query-id, corpus-id[, rank or score]), header optional. */
function readPools(file: string): Map<string, string[]> {
  const pools = new Map<string, string[]>()
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (e) {
    throw new ColbertError('IO', `cannot read the pool file ${file}: ${(e as Error).message}`)
  }
  const lines = text.split(/\r?\n/)
  lines.forEach((line, i) => {
    if (!line.trim()) return
    const cols = line.split('\t')
    if (cols.length < 2) throw badLine(file, i + 1, 'expected query-id<TAB>corpus-id')
    if (i === 0 && /query/i.test(cols[0])) return
    const list = pools.get(cols[0]) ?? []
    list.push(cols[1])
    pools.set(cols[0], list)
  })
  return pools
}

async function cmdEval(args: string[], io: Io, signal: AbortSignal) {
  const { values, positionals } = parse(args, {
    ...MODEL_OPTIONS,
    index: { type: 'string' },
    split: { type: 'string' },
    pool: { type: 'string' },
    'batch-size': { type: 'string' },
    name: { type: 'string' },
    ndcg: { type: 'string' },
    run: { type: 'string' },
  })
  if (values.help) return io.out(HELP.eval + '\n')
  const ndcg = values.ndcg ?? 'auto'
  if (!['auto', 'binary', 'graded'].includes(ndcg)) throw new UsageError('--ndcg must be auto, binary or graded')
  if (positionals.length !== 1) throw new UsageError('eval takes one BEIR folder')
  if (values.index && values.pool) throw new UsageError('--index and --pool are exclusive')
  const folder = positionals[0]
  const batchSize = int(values['batch-size'], 'batch-size') ?? 32
  const dataset = await loadBeir(folder, { split: values.split })
  const model = await loadModel(values, io, signal)
  const onProgress = (p: EvaluateProgress) => bar(io, p.stage, p.done, p.total)
  const started = performance.now()
  const index = values.index ? await PlaidIndex.open(values.index) : undefined
  try {
    if (index) await checkIndexCoversCorpus(index, dataset.corpus.map((d) => d.id), io)
    const result = await evaluate({
      model,
      dataset,
      index,
      pools: values.pool ? readPools(values.pool) : undefined,
      batchSize,
      signal,
      onProgress,
      metricOptions: ndcg === 'auto' ? undefined : { gradedNdcg: ndcg === 'graded' },
    })
    endBar(io)
    const seconds = (performance.now() - started) / 1000
    const mode = index ? 'plaid' : values.pool ? 'rerank' : 'exhaustive'
    if (values.run) writeRunFile(values.run, result.rankings, `colbert-${mode}`)
    if (values.json) {
      const metricOptions = { gradedNdcg: result.gradedNdcg }
      const perQuery = Object.fromEntries(
        [...result.rankings.keys()].map((qid) => [
          qid,
          computeMetrics(new Map([[qid, result.rankings.get(qid) ?? []]]), new Map([[qid, dataset.qrels.get(qid) ?? new Map()]]), metricOptions),
        ]),
      )
      io.out(JSON.stringify({ dataset: folder, mode, metrics: result.metrics, perQuery, queries: result.queries, documents: result.documents, gradedNdcg: result.gradedNdcg, timings: result.timings, seconds }, null, 2) + '\n')
      return
    }
    const name = values.name ?? path.basename(path.resolve(folder))
    io.out(formatMetricsTable(result.metrics, name) + '\n')
    io.out(`\n${result.queries} queries, ${result.documents} documents, ${mode}, ${seconds.toFixed(1)} s\n`)
  } finally {
    await index?.close()
  }
}

/**
 * Refuses an index that holds none of the corpus's documents (every metric would be 0) and
 * warns when it holds only some: the others count as never retrieved.
 */
async function checkIndexCoversCorpus(index: PlaidIndex, corpusIds: string[], io: Io) {
  const found = (await index.documents(corpusIds)).filter((d) => d !== null).length
  const held = index.info.documents
  if (found === 0) {
    throw new ColbertError(
      'INVALID_ARGUMENT',
      `the index ${index.dir} holds none of this corpus's ${corpusIds.length} document ids (it holds ${held} others): build it from this corpus with 'colbert index <beir-folder> --index <dir>'`,
    )
  }
  if (found < corpusIds.length) {
    io.err(`warning: the index holds ${found} of the corpus's ${corpusIds.length} documents (and ${held - found} others); the missing ones count as never retrieved\n`)
  }
}

/** Writes rankings as a TREC run file (`qid Q0 docid rank score tag`), atomically. */
function writeRunFile(file: string, rankings: Rankings, tag: string) {
  const lines: string[] = []
  for (const [qid, hits] of rankings) hits.forEach((h, i) => lines.push(`${qid} Q0 ${h.id} ${i + 1} ${h.score} ${tag}`))
  const tmp = `${file}.tmp-${process.pid}`
  try {
    fs.writeFileSync(tmp, lines.length ? lines.join('\n') + '\n' : '')
    fs.renameSync(tmp, file)
  } catch (e) {
    fs.rmSync(tmp, { force: true })
    throw new ColbertError('IO', `cannot write the run file ${file}: ${(e as Error).message}`)
  }
}

async function cmdEncode(args: string[], io: Io, signal: AbortSignal) {
  const { values, positionals } = parse(args, { ...MODEL_OPTIONS, queries: { type: 'boolean' }, 'batch-size': { type: 'string' } })
  if (values.help) return io.out(HELP.encode + '\n')
  if (positionals.length > 1) throw new UsageError('encode takes at most one input file')
  const batchSize = int(values['batch-size'], 'batch-size') ?? 32
  const texts = await readTexts(positionals[0])
  const model = await loadModel(values, io, signal)
  const e: Embeddings = await model.encode(
    texts.map((t) => t.text),
    { isQuery: Boolean(values.queries), batchSize, signal, onProgress: ({ done, total }) => bar(io, 'encoding', done, total) },
  )
  endBar(io)
  for (let i = 0; i < count(e); i++) {
    const rows = item(e, i)
    const n = rows.length / e.dim
    const embeddings = Array.from({ length: n }, (_, r) => Array.from(rows.subarray(r * e.dim, (r + 1) * e.dim)))
    io.out(JSON.stringify({ id: texts[i].id, shape: [n, e.dim], embeddings }) + '\n')
  }
}

async function cmdInfo(args: string[], io: Io, signal: AbortSignal) {
  const { values } = parse(args, { ...MODEL_OPTIONS, index: { type: 'string' } })
  if (values.help) return io.out(HELP.info + '\n')
  const info: Record<string, unknown> = {}
  try {
    loadRuntime()
    info.runtime = runtimeInfo()
  } catch (e) {
    info.runtime = { error: (e as Error).message }
  }
  if (values.model ?? process.env.COLBERT_MODEL) {
    const model = await loadModel(values, io, signal)
    info.model = { onnx: model.onnxPath, executionProvider: model.executionProvider, threads: model.threads, ...model.config }
  }
  if (values.index) {
    const index = await PlaidIndex.open(values.index)
    info.index = { dir: index.dir, ...index.info }
    await index.close()
  }
  if (values.json) return io.out(JSON.stringify(info, null, 2) + '\n')
  for (const [section, body] of Object.entries(info)) {
    io.out(`${section}:\n`)
    printFields(io, body as Record<string, unknown>, '  ')
  }
}

/** Prints `key: value` lines; nested objects are indented under their key. */
function printFields(io: Io, body: Record<string, unknown>, indent: string) {
  for (const [k, v] of Object.entries(body)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      io.out(`${indent}${k}:\n`)
      printFields(io, v as Record<string, unknown>, `${indent}  `)
    } else {
      io.out(`${indent}${k}: ${Array.isArray(v) ? (v.length > 12 ? `${v.length} entries` : v.join(' ')) : String(v)}\n`)
    }
  }
}

const COMMANDS: Record<string, (args: string[], io: Io, signal: AbortSignal) => Promise<void>> = {
  index: cmdIndex,
  search: cmdSearch,
  rerank: cmdRerank,
  eval: cmdEval,
  encode: cmdEncode,
  info: cmdInfo,
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const io: Io = {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    tty: Boolean(process.stderr.isTTY),
    quiet: argv.includes('--quiet'),
    lastLabel: '',
    lastLine: 0,
    lastDone: 0,
  }
  const [command, ...rest] = argv
  if (command === undefined) {
    io.err(HELP.main + '\n')
    return 2
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    io.out(HELP.main + '\n')
    return 0
  }
  if (command === '--version' || command === '-v') {
    io.out(`${JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version}\n`)
    return 0
  }
  const run = COMMANDS[command]
  if (!run) {
    io.err(`colbert: unknown command ${JSON.stringify(command)}\n\n${HELP.main}\n`)
    return 2
  }
  const controller = new AbortController()
  const onSignal = () => controller.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    await run(rest, io, controller.signal)
    return 0
  } catch (e) {
    endBar(io)
    if (e instanceof UsageError) {
      io.err(`colbert ${command}: ${e.message}\nRun 'colbert ${command} --help' for usage.\n`)
      return 2
    }
    if (e instanceof ColbertError) {
      io.err(`colbert ${command}: ${e.code}: ${e.message}\n`)
      return e.code === 'ABORTED' ? 130 : 1
    }
    io.err(`colbert ${command}: ${(e as Error)?.stack ?? String(e)}\n`)
    return 1
  } finally {
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
  }
}
