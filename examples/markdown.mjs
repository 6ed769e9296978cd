// Splits Markdown files into sections (one per heading), the documents both examples index.
import fs from 'node:fs'
import path from 'node:path'

/** `[{ id: 'README.md#3', text, metadata: { path, heading } }]`, one per section with text. */
export function markdownSections(root, files) {
  const sections = []
  for (const file of files) {
    let heading = ''
    let lines = []
    let n = 0
    const flush = () => {
      const text = lines.join('\n').trim()
      if (text) sections.push({ id: `${file}#${n++}`, text: heading ? `${heading}\n${text}` : text, metadata: { path: file, heading } })
      lines = []
    }
    let fenced = false
    for (const line of fs.readFileSync(path.join(root, file), 'utf8').split('\n')) {
      if (line.startsWith('```')) fenced = !fenced
      if (!fenced && /^#{1,4} /.test(line)) {
        flush()
        heading = line.replace(/^#+ /, '')
      } else lines.push(line)
    }
    flush()
  }
  return sections
}
