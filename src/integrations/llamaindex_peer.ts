// Imported first by ./llamaindex: fails with DEPENDENCY_MISSING before any @llamaindex/core import runs.
import { requirePeer } from './peer'

/** The `@llamaindex/core` versions `colbert/llamaindex` is tested with (package.json peerDependencies). */
export const LLAMAINDEX_CORE_RANGE = '^0.6.22'

requirePeer('@llamaindex/core/retriever', `@llamaindex/core@${LLAMAINDEX_CORE_RANGE}`, 'colbert/llamaindex')
