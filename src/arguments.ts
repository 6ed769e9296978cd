// Argument checks and AbortSignal wiring shared by the public classes: bad input becomes
// INVALID_ARGUMENT before anything reaches the native layer.
import { abortError, ColbertError, fromNative, invalidArgument } from './errors'
import { native, type Native } from './native'

/** An optional positive integer that fits the native u32 arguments. */
export function positiveInt(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 2 ** 32 - 1) {
    throw invalidArgument(`${name} must be a positive integer, got ${String(value)}`)
  }
  return value as number
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * Rejects a string with a lone surrogate: it has no UTF-8 form, so it would be stored (and come
 * back) as U+FFFD, and two different ids could become one.
 */
export function checkWellFormed(s: string, what: string): void {
  const m = LONE_SURROGATE.exec(s)
  if (m) {
    const hex = m[0].charCodeAt(0).toString(16).toUpperCase()
    throw invalidArgument(`${what} contains a lone surrogate (U+${hex} at index ${m.index}), which has no UTF-8 form: remove it (String.prototype.toWellFormed replaces it)`)
  }
}

/**
 * JSON text of a plain value, refusing what `JSON.stringify` would silently change: NaN and
 * ±Infinity (written as null) and strings or keys with lone surrogates.
 */
export function strictJson(value: unknown, what: string): string {
  try {
    return JSON.stringify(value, function (key, v) {
      if (key) checkWellFormed(key, `${what} key ${JSON.stringify(key)}`)
      if (typeof v === 'number' && !Number.isFinite(v)) throw invalidArgument(`${what} holds ${v} at ${JSON.stringify(key)}, which JSON cannot represent`)
      if (typeof v === 'string') checkWellFormed(v, `${what} value at ${JSON.stringify(key)}`)
      return v
    })
  } catch (e) {
    if (e instanceof ColbertError) throw e
    throw invalidArgument(`${what} must be JSON-serialisable: ${(e as Error).message}`)
  }
}

/**
 * The keys of options interface `T` as a set for {@link checkKeys}, checked when compiling:
 * `optionKeys<AddOptions>()('documents', …)` does not compile if a key is not in `T` or a key
 * of `T` is left out, so the runtime check cannot drift from the interface.
 */
export function optionKeys<T>() {
  return <const K extends readonly (keyof T & string)[]>(
    ...keys: K & ([Exclude<keyof T & string, K[number]>] extends [never] ? unknown : ['missing', Exclude<keyof T & string, K[number]>])
  ): ReadonlySet<string> => new Set<string>(keys)
}

/** Rejects an options object with a key outside `allowed` (a typo would otherwise be ignored). */
export function checkKeys(options: object, allowed: ReadonlySet<string>, what: string): void {
  if (options === null || typeof options !== 'object') throw invalidArgument(`${what} must be an object`)
  for (const key of Object.keys(options)) if (!allowed.has(key)) throw invalidArgument(`unknown ${what} ${JSON.stringify(key)}`)
}

/** An optional value of a given `typeof`. */
export function optionalType<T>(value: unknown, type: string, name: string): T | undefined {
  if (value === undefined) return undefined
  if (typeof value !== type) throw invalidArgument(`${name} must be a ${type}, got ${typeof value}`)
  return value as T
}

export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgument('signal must be an AbortSignal')
  return signal as AbortSignal | undefined
}

/**
 * Runs a native call with a cancel token wired to `signal`: rejects at once if it is already
 * aborted, and turns the native `ABORTED` (and every other native error) into a `ColbertError`.
 */
export async function withCancel<T>(signal: AbortSignal | undefined, run: (token: Native.CancelToken) => Promise<T>): Promise<T> {
  if (signal?.aborted) throw abortError(signal)
  const token = new native.CancelToken()
  const onAbort = () => token.cancel()
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    return await run(token)
  } catch (e) {
    const err = fromNative(e)
    throw err.code === 'ABORTED' ? abortError(signal) : err
  } finally {
    signal?.removeEventListener('abort', onAbort)
  }
}
