// The indexing worker of examples/worker-indexer: encodes and adds documents to the index in
// batches, one transaction per batch, and tells the main thread after each commit.
import { parentPort, workerData } from 'node:worker_threads'

import { ColBERT, PlaidIndex } from 'colbert'

const { modelDir, indexDir, sections, batchSize } = workerData
const model = await ColBERT.fromPretrained(modelDir, { quantized: true })
const index = await PlaidIndex.create(indexDir)
const controller = new AbortController()
const onMessage = (m) => m === 'stop' && controller.abort()
parentPort.on('message', onMessage)
try {
  for (let start = 0; start < sections.length && !controller.signal.aborted; start += batchSize) {
    const batch = sections.slice(start, start + batchSize)
    const embeddings = await model.encode(
      batch.map((s) => s.text),
      { isQuery: false, signal: controller.signal },
    )
    const result = await index.add(
      batch.map((s) => s.id),
      embeddings,
      { documents: batch.map(({ text, metadata }) => ({ text, metadata })), signal: controller.signal },
    )
    parentPort.postMessage({ type: 'committed', documents: index.info.documents, generation: result.generation })
  }
  parentPort.postMessage({ type: 'done', documents: index.info.documents })
} finally {
  await index.close()
  parentPort.off('message', onMessage) // lets the worker exit
}
