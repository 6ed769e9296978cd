// Shared test helpers: fixture paths, golden loading and float comparisons.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import test from 'ava'

import type { Embeddings } from '../index'

export const FIXTURES = path.join(__dirname, 'fixtures')
export const ROOT = path.join(__dirname, '..')
export const STANDIN = path.join(ROOT, 'models', 'minilm-colbert')
/** The shared retrieval collections (BEIR layout), beside the repository as in CI. */
export const DATA = process.env.COLBERT_DATA_DIR ?? path.join(ROOT, '..', 'shared', 'data')
/** Whether the shared collections are here (they are not on hosted CI runners). */
export const HAS_DATA = ['adi', 'medline'].every((c) => fs.existsSync(path.join(DATA, c, 'corpus.jsonl')))
if (!HAS_DATA) {
  console.log(`Skipping the tests that read the shared collections: ${DATA} is absent (set COLBERT_DATA_DIR to a folder holding adi/ and medline/ to run them).`)
}
/** `test` for tests that read the shared collections; `test.skip` where they are absent. */
export const dataTest = HAS_DATA ? test : test.skip
/** A promise of set-up that reads the shared collections: pending forever where they are absent (only skipped tests await it). */
export function withData<T>(make: () => Promise<T>): Promise<T> {
  return HAS_DATA ? make() : new Promise<T>(() => undefined)
}

export interface GoldenItem {
  input_ids: number[]
  attention_mask: number[]
  token_type_ids?: number[]
  row_offset: number
  rows: number
}

export interface GoldenCase {
  name: string
  is_query: boolean
  overrides: Record<string, boolean>
  embeddings_file: string
  items: GoldenItem[]
}

export interface Golden {
  dim: number
  texts: string[]
  cases: GoldenCase[]
  rows(c: GoldenCase, i: number): Float32Array
}

export function loadGolden(model: string): Golden {
  const dir = path.join(FIXTURES, model, 'golden')
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'))
  const texts: string[] = JSON.parse(fs.readFileSync(path.join(dir, manifest.texts_file ?? 'texts.json'), 'utf8'))
  const data = new Map<string, Float32Array>()
  for (const c of manifest.cases as GoldenCase[]) {
    const buf = fs.readFileSync(path.join(dir, c.embeddings_file))
    data.set(c.name, new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4))
  }
  const dim: number = manifest.dim
  return {
    dim,
    texts,
    cases: manifest.cases,
    rows(c, i) {
      const it = c.items[i]
      return data.get(c.name)!.subarray(it.row_offset * dim, (it.row_offset + it.rows) * dim)
    },
  }
}

/** Rows of item i of a batch. */
export function rowsOf(e: Embeddings, i: number): Float32Array {
  return e.data.subarray(e.offsets[i] * e.dim, e.offsets[i + 1] * e.dim)
}

/** Largest absolute difference and smallest per-row cosine between two row blocks. */
export function compareRows(dim: number, a: Float32Array, b: Float32Array): { maxAbs: number; minCos: number } {
  if (a.length !== b.length) throw new Error(`row blocks differ in size: ${a.length / dim} vs ${b.length / dim} rows`)
  let maxAbs = 0
  let minCos = 1
  for (let r = 0; r < a.length / dim; r++) {
    let dot = 0
    let na = 0
    let nb = 0
    for (let k = r * dim; k < (r + 1) * dim; k++) {
      maxAbs = Math.max(maxAbs, Math.abs(a[k] - b[k]))
      dot += a[k] * b[k]
      na += a[k] * a[k]
      nb += b[k] * b[k]
    }
    minCos = Math.min(minCos, dot / Math.sqrt(na * nb || 1))
  }
  return { maxAbs, minCos }
}

/** A fresh folder under the OS temp dir, removed when the test ends. */
export function tempDir(t: { teardown(fn: () => void): void }, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `colbert-${prefix}-`))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}
