// The licence notices of the Rust crates compiled into the addon for one target: every package
// reached from colbert-node through normal (not dev- or build-) dependencies, proc-macros left
// out (they run in the compiler, nothing of them is in the binary), our own crates left out.
// Each entry names the crate, its version, its licence expression and source, followed by the
// licence and notice files the crate ships. Reads `cargo metadata` only (no network once the
// crates are downloaded, which building the addon already did).
//
//   node scripts/rust-notices.mjs [<rust triple>] > notices.txt
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** Files a crate ships that carry its licence terms or notices. */
const LICENCE_FILE = /^(licen[cs]e|copying|notice|copyright)([-_.].*)?$/i

export function rustNotices(triple) {
  const meta = JSON.parse(
    execFileSync(
      'cargo',
      ['metadata', '--format-version', '1', '--locked', '--manifest-path', path.join(root, 'crates', 'colbert-node', 'Cargo.toml'), '--filter-platform', triple],
      { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 },
    ),
  )
  const byId = new Map(meta.packages.map((p) => [p.id, p]))
  const nodes = new Map(meta.resolve.nodes.map((n) => [n.id, n]))
  const members = new Set(meta.workspace_members)
  const start = meta.packages.find((p) => p.name === 'colbert-node')
  const seen = new Set()
  const queue = [start.id]
  while (queue.length) {
    const id = queue.pop()
    if (seen.has(id)) continue
    seen.add(id)
    // A proc-macro runs in the compiler: neither it nor what only it uses ends up in the binary.
    if (byId.get(id).targets.every((t) => t.kind.includes('proc-macro'))) continue
    for (const dep of nodes.get(id)?.deps ?? []) {
      if (dep.dep_kinds.some((k) => k.kind === null)) queue.push(dep.pkg)
    }
  }
  const crates = [...seen]
    .map((id) => byId.get(id))
    .filter((p) => !members.has(p.id) && !p.targets.every((t) => t.kind.includes('proc-macro')))
    .sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version))
  // Many crates ship the same licence text: print each distinct text once, numbered.
  const texts = new Map()
  const entries = crates.map((p) => {
    const dir = path.dirname(p.manifest_path)
    const files = fs.readdirSync(dir).filter((n) => LICENCE_FILE.test(n) && fs.statSync(path.join(dir, n)).isFile()).sort()
    const refs = files.map((f) => {
      const text = fs.readFileSync(path.join(dir, f), 'utf8').trim()
      if (!texts.has(text)) texts.set(text, texts.size + 1)
      return `${f}: text ${texts.get(text)}`
    })
    return [
      `${p.name} ${p.version} — ${p.license ?? (p.license_file ? `see ${p.license_file}` : 'licence not stated')}`,
      `  source: ${p.repository ?? `https://crates.io/crates/${p.name}`}`,
      `  ${refs.length ? refs.join('; ') : 'ships no licence file: its licence expression above applies, in the standard text of that licence'}`,
    ].join('\n')
  })
  return [
    `The addon (colbert.<platform>.node) for ${triple} contains these ${crates.length} Rust crates besides colbert's own,\n` +
      'each listed with its licence expression, its source and the licence and notice files it ships (the texts follow, each once).',
    entries.join('\n'),
    ...[...texts].map(([text, n]) => `${'='.repeat(78)}\ntext ${n}\n${'='.repeat(78)}\n${text}`),
  ].join('\n\n') + '\n'
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const triple = process.argv[2] ?? execFileSync('rustc', ['-vV'], { encoding: 'utf8' }).match(/^host: (\S+)$/m)[1]
  process.stdout.write(rustNotices(triple))
}
