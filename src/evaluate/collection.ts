// Loading BEIR folders: `corpus.jsonl`, the queries and the qrels of a split, read line by line
// with file:line errors, and the text PyLate encodes for a document.
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'

import { ColbertError, invalidArgument } from '../errors'
import { badLine, parseJsonLine } from '../jsonl'

/** One corpus document of a BEIR folder (`corpus.jsonl`: `_id`, `title`, `text`). */
export interface BeirDocument {
  /** The document's id (`_id`; a number is read as its decimal string). */
  id: string
  /** `''` when the line has no title. */
  title: string
  /** The document's text. */
  text: string
}

/** One query of a BEIR folder (`queries.jsonl`: `_id`, `text`). */
export interface BeirQuery {
  /** The query's id (`_id`; a number is read as its decimal string). */
  id: string
  /** The query's text. */
  text: string
}

/** Relevance judgements: query id → document id → grade (`qrels/*.tsv`, column `score`). */
export type Qrels = Map<string, Map<string, number>>

/** A BEIR collection in memory, in file order. */
export interface BeirDataset {
  /** Every document of `corpus.jsonl`. */
  corpus: BeirDocument[]
  /** Every query of the file, judged or not (`evaluate` keeps the judged ones). */
  queries: BeirQuery[]
  /** The split's relevance judgements, every row kept (grade 0 and negative ones included). */
  qrels: Qrels
}

/** Options of `loadBeir`. */
export interface LoadBeirOptions {
  /** Which qrels (and queries) to read (default `'test'`), see `loadBeir`. */
  split?: string
}

function ioError(message: string, cause: unknown): ColbertError {
  return new ColbertError('IO', `${message}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(file)).isFile()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return false
    throw ioError(`cannot read ${file}`, e)
  }
}

/** Streams the lines of a UTF-8 file (BOM, `\r` and blank lines dropped) with 1-based numbers. */
async function readLines(file: string, onLine: (line: string, lineNo: number) => void): Promise<void> {
  const input = fs.createReadStream(file, { encoding: 'utf8' })
  const lines = readline.createInterface({ input, crlfDelay: Infinity })
  let lineNo = 0
  try {
    for await (let line of lines) {
      lineNo++
      if (lineNo === 1 && line.charCodeAt(0) === 0xfeff) line = line.slice(1)
      if (line.trim() === '') continue
      onLine(line, lineNo)
    }
  } catch (e) {
    if (e instanceof ColbertError) throw e
    throw ioError(`cannot read ${file}`, e)
  } finally {
    lines.close()
    input.destroy()
  }
}

function idField(file: string, lineNo: number, obj: Record<string, unknown>): string {
  const id = obj._id
  if (typeof id === 'number' && Number.isFinite(id)) return String(id)
  if (typeof id !== 'string' || id.length === 0) throw badLine(file, lineNo, '"_id" must be a non-empty string')
  return id
}

function textField(file: string, lineNo: number, obj: Record<string, unknown>, key: string, optional: boolean): string {
  const value = obj[key]
  if (value === undefined || value === null) {
    if (optional) return ''
    throw badLine(file, lineNo, `"${key}" is missing`)
  }
  if (typeof value !== 'string') throw badLine(file, lineNo, `"${key}" must be a string`)
  return value
}

async function firstFile(candidates: string[]): Promise<string | undefined> {
  for (const c of candidates) if (await isFile(c)) return c
  return undefined
}

/**
 * Reads a BEIR-layout folder:
 * - `corpus.jsonl` (`_id`, `title` optional, `text`), streamed line by line;
 * - queries from `queries-<split>.jsonl` when present, else `queries.jsonl` (`_id`, `text`);
 * - qrels from `qrels/<split>.tsv` (BEIR), else `qrels-<split>.tsv`, else `qrels.tsv` for the
 *   `'test'` split: tab-separated `query-id corpus-id score`, with an optional header line (a
 *   first line whose score is not a number). Every row is kept, grade 0 and negative included.
 *
 * Ids must be unique (a qrels pair may repeat only with the same grade). A missing folder or
 * file, or a malformed line, is `INVALID_ARGUMENT` naming the file and line; other file-system
 * failures are `IO`.
 */
export async function loadBeir(dir: string, options: LoadBeirOptions = {}): Promise<BeirDataset> {
  if (typeof dir !== 'string' || dir.length === 0) throw invalidArgument('the dataset path must be a non-empty string')
  if (options === null || typeof options !== 'object') throw invalidArgument('options must be an object')
  const split = options.split ?? 'test'
  if (typeof split !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(split)) throw invalidArgument(`split must be a simple name such as 'test', got ${JSON.stringify(split)}`)
  let stat: fs.Stats
  try {
    stat = await fs.promises.stat(dir)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw invalidArgument(`dataset folder not found: ${dir}`)
    throw ioError(`cannot read ${dir}`, e)
  }
  if (!stat.isDirectory()) throw invalidArgument(`the dataset path is not a folder: ${dir}`)

  const corpusFile = path.join(dir, 'corpus.jsonl')
  if (!(await isFile(corpusFile))) throw invalidArgument(`${dir} is not a BEIR folder: corpus.jsonl is missing`)
  const queryCandidates = [path.join(dir, `queries-${split}.jsonl`), path.join(dir, 'queries.jsonl')]
  const queriesFile = await firstFile(queryCandidates)
  if (!queriesFile) throw invalidArgument(`${dir} is not a BEIR folder: none of ${queryCandidates.map((f) => path.basename(f)).join(', ')} exists`)
  const qrelsCandidates = [path.join(dir, 'qrels', `${split}.tsv`), path.join(dir, `qrels-${split}.tsv`)]
  if (split === 'test') qrelsCandidates.push(path.join(dir, 'qrels.tsv'))
  const qrelsFile = await firstFile(qrelsCandidates)
  if (!qrelsFile) {
    throw invalidArgument(`no qrels for split '${split}' in ${dir}: looked for ${qrelsCandidates.map((f) => path.relative(dir, f)).join(', ')}`)
  }

  const corpus: BeirDocument[] = []
  const seenDocs = new Map<string, number>()
  await readLines(corpusFile, (line, lineNo) => {
    const obj = parseJsonLine(corpusFile, lineNo, line)
    const id = idField(corpusFile, lineNo, obj)
    const before = seenDocs.get(id)
    if (before !== undefined) throw badLine(corpusFile, lineNo, `duplicate _id ${JSON.stringify(id)} (first on line ${before})`)
    seenDocs.set(id, lineNo)
    corpus.push({ id, title: textField(corpusFile, lineNo, obj, 'title', true), text: textField(corpusFile, lineNo, obj, 'text', false) })
  })

  const queries: BeirQuery[] = []
  const seenQueries = new Map<string, number>()
  await readLines(queriesFile, (line, lineNo) => {
    const obj = parseJsonLine(queriesFile, lineNo, line)
    const id = idField(queriesFile, lineNo, obj)
    const before = seenQueries.get(id)
    if (before !== undefined) throw badLine(queriesFile, lineNo, `duplicate _id ${JSON.stringify(id)} (first on line ${before})`)
    seenQueries.set(id, lineNo)
    queries.push({ id, text: textField(queriesFile, lineNo, obj, 'text', false) })
  })

  const qrels: Qrels = new Map()
  let first = true
  await readLines(qrelsFile, (line, lineNo) => {
    const fields = line.split('\t').map((f) => f.trim())
    // A first line whose score column is not a number is the header (BEIR: query-id corpus-id score).
    const header = first && fields.length === 3 && !Number.isFinite(Number(fields[2]))
    first = false
    if (header) return
    if (fields.length !== 3) throw badLine(qrelsFile, lineNo, `expected 3 tab-separated fields (query-id, corpus-id, score), got ${fields.length}`)
    const [qid, did, s] = fields
    if (!qid || !did) throw badLine(qrelsFile, lineNo, 'empty query-id or corpus-id')
    const grade = s === '' ? NaN : Number(s)
    if (!Number.isFinite(grade)) throw badLine(qrelsFile, lineNo, `score must be a number, got ${JSON.stringify(s)}`)
    let judged = qrels.get(qid)
    if (!judged) qrels.set(qid, (judged = new Map()))
    const before = judged.get(did)
    if (before !== undefined && before !== grade) throw badLine(qrelsFile, lineNo, `${qid} ${did} is judged twice with different scores (${before}, ${grade})`)
    judged.set(did, grade)
  })
  return { corpus, queries, qrels }
}

/** The text encoded for a document, as PyLate's `load_beir`: `(title + ' ' + text).trim()`. */
export function documentText(doc: Pick<BeirDocument, 'title' | 'text'>): string {
  return `${doc.title ?? ''} ${doc.text}`.trim()
}
