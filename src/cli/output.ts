// Terminal output of the command-line tool: the streams and settings every command writes
// through (Io), the progress bar and text snippets.

export interface Io {
  out: (s: string) => void
  err: (s: string) => void
  /** stderr is a terminal: progress is a bar redrawn in place, else plain lines. */
  tty: boolean
  /** --quiet: no progress output. */
  quiet: boolean
  /** Plain-line progress state: the last label printed, when, and the last count seen. */
  lastLabel: string
  lastLine: number
  lastDone: number
}

/**
 * Progress on stderr: a bar redrawn in place on a terminal; elsewhere (CI logs, `2>log`) a plain
 * line when a stage starts, at most every 5 s, and when it completes. Nothing with --quiet.
 */
export function bar(io: Io, label: string, done: number, total: number) {
  if (io.quiet) return
  if (!io.tty) {
    const now = Date.now()
    const finished = total > 0 && done >= total
    if (label !== io.lastLabel || now - io.lastLine >= 5000 || (finished && io.lastDone < total)) {
      io.err(`${label} ${done}/${total}\n`)
      io.lastLabel = label
      io.lastLine = now
    }
    io.lastDone = done
    return
  }
  const width = 30
  const frac = total > 0 ? Math.min(1, done / total) : 0
  const fill = Math.round(frac * width)
  io.err(`\r\x1b[K${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${done}/${total}`)
}

/** Clears a terminal progress bar. */
export function endBar(io: Io) {
  if (io.tty && !io.quiet) io.err('\r\x1b[K')
}

export function snippet(text: string | undefined, n = 160): string {
  if (!text) return ''
  const flat = text.replace(/\s+/g, ' ').trim()
  return flat.length > n ? `${flat.slice(0, n - 1)}…` : flat
}
