// Imported first by ./langchain: fails with DEPENDENCY_MISSING before any @langchain/core import runs.
import { requirePeer } from './peer'

/** The `@langchain/core` versions `colbert/langchain` is tested with (package.json peerDependencies). */
export const LANGCHAIN_CORE_RANGE = '^1.4.0'

requirePeer('@langchain/core/retrievers', `@langchain/core@${LANGCHAIN_CORE_RANGE}`, 'colbert/langchain')
