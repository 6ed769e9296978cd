/**
 * Every stable error code, frozen: `ColbertErrorCode` and the check of native messages derive
 * from this one list. README.md ("Errors") says when each is thrown.
 */
export const ERROR_CODES = Object.freeze([
  'MODEL_NOT_FOUND',
  'MODEL_INVALID',
  'MODEL_NOT_ONNX',
  'HUB_UNAUTHORIZED',
  'HUB_UNAVAILABLE',
  'ORT_LOAD_FAILED',
  'PLATFORM_UNSUPPORTED',
  'INVALID_ARGUMENT',
  'TOKENIZE_FAILED',
  'INFERENCE_FAILED',
  'ABORTED',
  'BUSY',
  'UNAUTHORIZED',
  'NOT_FOUND',
  'DEPENDENCY_MISSING',
  'CLOSED',
  'INDEX_NOT_FOUND',
  'INDEX_EXISTS',
  'INDEX_FORMAT_UNSUPPORTED',
  'INDEX_CORRUPT',
  'INDEX_LOCKED',
  'CLUSTER_UNAVAILABLE',
  'WRITE_INCOMPLETE',
  'IO',
  'INTERNAL',
] as const)

/** Stable codes carried by every error this package throws: one of {@link ERROR_CODES}. */
export type ColbertErrorCode = (typeof ERROR_CODES)[number]

const CODES = new Set<string>(ERROR_CODES)

/** An error from `colbert`: `code` is stable across versions, `message` says what to do. */
export class ColbertError extends Error {
  /** What went wrong, stable across versions: branch on it, not on `message`. */
  readonly code: ColbertErrorCode

  /** An error with a stable `code`; `options.cause` keeps the underlying error. */
  constructor(code: ColbertErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ColbertError'
    this.code = code
  }
}

/** Converts an error from the native layer (`CODE: message`) into a `ColbertError`. */
export function fromNative(error: unknown): ColbertError {
  if (error instanceof ColbertError) return error
  const message = error instanceof Error ? error.message : String(error)
  const m = /^([A-Z][A-Z0-9_]*): ([\s\S]*)$/.exec(message)
  if (m && CODES.has(m[1])) return new ColbertError(m[1] as ColbertErrorCode, m[2], { cause: error })
  return new ColbertError('INTERNAL', message, { cause: error })
}

/** Runs a native call and rethrows its error as a `ColbertError`. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn()
  } catch (e) {
    throw fromNative(e)
  }
}

export function invalidArgument(message: string): ColbertError {
  return new ColbertError('INVALID_ARGUMENT', message)
}

export function abortError(signal?: AbortSignal): ColbertError {
  return new ColbertError('ABORTED', 'the operation was aborted', { cause: signal?.reason })
}
