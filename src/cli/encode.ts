// `colbert encode`: encodes texts into token embeddings, printed as JSON lines.
import { count, item, type Embeddings } from '../embeddings'
import { readTexts } from './documents'
import { int, loadModel, MODEL_HELP, MODEL_OPTIONS, parse, UsageError } from './options'
import { bar, endBar, type Io } from './output'

const HELP = `Usage: colbert encode [<input>] [options]

<input> is a .jsonl file of { id | _id, text } or a text file with one text per line (default:
stdin). Prints one JSON line per text: { id, shape: [tokens, dim], embeddings: number[][] }.

${MODEL_HELP}
  --queries                encode as queries (default: documents)
  --batch-size <n>         texts per encoder batch (default 32)`

export async function cmdEncode(args: string[], io: Io, signal: AbortSignal) {
  const { values, positionals } = parse(args, { ...MODEL_OPTIONS, queries: { type: 'boolean' }, 'batch-size': { type: 'string' } })
  if (values.help) return io.out(HELP + '\n')
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
