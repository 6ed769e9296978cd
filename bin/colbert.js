#!/usr/bin/env node
// The `colbert` command (package.json "bin"): see src/cli/index.ts.
'use strict'
require('../dist/src/cli/index.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code
  })
