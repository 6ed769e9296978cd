// `colbert index`: builds a PLAID index from Markdown/text files, a JSONL file or a BEIR corpus,
// in a temporary folder moved into place when complete, or as one replaceAll with --overwrite.
import fs from 'node:fs'
import path from 'node:path'

import { checkWellFormed } from '../arguments'
import { ColbertError } from '../errors'
import {
  PlaidIndex,
  type AddProgress,
  type AddResult,
  type DocumentBatch,
  type PlaidIndexInfo,
  type StoredDocument,
} from '../plaid_index'
import { processAlive } from '../pid'
import { MAX_POOL_FACTOR } from '../pool'
import { sourceDocuments, type SourceDocument } from './documents'
import { DOCUMENT_MODEL_HELP, int, loadModel, MODEL_OPTIONS, parse, UsageError } from './options'
import { bar, endBar, type Io } from './output'

const HELP = `Usage: colbert index <source> [<source> ...] --index <dir> [options]

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
  --pool-factor <n>        keep about 1/n of each document's token embeddings (PyLate's
                           pool_factor: hierarchical clustering; default 1, off). 2 halves the
                           index for a small loss in quality (README, "Token pooling")
  --batch-size <n>         texts per encoder batch (default 32)
  --chunk-chars <n>        maximum characters per section of a text file (default 1500)
  --quiet                  no progress output`

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

export async function cmdIndex(args: string[], io: Io, signal: AbortSignal) {
  const { values, positionals } = parse(args, {
    model: MODEL_OPTIONS.model,
    quantized: MODEL_OPTIONS.quantized,
    threads: MODEL_OPTIONS.threads,
    index: { type: 'string' },
    overwrite: { type: 'boolean' },
    nbits: { type: 'string' },
    'pool-factor': { type: 'string' },
    'batch-size': { type: 'string' },
    'chunk-chars': { type: 'string' },
  })
  if (values.help) return io.out(HELP + '\n')
  if (positionals.length === 0) throw new UsageError('index needs at least one <source>')
  if (!values.index) throw new UsageError('--index <dir> is required')
  const nbits = int(values.nbits, 'nbits')
  if (nbits !== undefined && ![1, 2, 4].includes(nbits)) throw new UsageError('--nbits must be 1, 2 or 4')
  const batchSize = int(values['batch-size'], 'batch-size') ?? 32
  const poolFactor = int(values['pool-factor'], 'pool-factor') ?? 1
  if (poolFactor > MAX_POOL_FACTOR) throw new UsageError(`--pool-factor must be at most ${MAX_POOL_FACTOR}`)
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
    poolFactor,
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
