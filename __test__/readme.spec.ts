// Every TypeScript example in README.md runs, against this package, with the bundled stand-in model,
// and so does every ```sh block of `npx colbert` commands (against bin/colbert.js, with
// BEIR_DIR pointing at the committed beir-mini collection). The hub examples (```js) need the network.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

import test from 'ava'

import { FIXTURES, ROOT } from './helpers'

const blocks = [...fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1])

test('README has TypeScript examples', (t) => {
  t.true(blocks.length >= 1)
})

blocks.forEach((code, i) => {
  test(`README example ${i + 1} runs`, (t) => {
    // Inside the repository, so that imports of the optional frameworks (`@langchain/core`, …)
    // and of `colbert/langchain` (a self-reference through package.json "exports") resolve.
    const dir = fs.mkdtempSync(path.join(ROOT, '.readme-'))
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
    const file = path.join(dir, `example${i}.mts`)
    const source = code.replace(/from 'colbert'/g, `from ${JSON.stringify(path.join(ROOT, 'dist', 'index.mjs'))}`)
    fs.writeFileSync(file, `${source}\nconsole.log('EXAMPLE_OK')\n`)
    const out = execFileSync(process.execPath, ['--import=tsx', file], { cwd: ROOT, encoding: 'utf8' })
    t.regex(out, /EXAMPLE_OK/)
  })
})

const shell = [...fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').matchAll(/```sh\n([\s\S]*?)```/g)]
  .map((m) => m[1])
  .filter((code) => code.trimStart().startsWith('npx colbert'))

test('README has colbert command examples', (t) => {
  t.true(shell.length >= 1)
})

shell.forEach((code, i) => {
  test(`README command example ${i + 1} runs`, (t) => {
    const script = code.replace(/^npx colbert /gm, `"${process.execPath}" "${path.join(ROOT, 'bin', 'colbert.js')}" `)
    const out = execFileSync('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, BEIR_DIR: path.join(FIXTURES, 'beir-mini') },
    })
    t.regex(out, /MaxSim|ndcg@10/)
    t.regex(out, /index:/)
  })
})
