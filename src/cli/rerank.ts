// `colbert rerank`: reranks candidate documents for a query by exact MaxSim.
import { ColbertError } from '../errors'
import { rerank } from '../rank'
import { jsonlDocuments, type SourceDocument } from './documents'
import { int, loadModel, MODEL_HELP, MODEL_OPTIONS, parse, UsageError } from './options'
import { snippet, type Io } from './output'

const HELP = `Usage: colbert rerank --query <text> <candidates.jsonl | -> [options]

Candidates are JSON lines { id | _id, text, title? } (from a file, or stdin with '-').

${MODEL_HELP}
  --query <text>           the query (required)
  -k, --k <n>              keep the n best (default: all)
  --json                   print JSON: [{ id, score }]`

export async function cmdRerank(args: string[], io: Io, signal: AbortSignal) {
  const { values, positionals } = parse(args, { ...MODEL_OPTIONS, query: { type: 'string' }, k: { type: 'string', short: 'k' } })
  if (values.help) return io.out(HELP + '\n')
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
