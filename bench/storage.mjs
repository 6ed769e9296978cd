// Where an index's bytes go: every section of every file (crates/colbert-plaid/README.md,
// "Binary container"), summed over segments, per token and per document, plus container
// overhead (headers, section tables, 64-byte alignment, the CRC-32 block tables) and MANIFEST.
//   node bench/storage.mjs <index_dir> [--tokens N]   (--tokens: divide by N tokens, e.g. the
//                                                      unpooled count; default: the indexed tokens)
import fs from 'node:fs'
import path from 'node:path'

const [dir, flag, value] = process.argv.slice(2)
if (!dir) throw new Error('usage: storage.mjs <index_dir> [--tokens N]')
const manifestText = fs.readFileSync(path.join(dir, 'MANIFEST'), 'utf8')
const manifest = JSON.parse(manifestText.slice(manifestText.indexOf('\n') + 1))
const documents = manifest.live_docs
const tokens = flag === '--tokens' ? Number(value) : manifest.live_tokens
const SEGMENT = [
  'document token offsets (u64)',
  'id byte offsets (u64)',
  'ids (UTF-8)',
  'id hashes (u64, sorted)',
  'id hash → document (u32)',
  'centroid codes',
  'packed residuals',
  'IVF offsets (u64)',
  'IVF postings (u32)',
  'text byte offsets (u64)',
  'stored texts',
  'metadata byte offsets (u64)',
  'stored metadata',
  'inverse norms (f32)',
]
const CODEBOOK = ['centroids (f32)', 'bucket cutoffs (f32)', 'bucket weights (f32)']
const totals = new Map()
const add = (name, bytes) => totals.set(name, (totals.get(name) ?? 0) + bytes)
for (const name of fs.readdirSync(dir)) {
  const file = path.join(dir, name)
  const size = fs.statSync(file).size
  if (name === 'MANIFEST') {
    add('MANIFEST', size)
    continue
  }
  if (!name.endsWith('.plaid')) {
    add(`other: ${name}`, size)
    continue
  }
  const b = fs.readFileSync(file)
  const kind = b.readUInt32LE(12)
  const n = b.readUInt32LE(16)
  const labels = kind === 1 ? CODEBOOK : kind === 2 ? SEGMENT : ['tombstone bitmap']
  let sections = 0
  for (let i = 0; i < n; i++) {
    const len = Number(b.readBigUInt64LE(64 + 16 * i + 8))
    add(labels[i] ?? `section ${i}`, len)
    sections += len
  }
  add('container: header, section table, alignment, CRC-32 blocks', size - sections)
}
const all = [...totals.values()].reduce((a, b) => a + b, 0)
console.log(`${dir}: ${documents} documents, ${manifest.live_tokens} tokens stored, per-token figures over ${tokens} tokens, ${manifest.num_centroids} centroids, nbits ${manifest.options.nbits}\n`)
console.log('| what | bytes | B/token | B/document | share |')
console.log('|---|---:|---:|---:|---:|')
for (const [name, bytes] of [...totals].sort((a, b) => b[1] - a[1])) {
  if (bytes === 0) continue
  console.log(`| ${name} | ${bytes.toLocaleString('en')} | ${(bytes / tokens).toFixed(2)} | ${(bytes / documents).toFixed(1)} | ${((100 * bytes) / all).toFixed(1)} % |`)
}
console.log(`| **total** | ${all.toLocaleString('en')} | ${(all / tokens).toFixed(2)} | ${(all / documents).toFixed(1)} | 100 % |`)
