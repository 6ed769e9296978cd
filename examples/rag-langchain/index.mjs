// Retrieval-augmented generation with LangChain over this repository's documentation:
// the Markdown is split into sections, encoded and stored in a PLAID index (addDocuments), and a
// RunnableSequence retrieves the best sections for a question (ColbertRetriever), reranks them
// (ColbertReranker), puts them in a prompt and asks a chat model. The chat model here is
// @langchain/core's FakeChatModel, which answers with the prompt it was given, so the example
// runs offline; put any LangChain chat model (ChatOpenAI, ChatAnthropic, ChatOllama…) in its place.
//
//   npm run example:rag -- "how are errors reported?"
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { Document } from '@langchain/core/documents'
import { StringOutputParser } from '@langchain/core/output_parsers'
import { ChatPromptTemplate } from '@langchain/core/prompts'
import { RunnableLambda, RunnablePassthrough, RunnableSequence } from '@langchain/core/runnables'
import { FakeChatModel } from '@langchain/core/utils/testing'
import { ColBERT, PlaidIndex } from 'colbert'
import { addDocuments, ColbertReranker, ColbertRetriever } from 'colbert/langchain'

import { markdownSections } from '../markdown.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const question = process.argv[2] ?? 'How does the package find the ONNX Runtime library?'

const model = await ColBERT.fromPretrained(path.join(root, 'models', 'minilm-colbert'), { quantized: true })
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-rag-'))
const index = await PlaidIndex.create(dir)
try {
  const sections = markdownSections(root, ['README.md', 'ARCHITECTURE.md'])
  const documents = sections.map((s) => new Document({ id: s.id, pageContent: s.text, metadata: s.metadata }))
  const { added } = await addDocuments(index, model, documents)
  console.log(`indexed ${added} sections of README.md and ARCHITECTURE.md`)

  // Retrieve 8 candidates, keep the best 3 by exact MaxSim.
  const retriever = new ColbertRetriever({ model, index, k: 8 })
  const reranker = new ColbertReranker({ model, topN: 3 })
  const retrieve = RunnableLambda.from(async (q) => reranker.compressDocuments(await retriever.invoke(q), q))
  const prompt = ChatPromptTemplate.fromMessages([
    ['system', 'Answer the question from these sections of the colbert documentation, citing them by id.\n\n{context}'],
    ['human', '{question}'],
  ])
  const chain = RunnableSequence.from([
    RunnablePassthrough.assign({ sources: (input) => retrieve.invoke(input.question) }),
    RunnablePassthrough.assign({
      answer: RunnableSequence.from([
        (input) => ({ question: input.question, context: input.sources.map((d) => `[${d.id}] ${d.pageContent}`).join('\n\n') }),
        prompt,
        new FakeChatModel({}),
        new StringOutputParser(),
      ]),
    }),
  ])
  const { answer, sources } = await chain.invoke({ question }, { signal: AbortSignal.timeout(60_000) })
  console.log(`\nQ: ${question}`)
  console.log(`sources: ${sources.map((d) => `${d.id} (${d.metadata.relevanceScore.toFixed(2)})`).join(', ')}`)
  console.log(`\nthe fake chat model was asked:\n${answer.slice(0, 1200)}${answer.length > 1200 ? ' …' : ''}`)
} finally {
  await index.close()
  fs.rmSync(dir, { recursive: true, force: true })
}
