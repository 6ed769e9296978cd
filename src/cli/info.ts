// `colbert info`: shows the runtime, a model's settings and an index's state.
import { PlaidIndex } from '../plaid_index'
import { loadRuntime, runtimeInfo } from '../runtime'
import { loadModel, MODEL_OPTIONS, parse } from './options'
import type { Io } from './output'

const HELP = `Usage: colbert info [--model <path|org/name>] [--index <dir>] [--json]

Prints the ONNX Runtime in use, the model's settings and the index's state.`

export async function cmdInfo(args: string[], io: Io, signal: AbortSignal) {
  const { values } = parse(args, { ...MODEL_OPTIONS, index: { type: 'string' } })
  if (values.help) return io.out(HELP + '\n')
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
