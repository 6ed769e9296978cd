// The command-line tool (`npx colbert …`): encode, index, search, serve, rerank, eval, info.
// Everything goes through the public API; the CLI only parses arguments, reads inputs and
// prints. Exit codes: 0 success, 1 a ColbertError or I/O failure, 2 a usage error, 130 interrupted.
// One file per command (build.ts is `colbert index`); options.ts, output.ts and documents.ts hold
// what the commands share.
import fs from 'node:fs'
import path from 'node:path'

import { ColbertError } from '../errors'
import { cmdIndex } from './build'
import { cmdEncode } from './encode'
import { cmdEval } from './eval'
import { cmdInfo } from './info'
import { UsageError } from './options'
import { endBar, type Io } from './output'
import { cmdRerank } from './rerank'
import { cmdSearch } from './search'
import { cmdServe } from './serve'

export { splitText } from './documents'

const HELP = `colbert — ColBERT late-interaction retrieval (PyLate-compatible) for Node.js

Usage: colbert <command> [options]

Commands:
  index    build a PLAID index from Markdown/text files, a JSONL file or a BEIR corpus
  search   search an index with one or more queries
  serve    serve search, encode, rerank and upserts over HTTP
  rerank   rerank candidate documents for a query by exact MaxSim
  eval     evaluate a model on a BEIR folder (exhaustive MaxSim or through an index)
  encode   encode texts into token embeddings (JSON lines)
  info     show the runtime, a model's settings and an index's state

Run 'colbert <command> --help' for a command's options.`

const COMMANDS: Record<string, (args: string[], io: Io, signal: AbortSignal) => Promise<void>> = {
  index: cmdIndex,
  search: cmdSearch,
  serve: cmdServe,
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
    io.err(HELP + '\n')
    return 2
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    io.out(HELP + '\n')
    return 0
  }
  if (command === '--version' || command === '-v') {
    // The package root, from dist/src/cli/.
    io.out(`${JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')).version}\n`)
    return 0
  }
  const run = COMMANDS[command]
  if (!run) {
    io.err(`colbert: unknown command ${JSON.stringify(command)}\n\n${HELP}\n`)
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
