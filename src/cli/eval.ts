// `colbert eval`: evaluates a model on a BEIR folder (exhaustive MaxSim, through an index, or
// reranking candidate pools) and prints the metrics table or JSON, optionally a TREC run file.
import fs from 'node:fs'
import path from 'node:path'

import { ColbertError } from '../errors'
import {
  computeMetrics,
  evaluate,
  formatMetricsTable,
  loadBeir,
  type EvaluateProgress,
  type Rankings,
} from '../evaluate'
import { badLine } from '../jsonl'
import { PlaidIndex } from '../plaid_index'
import { int, loadModel, MODEL_HELP, MODEL_OPTIONS, parse, UsageError } from './options'
import { bar, endBar, type Io } from './output'

const HELP = `Usage: colbert eval <beir-folder> [options]

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
  --quiet                  no progress output`

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

export async function cmdEval(args: string[], io: Io, signal: AbortSignal) {
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
  if (values.help) return io.out(HELP + '\n')
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
