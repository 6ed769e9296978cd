// Every TypeScript example in README.md runs, against this package, with the bundled stand-in model.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import test from 'ava'

import { ROOT } from './helpers'

const blocks = [...fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1])

test('README has TypeScript examples', (t) => {
  t.true(blocks.length >= 1)
})

blocks.forEach((code, i) => {
  test(`README example ${i + 1} runs`, (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'colbert-readme-'))
    const file = path.join(dir, `example${i}.mts`)
    const source = code.replace(/from 'colbert'/g, `from ${JSON.stringify(path.join(ROOT, 'dist', 'index.mjs'))}`)
    fs.writeFileSync(file, `${source}\nconsole.log('EXAMPLE_OK')\n`)
    const out = execFileSync(process.execPath, ['--import=tsx', file], { cwd: ROOT, encoding: 'utf8' })
    t.regex(out, /EXAMPLE_OK/)
  })
})
