// Parity with PyLate: token ids, masks and embeddings of the golden fixtures made by
// tools/make_fixtures.py with PyLate itself (CPU, fp32).
import path from 'node:path'

import test from 'ava'

import { ColBERT } from '../index'
import { compareRows, FIXTURES, loadGolden, rowsOf, STANDIN, type GoldenCase } from './helpers'

const MODELS = ['tiny-modernbert', 'tiny-bert']

function overridesOf(c: GoldenCase) {
  return {
    doQueryExpansion: c.overrides.do_query_expansion,
    attendToExpansionTokens: c.overrides.attend_to_expansion_tokens,
  }
}

for (const name of MODELS) {
  const dir = path.join(FIXTURES, name)
  const golden = loadGolden(name)

  for (const c of golden.cases) {
    test(`${name} / ${c.name}: token ids and masks equal PyLate's exactly`, async (t) => {
      const model = await ColBERT.fromPretrained(dir, { ...overridesOf(c), quantized: false })
      golden.texts.forEach((text, i) => {
        const tok = model.tokenize(text, { isQuery: c.is_query })
        const want = c.items[i]
        t.deepEqual(tok.inputIds, want.input_ids, `input_ids of text ${i} ${JSON.stringify(text.slice(0, 30))}`)
        t.deepEqual(tok.attentionMask, want.attention_mask, `attention_mask of text ${i}`)
        if (want.token_type_ids) t.deepEqual(tok.tokenTypeIds, want.token_type_ids, `token_type_ids of text ${i}`)
      })
    })

    test(`${name} / ${c.name}: embeddings equal PyLate's (max |Δ| ≤ 1e-4, cosine ≥ 0.9999)`, async (t) => {
      const model = await ColBERT.fromPretrained(dir, { ...overridesOf(c), quantized: false })
      t.is(model.config.dim, golden.dim)
      // One call with mixed lengths in each batch: the output must not depend on batch composition.
      const out = await model.encode(golden.texts, { isQuery: c.is_query, batchSize: 7 })
      t.is(out.offsets.length, golden.texts.length + 1)
      let worstAbs = 0
      let worstCos = 1
      golden.texts.forEach((_, i) => {
        const want = golden.rows(c, i)
        const got = rowsOf(out, i)
        t.is(got.length / golden.dim, c.items[i].rows, `row count of text ${i}`)
        const { maxAbs, minCos } = compareRows(golden.dim, got, want)
        worstAbs = Math.max(worstAbs, maxAbs)
        worstCos = Math.min(worstCos, minCos)
      })
      t.log(`max |Δ| ${worstAbs.toExponential(2)}, min cosine ${worstCos.toFixed(7)}`)
      t.true(worstAbs <= 1e-4, `max |Δ| ${worstAbs}`)
      t.true(worstCos >= 0.9999, `min cosine ${worstCos}`)
    })
  }

  test(`${name}: a batch equals single encodes within 1e-5`, async (t) => {
    const model = await ColBERT.fromPretrained(dir, { quantized: false })
    for (const isQuery of [true, false]) {
      const batch = await model.encode(golden.texts, { isQuery, batchSize: 32 })
      for (let i = 0; i < golden.texts.length; i++) {
        const single = await model.encode([golden.texts[i]], { isQuery })
        const { maxAbs } = compareRows(golden.dim, rowsOf(batch, i), rowsOf(single, 0))
        t.true(maxAbs <= 1e-5, `text ${i} (${isQuery ? 'query' : 'document'}): |Δ| ${maxAbs}`)
      }
    }
  })

  test(`${name}: int8 embeddings do not depend on their batch (batch equals single encodes within 1e-5)`, async (t) => {
    // Dynamic quantisation computes activation scales per inference: int8 models run one
    // sequence per inference, so what a text is batched with cannot change its embeddings.
    const model = await ColBERT.fromPretrained(dir, { quantized: true })
    let worst = 0
    for (const isQuery of [true, false]) {
      const batch = await model.encode(golden.texts, { isQuery, batchSize: 32 })
      for (let i = 0; i < golden.texts.length; i++) {
        const single = await model.encode([golden.texts[i]], { isQuery })
        const { maxAbs } = compareRows(golden.dim, rowsOf(batch, i), rowsOf(single, 0))
        worst = Math.max(worst, maxAbs)
        t.true(maxAbs <= 1e-5, `text ${i} (${isQuery ? 'query' : 'document'}): |Δ| ${maxAbs}`)
      }
    }
    t.log(`max |Δ| batched vs single: ${worst.toExponential(2)}`)
  })

  test(`${name}: int8 embeddings keep a mean token cosine ≥ 0.99 to PyLate's fp32`, async (t) => {
    const model = await ColBERT.fromPretrained(dir, { quantized: true })
    t.true(model.onnxPath.endsWith('model_int8.onnx'))
    for (const c of golden.cases.filter((c) => c.name === 'query' || c.name === 'document')) {
      const out = await model.encode(golden.texts, { isQuery: c.is_query })
      const cosines: number[] = []
      golden.texts.forEach((_, i) => {
        const got = rowsOf(out, i)
        const want = golden.rows(c, i)
        t.is(got.length, want.length, `row count of text ${i}`)
        for (let r = 0; r < got.length / golden.dim; r++) {
          const span = [r * golden.dim, (r + 1) * golden.dim] as const
          cosines.push(compareRows(golden.dim, got.subarray(...span), want.subarray(...span)).minCos)
        }
      })
      const mean = cosines.reduce((a, b) => a + b, 0) / cosines.length
      // Dynamic int8 quantization of random tiny weights leaves a few outlier rows; the mean is
      // the fidelity measure (per-row minimum is logged).
      t.log(`${c.name}: mean cosine ${mean.toFixed(4)}, min ${Math.min(...cosines).toFixed(4)} over ${cosines.length} rows`)
      t.true(mean >= 0.99, `${c.name}: mean cosine ${mean}`)
    }
  })

  test(`${name}: every row is unit length and queries have queryLength rows`, async (t) => {
    const model = await ColBERT.fromPretrained(dir)
    const q = await model.encode(golden.texts, { isQuery: true })
    for (let i = 0; i < golden.texts.length; i++) t.is(q.offsets[i + 1] - q.offsets[i], model.config.queryLength)
    for (let r = 0; r < q.data.length / q.dim; r++) {
      let n = 0
      for (let k = 0; k < q.dim; k++) n += q.data[r * q.dim + k] ** 2
      t.true(Math.abs(Math.sqrt(n) - 1) < 1e-5)
    }
  })
}

test('config comes from the folder and options override it', async (t) => {
  const dir = path.join(FIXTURES, 'tiny-modernbert')
  const base = await ColBERT.fromPretrained(dir)
  t.is(base.config.queryPrefix, '[Q] ')
  t.is(base.config.documentPrefix, '[D] ')
  t.true(base.config.doQueryExpansion)
  t.false(base.config.attendToExpansionTokens)
  const custom = await ColBERT.fromPretrained(dir, { queryLength: 16, documentLength: 40, doQueryExpansion: false })
  t.is(custom.config.queryLength, 16)
  t.is(custom.config.documentLength, 40)
  t.false(custom.config.doQueryExpansion)
  const long = 'word '.repeat(200)
  const d = await custom.encode([long], { isQuery: false })
  t.true(d.offsets[1] <= 40)
  const q = await custom.encode(['short query'], { isQuery: true })
  t.true(q.offsets[1] < 16, 'no expansion: only real tokens')
})

test('a pylate-onnx-export folder (onnx_config.json) loads and encodes like the PyLate folder', async (t) => {
  const exported = await ColBERT.fromPretrained(path.join(FIXTURES, 'tiny-modernbert-onnx-export'))
  const pylate = await ColBERT.fromPretrained(path.join(FIXTURES, 'tiny-modernbert'), { doQueryExpansion: false, quantized: false })
  t.false(exported.config.doQueryExpansion, 'pylate-onnx-export writes do_query_expansion=false')
  t.is(exported.config.dim, pylate.config.dim)
  t.is(exported.config.maskTokenId, pylate.config.maskTokenId)
  const texts = ['Paris is the capital of France.', 'a, b. (c)!', '']
  for (const isQuery of [true, false]) {
    const a = await exported.encode(texts, { isQuery })
    const b = await pylate.encode(texts, { isQuery })
    t.deepEqual(Array.from(a.offsets), Array.from(b.offsets))
    t.true(compareRows(a.dim, a.data, b.data).maxAbs < 1e-5)
  }
})

test('the bundled stand-in says what it is: no query expansion (it was never trained with it)', async (t) => {
  const model = await ColBERT.fromPretrained(STANDIN, { quantized: true })
  t.false(model.config.doQueryExpansion)
  const q = await model.encode(['what is late interaction?'], { isQuery: true })
  t.true(q.offsets[1] < model.config.queryLength, 'queries keep only their real tokens')
})
