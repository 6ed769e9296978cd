// colbert/llamaindex against the real @llamaindex/core: addNodes, the retriever and the reranking
// node postprocessor end to end on the small committed corpus, inside a RetrieverQueryEngine with
// LlamaIndex's MockLLM, its retrieve events, and cancellation.
import fs from 'node:fs'
import path from 'node:path'

import test from 'ava'

import { Settings } from '@llamaindex/core/global'
import { MockLLM } from '@llamaindex/core/llms/mock'
import { RetrieverQueryEngine } from '@llamaindex/core/query-engine'
import { getResponseSynthesizer } from '@llamaindex/core/response-synthesizers'
import { TextNode, type NodeWithScore } from '@llamaindex/core/schema'

import { ColBERT, ColbertError, PlaidIndex } from '../index'
import { addNodes, ColbertReranker, ColbertRetriever } from '../src/integrations/llamaindex'
import { ROOT, STANDIN, tempDir } from './helpers'

interface CorpusDoc {
  id: string
  text: string
  metadata: Record<string, unknown>
}
const corpus: CorpusDoc[] = JSON.parse(fs.readFileSync(path.join(ROOT, '__test__', 'corpus', 'small.json'), 'utf8'))
const nodes = corpus.map((d) => new TextNode({ id_: d.id, text: d.text, metadata: d.metadata }))

const modelPromise = ColBERT.fromPretrained(STANDIN, { quantized: true })

async function buildIndex(t: { teardown(fn: () => void): void }): Promise<{ model: ColBERT; index: PlaidIndex }> {
  const model = await modelPromise
  const index = await PlaidIndex.create(path.join(tempDir(t, 'llamaindex'), 'index'), { nbits: 2 })
  t.teardown(() => void index.close())
  const result = await addNodes(index, model, nodes, { batchSize: 5 })
  if (result.added !== corpus.length) throw new Error(`added ${result.added}`)
  return { model, index }
}

test('addNodes + ColbertRetriever: NodeWithScore of TextNodes with id, text, metadata and the MaxSim score', async (t) => {
  const { model, index } = await buildIndex(t)
  const retriever = new ColbertRetriever({ model, index, similarityTopK: 3 })
  const hits = await retriever.retrieve({ query: 'why do cats purr?' })
  t.is(hits.length, 3)
  const [best] = hits
  t.true(best.node instanceof TextNode)
  t.is(best.node.id_, 'cats')
  t.is((best.node as TextNode).text, corpus[0].text)
  t.deepEqual(best.node.metadata, corpus[0].metadata)
  t.true(hits.every((h) => typeof h.score === 'number'))
  t.true(hits[0].score! >= hits[1].score! && hits[1].score! >= hits[2].score!)
  // A plain string query, the default similarityTopK (2), a filter.
  t.is((await retriever.retrieve('capital of France'))[0].node.id_, 'paris')
  t.is((await new ColbertRetriever({ model, index }).retrieve('capital of France')).length, 2)
  const fr = await new ColbertRetriever({ model, index, filter: { lang: 'fr' } }).retrieve('cats')
  t.deepEqual(
    fr.map((h) => h.node.id_),
    ['chats'],
  )
  // Upsert: the same id replaces the stored node.
  const replaced = await addNodes(index, model, [new TextNode({ id_: 'cats', text: 'Cats sleep most of the day.', metadata: { lang: 'en' } })])
  t.is(replaced.replaced, 1)
  t.deepEqual(await index.documents(['cats']), [{ text: 'Cats sleep most of the day.', metadata: { lang: 'en' } }])
})

test.serial('retrieve dispatches LlamaIndex retrieve-start and retrieve-end events', async (t) => {
  const { model, index } = await buildIndex(t)
  const retriever = new ColbertRetriever({ model, index, similarityTopK: 1 })
  const events: string[] = []
  const query = 'how does bread rise?'
  // Settings.callbackManager is global: keep this query's events only.
  const onStart = (e: { detail: { query: { query: unknown } } }) => {
    if (e.detail.query.query === query) events.push(`start:${query}`)
  }
  const onEnd = (e: { detail: { query: { query: unknown }; nodes: NodeWithScore[] } }) => {
    if (e.detail.query.query === query) events.push(`end:${e.detail.nodes.map((n) => n.node.id_).join(',')}`)
  }
  Settings.callbackManager.on('retrieve-start', onStart)
  Settings.callbackManager.on('retrieve-end', onEnd)
  try {
    await retriever.retrieve(query)
  } finally {
    Settings.callbackManager.off('retrieve-start', onStart)
    Settings.callbackManager.off('retrieve-end', onEnd)
  }
  t.deepEqual(events, ['start:how does bread rise?', 'end:bread'])
})

test('ColbertReranker: a node postprocessor reordering by MaxSim, keeping topN', async (t) => {
  const model = await modelPromise
  const candidates: NodeWithScore[] = [nodes[6], nodes[1], nodes[4], nodes[3]].map((node) => ({ node, score: 0.5 }))
  const reranker = new ColbertReranker({ model, topN: 2 })
  const out = await reranker.postprocessNodes(candidates, 'what makes a volcano erupt?')
  t.is(out.length, 2)
  t.is(out[0].node, nodes[1], 'the node itself, not a copy')
  t.true(out[0].score! > out[1].score!)
  t.true(candidates.every((c) => c.score === 0.5), 'the input is not changed')
  t.is((await new ColbertReranker({ model }).postprocessNodes(candidates, 'volcano')).length, 4)
  t.deepEqual(await reranker.postprocessNodes([], 'anything'), [])
  const e = await t.throwsAsync(reranker.postprocessNodes(candidates), { instanceOf: ColbertError })
  t.is(e?.code, 'INVALID_ARGUMENT')
  t.regex(e?.message ?? '', /query is missing/)
})

test('retriever and reranker in a RetrieverQueryEngine with MockLLM', async (t) => {
  const { model, index } = await buildIndex(t)
  const engine = new RetrieverQueryEngine(
    new ColbertRetriever({ model, index, similarityTopK: 5 }),
    getResponseSynthesizer('compact', { llm: new MockLLM({ responseMessage: 'The king moves two squares.', timeBetweenToken: 0 }) }),
    [new ColbertReranker({ model, topN: 1 })],
  )
  const response = await engine.query({ query: 'castling the king in chess' })
  t.is(response.message.content, 'The king moves two squares.')
  t.deepEqual(
    response.sourceNodes?.map((n) => n.node.id_),
    ['chess'],
  )
})

test('cancellation: the retriever’s and the reranker’s signal abort with ABORTED', async (t) => {
  const { model, index } = await buildIndex(t)
  const retriever = new ColbertRetriever({ model, index, signal: AbortSignal.abort() })
  const e1 = await t.throwsAsync(retriever.retrieve('cats'), { instanceOf: ColbertError })
  t.is(e1?.code, 'ABORTED')
  const controller = new AbortController()
  const reranker = new ColbertReranker({ model, signal: controller.signal })
  const pending = reranker.postprocessNodes(
    nodes.map((node) => ({ node })),
    'cats',
  )
  controller.abort()
  const e2 = await t.throwsAsync(pending, { instanceOf: ColbertError })
  t.is(e2?.code, 'ABORTED')
})

test('mistakes are INVALID_ARGUMENT', async (t) => {
  const { model, index } = await buildIndex(t)
  const bad = (f: () => unknown, re: RegExp) => {
    const e = t.throws(f, { instanceOf: ColbertError })
    t.is(e?.code, 'INVALID_ARGUMENT')
    t.regex(e?.message ?? '', re)
  }
  bad(() => new ColbertRetriever({ model, index, k: 3 } as never), /unknown ColbertRetriever option "k"/)
  bad(() => new ColbertRetriever({ model: {} as ColBERT, index }), /needs a model/)
  bad(() => new ColbertRetriever({ model, index, similarityTopK: 0 }), /similarityTopK/)
  bad(() => new ColbertReranker({ model, topN: -1 }), /topN/)
  const e = await t.throwsAsync(addNodes(index, model, [new TextNode({ id_: 'x', text: 'x', metadata: { bad: Infinity } })]), { instanceOf: ColbertError })
  t.is(e?.code, 'INVALID_ARGUMENT')
  t.is(index.info.documents, corpus.length)
})
