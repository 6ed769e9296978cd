// Reads a dump written by dump-embeddings.mjs (or pool-dump.mjs): meta.json and the document and
// query embeddings as typed-array views of the files (little-endian f32 / u32).
import fs from 'node:fs'
import path from 'node:path'

/** `{ meta, docs, queries }`; `queries` is `undefined` for a dump without queries. */
export function readDump(dir) {
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'))
  const read = (name, Type) => {
    const b = fs.readFileSync(path.join(dir, name))
    return new Type(b.buffer, b.byteOffset, b.byteLength / Type.BYTES_PER_ELEMENT)
  }
  const embeddings = (prefix) => ({ dim: meta.dim, offsets: read(`${prefix}.offsets.u32`, Uint32Array), data: read(`${prefix}.f32`, Float32Array) })
  const queries = fs.existsSync(path.join(dir, 'queries.f32')) ? embeddings('queries') : undefined
  return { meta, docs: embeddings('docs'), queries }
}
