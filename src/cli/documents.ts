// Reading documents for the command-line tool: Markdown/text files and folders (split into
// sections), JSONL files, BEIR corpora and plain text lines.
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'

import { ColbertError } from '../errors'
import { documentText } from '../evaluate'
import { badLine, parseJsonLine } from '../jsonl'

export interface SourceDocument {
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

export async function* jsonlDocuments(file: string): AsyncGenerator<SourceDocument> {
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

export async function* sourceDocuments(source: string, chunkChars: number): AsyncGenerator<SourceDocument> {
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

export async function readTexts(input: string | undefined): Promise<SourceDocument[]> {
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
