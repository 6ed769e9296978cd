// `colbert search`: searches an index with one or more queries.
import { PlaidIndex, type SearchHit } from '../plaid_index'
import { int, loadModel, MODEL_HELP, MODEL_OPTIONS, parse, UsageError } from './options'
import { snippet, type Io } from './output'

const HELP = `Usage: colbert search --index <dir> [options] <query> [<query> ...]

${MODEL_HELP}
  --index <dir>            the index to search (required)
  -k, --k <n>              results per query (default 10)
  --filter <json>          metadata filter, e.g. '{"path":"README.md"}'
  --json                   print JSON: [{ query, hits: [{ id, score, text, metadata }] }]`

export async function cmdSearch(args: string[], io: Io, signal: AbortSignal) {
  const { values, positionals } = parse(args, { ...MODEL_OPTIONS, index: { type: 'string' }, k: { type: 'string', short: 'k' }, filter: { type: 'string' } })
  if (values.help) return io.out(HELP + '\n')
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
