// Guarding user progress callbacks: a callback that throws is reported once as a process warning
// and never breaks the operation.

export function guard<A extends unknown[]>(callback: ((...args: A) => void) | undefined, what: string) {
  if (callback === undefined) return undefined
  let warned = false
  return (...args: A) => {
    try {
      callback(...args)
    } catch (e) {
      if (!warned) {
        warned = true
        process.emitWarning(`${what} threw and was ignored: ${e instanceof Error ? e.message : String(e)}`, {
          code: 'COLBERT_PROGRESS_CALLBACK',
        })
      }
    }
  }
}
