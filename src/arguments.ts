// Argument checks and AbortSignal wiring shared by the public classes: bad input becomes
// INVALID_ARGUMENT before anything reaches the native layer.
import { abortError, fromNative, invalidArgument } from './errors'
import { native, type Native } from './native'

/** An optional positive integer that fits the native u32 arguments. */
export function positiveInt(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 2 ** 32 - 1) {
    throw invalidArgument(`${name} must be a positive integer, got ${String(value)}`)
  }
  return value as number
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
