// Loads the napi-generated binding (`native.js` at the package root, a build output) and types it.
import fs from 'node:fs'
import path from 'node:path'

import type * as Native from '../native'

function locate(): string {
  // From source (tsx: src/) the root is one level up; from the build (dist/src/) two.
  for (const up of ['..', path.join('..', '..')]) {
    const candidate = path.join(__dirname, up, 'native.js')
    if (fs.existsSync(candidate)) return candidate
  }
  throw new Error('INTERNAL: native.js not found; run `npm run build` first')
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const native: typeof Native = require(locate())
export type { Native }
