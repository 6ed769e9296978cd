// JSON-lines parsing shared by the BEIR loader and the CLI: coded errors that name file and line.
import { ColbertError, invalidArgument } from './errors'

/** An `INVALID_ARGUMENT` error for line `lineNo` of `file`. */
export function badLine(file: string, lineNo: number, what: string): ColbertError {
  return invalidArgument(`${file}:${lineNo}: ${what}`)
}

/** Parses one line that must hold a JSON object. */
export function parseJsonLine(file: string, lineNo: number, line: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch (e) {
    throw badLine(file, lineNo, `not valid JSON (${(e as Error).message})`)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw badLine(file, lineNo, 'expected a JSON object')
  return value as Record<string, unknown>
}
