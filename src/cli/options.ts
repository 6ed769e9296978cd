// Argument parsing shared by the commands: the usage error, the option tables and help lines of
// the model options, `parseArgs` with the common flags, integer options and loading the model.
import { parseArgs, type ParseArgsConfig } from 'node:util'

import { ColBERT, type ColBERTOptions } from '../model'
import { bar, endBar, type Io } from './output'

export class UsageError extends Error {}

export const DOCUMENT_MODEL_HELP = `  --model <path|org/name>  model folder or Hugging Face repo (default: $COLBERT_MODEL)
  --quantized              use model_int8.onnx
  --threads <n>            intra-op threads`
export const MODEL_HELP = `${DOCUMENT_MODEL_HELP}
  --no-query-expansion     encode queries without mask-token expansion`

export const MODEL_OPTIONS = {
  model: { type: 'string' },
  quantized: { type: 'boolean' },
  'no-query-expansion': { type: 'boolean' },
  threads: { type: 'string' },
} as const

const COMMON = { help: { type: 'boolean', short: 'h' }, quiet: { type: 'boolean' }, json: { type: 'boolean' } } as const

/** What `parse` returns: `parseArgs`'s result for these options (node:util does not export its name). */
type Parsed<T extends NonNullable<ParseArgsConfig['options']>> = ReturnType<
  typeof parseArgs<{ args: string[]; options: typeof COMMON & T; allowPositionals: true; strict: true }>
>

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T): Parsed<T> {
  try {
    return parseArgs({ args, options: { ...COMMON, ...options }, allowPositionals: true, strict: true })
  } catch (e) {
    throw new UsageError((e as Error).message)
  }
}

const MAX_INT = 2 ** 32 - 1

export function int(value: string | undefined, name: string, min = 1): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!/^\s*\d+\s*$/.test(value) || !Number.isInteger(n) || n < min || n > MAX_INT) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${MAX_INT}, got ${JSON.stringify(value)}`)
  }
  return n
}

export async function loadModel(values: Record<string, unknown>, io: Io, signal: AbortSignal, extra: ColBERTOptions = {}): Promise<ColBERT> {
  const name = (values.model as string | undefined) ?? process.env.COLBERT_MODEL
  if (!name) throw new UsageError('--model is required (a model folder or an org/name hub repo; or set COLBERT_MODEL)')
  const options: ColBERTOptions = { ...extra, signal }
  if (values.quantized) options.quantized = true
  if (values['no-query-expansion']) options.doQueryExpansion = false
  const threads = int(values.threads as string | undefined, 'threads')
  if (threads !== undefined) options.threads = threads
  options.onProgress = (p) => bar(io, `downloading ${p.file}`, p.downloaded, p.total ?? 0)
  const model = await ColBERT.fromPretrained(name, options)
  endBar(io)
  return model
}
