// Optional peer dependencies of the integration subpaths (`colbert/langchain`,
// `colbert/llamaindex`): each adapter imports its framework only after checking it resolves, so
// a missing framework is a `DEPENDENCY_MISSING` error that says what to install, not Node's
// `MODULE_NOT_FOUND`. `colbert` itself never imports this or any framework.
import { ColbertError } from '../errors'

/**
 * Throws `DEPENDENCY_MISSING` unless `specifier` (a package subpath) resolves from this package.
 * @internal
 */
export function requirePeer(specifier: string, install: string, subpath: string): void {
  try {
    require.resolve(specifier)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code !== 'MODULE_NOT_FOUND' && code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED') throw e
    throw new ColbertError(
      'DEPENDENCY_MISSING',
      `${subpath} needs the optional package ${specifier.split('/').slice(0, 2).join('/')}, which is not installed (or too old to export ${specifier}): npm install ${install}`,
      { cause: e },
    )
  }
}
