// colbert/langchain against the real @langchain/core: the retriever, the reranking compressor and
// addDocuments end to end on a small committed corpus (__test__/corpus/small.json), the retriever
// inside a RunnableSequence with @langchain/core's fake chat model, callbacks and cancellation.
import fs from 'node:fs'
import path from 'node:path'

import test from 'ava'

import { BaseCallbackHandler } from '@langchain/core/callbacks/base'
import { Document, type DocumentInterface } from '@langchain/core/documents'
import { StringOutputParser } from '@langchain/core/output_parsers'
import { ChatPromptTemplate } from '@langchain/core/prompts'
import { BaseDocumentCompressor } from '@langchain/core/retrievers/document_compressors'
import { RunnableLambda, RunnablePassthrough, RunnableSequence } from '@langchain/core/runnables'
import { FakeChatModel } from '@langchain/core/utils/testing'

import { ColBERT, ColbertError, PlaidIndex } from '../index'
import { addDocuments, ColbertReranker, ColbertRetriever } from '../src/integrations/langchain'
import { ROOT, STANDIN, tempDir } from './helpers'

interface CorpusDoc {
  id: string
  text: string
  metadata: Record<string, unknown>
}
const corpus: CorpusDoc[] = JSON.parse(fs.readFileSync(path.join(ROOT, '__test__', 'corpus', 'small.json'), 'utf8'))
const documents = corpus.map((d) => new Document({ pageContent: d.text, metadata: d.metadata, id: d.id }))

const modelPromise = ColBERT.fromPretrained(STANDIN, { quantized: true })

async function buildIndex(t: { teardown(fn: () => void): void }): Promise<{ model: ColBERT; index: PlaidIndex }> {
  const model = await modelPromise
  const index = await PlaidIndex.create(path.join(tempDir(t, 'langchain'), 'index'), { nbits: 2 })
  t.teardown(() => void index.close())
  const result = await addDocuments(index, model, documents, { batchSize: 3 })
  if (result.added !== corpus.length) throw new Error(`added ${result.added}`)
  return { model, index }
}

test('addDocuments + ColbertRetriever: Documents with pageContent, metadata, id and score, best first', async (t) => {
  const { model, index } = await buildIndex(t)
  t.is(index.info.documents, corpus.length)
  const retriever = new ColbertRetriever({ model, index, k: 3 })
  const docs = await retriever.invoke('why do cats purr?')
  t.is(docs.length, 3)
  t.is(docs[0].id, 'cats')
  t.is(docs[0].pageContent, corpus[0].text)
  t.like(docs[0].metadata, { topic: 'animals', lang: 'en', year: 2021 })
  t.true(docs.every((d) => typeof d.metadata.score === 'number'))
  t.true(docs[0].metadata.score >= docs[1].metadata.score && docs[1].metadata.score >= docs[2].metadata.score)

  // The default k is 4, as LangChain's retrievers; filter and knobs reach the search.
  const filtered = new ColbertRetriever({ model, index, filter: { lang: 'fr' }, scoreKey: 'maxsim', searchOptions: { nProbe: 4 } })
  const fr = await filtered.invoke('why do cats purr?')
  t.deepEqual(
    fr.map((d) => d.id),
    ['chats'],
  )
  t.is(typeof fr[0].metadata.maxsim, 'number')
  t.is(fr[0].metadata.score, undefined)
  t.is((await new ColbertRetriever({ model, index }).invoke('capital of France')).length, 4)
})

test('addDocuments upserts: the same ids replace the stored documents; ids come from options or document.id', async (t) => {
  const { model, index } = await buildIndex(t)
  const result = await addDocuments(index, model, [new Document({ pageContent: 'Cats sleep for most of the day.', metadata: { topic: 'animals', lang: 'en', year: 2025 }, id: 'cats' })])
  t.is(result.replaced, 1)
  t.is(index.info.documents, corpus.length)
  t.deepEqual(await index.documents(['cats']), [{ text: 'Cats sleep for most of the day.', metadata: { topic: 'animals', lang: 'en', year: 2025 } }])
  await addDocuments(index, model, [new Document({ pageContent: 'Dogs bark at strangers.', metadata: {} })], { ids: ['dogs'] })
  const [hit] = await new ColbertRetriever({ model, index, k: 1 }).invoke('which animal barks?')
  t.is(hit.id, 'dogs')

  const bad = async (f: () => Promise<unknown>, re: RegExp) => {
    const e = await t.throwsAsync(f, { instanceOf: ColbertError })
    t.is(e?.code, 'INVALID_ARGUMENT')
    t.regex(e?.message ?? '', re)
  }
  await bad(() => addDocuments(index, model, [new Document({ pageContent: 'no id' })]), /has no id/)
  await bad(() => addDocuments(index, model, [new Document({ pageContent: 'x', metadata: { n: Number.NaN }, id: 'x' })]), /NaN/)
  await bad(() => addDocuments(index, model, documents, { ids: ['a'] }), /one id per document/)
  await bad(() => addDocuments(index, model, documents, { replace: false } as object), /unknown addDocuments option "replace"/)
  t.is(index.info.documents, corpus.length + 1, 'failed calls change nothing')
})

test('the retriever as a step of a RunnableSequence with a fake chat model (RAG)', async (t) => {
  const { model, index } = await buildIndex(t)
  const retriever = new ColbertRetriever({ model, index, k: 2 })
  const prompt = ChatPromptTemplate.fromMessages([
    ['system', 'Answer from this context only:\n{context}'],
    ['human', '{question}'],
  ])
  const formatDocs = (docs: DocumentInterface[]) => docs.map((d) => `[${d.id}] ${d.pageContent}`).join('\n')
  const chain = RunnableSequence.from([
    { context: retriever.pipe(formatDocs), question: new RunnablePassthrough() },
    prompt,
    new FakeChatModel({}), // echoes the messages it is given
    new StringOutputParser(),
  ])
  const answer = await chain.invoke('Where does the river Seine flow?')
  t.regex(answer, /Answer from this context only/)
  t.regex(answer, /\[paris\] Paris is the capital of France/)
  t.regex(answer, /Where does the river Seine flow\?/)
})

test('LangChain callbacks see the retriever run and its documents', async (t) => {
  const { model, index } = await buildIndex(t)
  const events: string[] = []
  let ended: DocumentInterface[] = []
  const handler = BaseCallbackHandler.fromMethods({
    handleRetrieverStart(_retriever, query) {
      events.push(`start:${query}`)
    },
    handleRetrieverEnd(docs) {
      events.push('end')
      ended = docs
    },
  })
  const retriever = new ColbertRetriever({ model, index, k: 1, callbacks: [handler], tags: ['colbert'] })
  const docs = await retriever.invoke('how does bread rise?')
  t.deepEqual(events, ['start:how does bread rise?', 'end'])
  t.deepEqual(
    ended.map((d) => d.id),
    docs.map((d) => d.id),
  )
  t.is(docs[0].id, 'bread')
})

test('cancellation: the invoke signal, a timeout and an enclosing runnable’s signal abort the search', async (t) => {
  const { model, index } = await buildIndex(t)
  const retriever = new ColbertRetriever({ model, index })
  const aborted = await t.throwsAsync(retriever.invoke('cats', { signal: AbortSignal.abort() }), { instanceOf: ColbertError })
  t.is(aborted?.code, 'ABORTED')

  // Aborted while running (when the retriever starts): our encode/search sees the signal.
  const errors: unknown[] = []
  const controller = new AbortController()
  const handler = BaseCallbackHandler.fromMethods({
    handleRetrieverStart() {
      controller.abort()
    },
    handleRetrieverError(e) {
      errors.push(e)
    },
  })
  const chain = RunnableSequence.from([new RunnablePassthrough(), retriever, (docs: DocumentInterface[]) => docs.length])
  // LangChain rejects the sequence at once with the signal's reason.
  const reason = await t.throwsAsync(chain.invoke('cats', { signal: controller.signal, callbacks: [handler] }), { any: true })
  t.is((reason as Error).name, 'AbortError')
  await new Promise((r) => setTimeout(r, 200))
  t.is(errors.length, 1)
  t.true(errors[0] instanceof ColbertError && errors[0].code === 'ABORTED', String(errors[0]))

  // LangChain's `timeout` becomes a signal.
  let timedOut: unknown
  await t.throwsAsync(
    RunnableLambda.from(async (q: string) => {
      await new Promise((r) => setTimeout(r, 50))
      return retriever.invoke(q).catch((e: unknown) => {
        timedOut = e
        throw e
      })
    }).invoke('cats', { timeout: 10 }),
    { any: true },
  )
  await new Promise((r) => setTimeout(r, 200))
  t.true(timedOut instanceof ColbertError && timedOut.code === 'ABORTED', String(timedOut))
  // A finished call is unaffected.
  t.is((await retriever.invoke('cats', { timeout: 60_000 })).length, 4)
})

test('ColbertReranker: a BaseDocumentCompressor reordering candidates by MaxSim, keeping topN', async (t) => {
  const model = await modelPromise
  const reranker = new ColbertReranker({ model, topN: 2 })
  t.true(reranker instanceof BaseDocumentCompressor)
  t.true(BaseDocumentCompressor.isBaseDocumentCompressor(reranker))
  const candidates = [documents[6], documents[1], documents[4], documents[3]] // chess, volcano, paris, bread
  const out = await reranker.compressDocuments(candidates, 'what makes a volcano erupt?')
  t.is(out.length, 2)
  t.is(out[0].id, 'volcano')
  t.is(out[0].pageContent, documents[1].pageContent)
  t.like(out[0].metadata, { topic: 'geology' })
  t.true(out[0].metadata.relevanceScore >= out[1].metadata.relevanceScore)
  t.is(candidates[1].metadata.relevanceScore, undefined, 'the input documents are not modified')
  t.deepEqual(await reranker.compressDocuments([], 'anything'), [])
  const all = await new ColbertReranker({ model }).compressDocuments(candidates, 'what makes a volcano erupt?')
  t.is(all.length, candidates.length)
  const e = t.throws(() => new ColbertReranker({ model, top: 2 } as never), { instanceOf: ColbertError })
  t.is(e?.code, 'INVALID_ARGUMENT')
})

test('retrieve then rerank, as ContextualCompressionRetriever composes them; the enclosing signal reaches the reranker', async (t) => {
  const { model, index } = await buildIndex(t)
  const retriever = new ColbertRetriever({ model, index, k: 6 })
  const reranker = new ColbertReranker({ model, topN: 1 })
  const compressed = RunnableLambda.from(async (query: string) => reranker.compressDocuments(await retriever.invoke(query), query))
  const [best] = await compressed.invoke('castling the king in chess')
  t.is(best.id, 'chess')
  t.is(typeof best.metadata.score, 'number')
  t.is(typeof best.metadata.relevanceScore, 'number')

  // The reranker reads the signal of the runnable it runs in (compressDocuments takes none).
  const controller = new AbortController()
  let inner: unknown
  let settled!: () => void
  const done = new Promise<void>((resolve) => (settled = resolve))
  const lambda = RunnableLambda.from(async (query: string) => {
    controller.abort()
    try {
      return await reranker.compressDocuments(documents, query)
    } catch (e) {
      inner = e
      throw e
    } finally {
      settled()
    }
  })
  await t.throwsAsync(lambda.invoke('chess', { signal: controller.signal }), { any: true })
  await done
  t.true(inner instanceof ColbertError && inner.code === 'ABORTED', String(inner))
})

test('constructor mistakes are INVALID_ARGUMENT', async (t) => {
  const { model, index } = await buildIndex(t)
  const bad = (f: () => unknown, re: RegExp) => {
    const e = t.throws(f, { instanceOf: ColbertError })
    t.is(e?.code, 'INVALID_ARGUMENT')
    t.regex(e?.message ?? '', re)
  }
  bad(() => new ColbertRetriever({ model: {} as ColBERT, index }), /needs a model/)
  bad(() => new ColbertRetriever({ model, index: {} as PlaidIndex }), /needs an index/)
  bad(() => new ColbertRetriever({ model, index, k: 0 }), /k must be a positive integer/)
  bad(() => new ColbertRetriever({ model, index, searchOptions: { withDocuments: false } as never }), /unknown searchOptions key "withDocuments"/)
  bad(() => new ColbertRetriever({ model, index, scoreKey: '' }), /scoreKey/)
})
