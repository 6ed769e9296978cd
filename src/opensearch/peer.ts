// Imported first by ./index: fails with DEPENDENCY_MISSING before the OpenSearch client is needed.
import { requirePeer } from '../integrations/peer'

/** The `@opensearch-project/opensearch` versions `colbert/opensearch` is tested with (package.json peerDependencies). */
export const OPENSEARCH_CLIENT_RANGE = '^3.0.0'

requirePeer('@opensearch-project/opensearch', `@opensearch-project/opensearch@${OPENSEARCH_CLIENT_RANGE}`, 'colbert/opensearch')
