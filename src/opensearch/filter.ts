// Metadata filters on a cluster: the local engine's MongoDB-style filter (crates/colbert-plaid
// src/filter.rs) as an OpenSearch query with the same matches.
//
// Documents are not dynamically mapped (which would fail a bulk item when one field is a number
// in one document and a string in another): each document's metadata is indexed by us into one
// keyword field, `colbert_kv`, one term per fact, typed and path-qualified:
//
//   e␀path          the path exists (any value, null and objects included)
//   s␀path␀value    a string at path (or in the array at path)
//   n␀path␀key      a number, as a key whose byte order is numeric order (sortableNumber)
//   b␀path␀true     a boolean
//   z␀path          null at path (or in the array at path)
//
// Paths are reached through objects only, as the local lookup does (an array is a leaf: its
// scalar elements are indexed, objects inside it are not). Every operator then has an exact
// translation — terms for equality, ranges over the typed prefix for $gt…$lte (UTF-8 byte order
// is code-point order, as the local string comparison) — except equality with an array or an
// object value (whole-value equality), which translates to a superset; the index then re-checks
// the candidates with the local matcher (`metadataMatches`), so results are exact either way.

import { invalidArgument } from '../errors'
import { isPlainObject } from '../plaid_index'

/** An OpenSearch query clause (the JSON of the query DSL). */
export type Query = Record<string, unknown>

/** The field holding the typed metadata terms. */
export const KV_FIELD = 'colbert_kv'
const SEP = '\u0000'
/** The code unit after SEP: the end of every key range under a prefix. */
const AFTER = '\u0001'

/** A number as a fixed-width key whose string order is the numbers' order (−0 is 0). */
export function sortableNumber(x: number): string {
  const buf = new DataView(new ArrayBuffer(8))
  buf.setFloat64(0, x === 0 ? 0 : x)
  let hi = buf.getUint32(0)
  let lo = buf.getUint32(4)
  if (hi & 0x80000000) {
    hi = ~hi >>> 0
    lo = ~lo >>> 0
  } else {
    hi = (hi | 0x80000000) >>> 0
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0')
}

function scalarTerm(path: string, v: unknown): string | undefined {
  if (typeof v === 'string') return `s${SEP}${path}${SEP}${v}`
  if (typeof v === 'number') return `n${SEP}${path}${SEP}${sortableNumber(v)}`
  if (typeof v === 'boolean') return `b${SEP}${path}${SEP}${v}`
  if (v === null) return `z${SEP}${path}`
  return undefined
}

/** The `colbert_kv` terms of one document's metadata. */
export function metadataTerms(metadata: Record<string, unknown> | undefined): string[] {
  const out = new Set<string>()
  const walk = (obj: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(obj)) {
      const path = prefix ? `${prefix}.${k}` : k
      out.add(`e${SEP}${path}`)
      if (Array.isArray(v)) {
        for (const x of v) {
          const t = scalarTerm(path, x)
          if (t !== undefined) out.add(t)
        }
      } else if (v !== null && typeof v === 'object') {
        walk(v as Record<string, unknown>, path)
      } else {
        const t = scalarTerm(path, v)
        if (t !== undefined) out.add(t)
      }
    }
  }
  if (metadata) walk(metadata, '')
  return [...out]
}

const MATCH_ALL: Query = { match_all: {} }
const MATCH_NONE: Query = { match_none: {} }
const term = (value: string): Query => ({ term: { [KV_FIELD]: value } })
const not = (q: Query): Query => ({ bool: { must_not: [q] } })
const all = (qs: Query[]): Query => (qs.length === 1 ? qs[0] : { bool: { filter: qs } })
const any = (qs: Query[]): Query => (qs.length === 1 ? qs[0] : { bool: { should: qs, minimum_should_match: 1 } })

/** A translation: `superset` matches every document the filter matches, `subset` only such documents. */
interface Bounds {
  superset: Query
  subset: Query
  /** `superset` and `subset` match the same documents (no re-check needed). */
  exact: boolean
}

const exactly = (q: Query): Bounds => ({ superset: q, subset: q, exact: true })

function equals(path: string, v: unknown): Bounds {
  const t = scalarTerm(path, v)
  if (v === null) return exactly(any([not(term(`e${SEP}${path}`)), term(`z${SEP}${path}`)]))
  if (t !== undefined) return exactly(term(t))
  // An array or an object: whole-value equality, or an array field holding it as an element.
  return { superset: term(`e${SEP}${path}`), subset: MATCH_NONE, exact: false }
}

function compare(path: string, op: string, v: unknown): Bounds {
  const kind = typeof v === 'number' ? 'n' : 's'
  const key = typeof v === 'number' ? sortableNumber(v) : (v as string)
  const lo = `${kind}${SEP}${path}${SEP}`
  const hi = `${kind}${SEP}${path}${AFTER}`
  const at = lo + key
  const range =
    op === '$gt' ? { gt: at, lt: hi } : op === '$gte' ? { gte: at, lt: hi } : op === '$lt' ? { gte: lo, lt: at } : { gte: lo, lte: at }
  return exactly({ range: { [KV_FIELD]: range } })
}

const negate = (b: Bounds): Bounds => ({ superset: not(b.subset), subset: not(b.superset), exact: b.exact })
const conj = (bs: Bounds[]): Bounds => ({
  superset: all(bs.map((b) => b.superset)),
  subset: all(bs.map((b) => b.subset)),
  exact: bs.every((b) => b.exact),
})
const disj = (bs: Bounds[]): Bounds => ({
  superset: any(bs.map((b) => b.superset)),
  subset: any(bs.map((b) => b.subset)),
  exact: bs.every((b) => b.exact),
})

function field(path: string, v: unknown): Bounds {
  const ops = isPlainObject(v) && Object.keys(v).length > 0 && Object.keys(v).every((k) => k.startsWith('$')) ? v : undefined
  if (!ops) return equals(path, v)
  const parts = Object.entries(ops).map(([op, arg]): Bounds => {
    switch (op) {
      case '$eq':
        return equals(path, arg)
      case '$ne':
        return negate(equals(path, arg))
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte':
        return compare(path, op, arg)
      case '$in':
        return (arg as unknown[]).length === 0 ? exactly(MATCH_NONE) : disj((arg as unknown[]).map((x) => equals(path, x)))
      case '$nin':
        return (arg as unknown[]).length === 0 ? exactly(MATCH_ALL) : negate(disj((arg as unknown[]).map((x) => equals(path, x))))
      case '$exists':
        return arg ? exactly(term(`e${SEP}${path}`)) : exactly(not(term(`e${SEP}${path}`)))
      default:
        throw invalidArgument(`filter: unknown operator ${op}`)
    }
  })
  return parts.length === 1 ? parts[0] : conj(parts)
}

function object(f: Record<string, unknown>): Bounds {
  const parts = Object.entries(f).map(([k, v]): Bounds => {
    if (k === '$and') return conj((v as Record<string, unknown>[]).map(object))
    if (k === '$or') return disj((v as Record<string, unknown>[]).map(object))
    if (k === '$not') return negate(object(v as Record<string, unknown>))
    return field(k, v)
  })
  return parts.length === 1 ? parts[0] : conj(parts)
}

/**
 * The OpenSearch query for a filter the native parser has already accepted (so its shape is
 * valid), and whether candidates must be re-checked with the local matcher.
 */
export function translateFilter(filter: Record<string, unknown>): { query: Query; recheck: boolean } {
  const b = object(filter)
  return { query: b.superset, recheck: !b.exact }
}
