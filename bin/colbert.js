#!/usr/bin/env node
// The `colbert` command (package.json "bin"): see src/cli.ts.
'use strict'
require('../dist/src/cli.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code
  })
