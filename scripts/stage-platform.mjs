// Stages a platform package in npm/<platform>/: the built addon and the ONNX Runtime library from
// the pinned onnxruntime-node, plus ONNX Runtime's licence notice. Release CI runs it on each
// target; the package test runs it for the host; scripts/smoke/arm64.sh for linux-arm64-gnu.
//
//   node scripts/stage-platform.mjs [--platform <name>]   (default: this machine's platform)
//
// The host's addon is read from the repository root, another platform's from target/cross/<name>/
// (where scripts/build-native.mjs --target puts it).
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { hostPlatform, PLATFORMS } from './platforms.mjs'
import { rustNotices } from './rust-notices.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const hostName = hostPlatform()
const i = process.argv.indexOf('--platform')
const name = i >= 0 ? process.argv[i + 1] : hostName
if (!name || !PLATFORMS[name]) throw new Error(`no platform package for ${name ?? `${process.platform}-${process.arch}`} (known: ${Object.keys(PLATFORMS).join(', ')})`)
const { os, arch, ortLib: lib, triple } = PLATFORMS[name]
const dir = path.join(root, 'npm', name)
const addon = name === hostName ? path.join(root, `colbert.${name}.node`) : path.join(root, 'target', 'cross', name, `colbert.${name}.node`)
if (!fs.existsSync(addon)) throw new Error(`${addon} is missing: run npm run build (or node scripts/build-native.mjs --target <triple>) first`)
const ortDir = path.dirname(require.resolve('onnxruntime-node/package.json'))
const ortVersion = JSON.parse(fs.readFileSync(path.join(ortDir, 'package.json'), 'utf8')).version
fs.copyFileSync(addon, path.join(dir, `colbert.${name}.node`))
fs.copyFileSync(path.join(ortDir, 'bin', 'napi-v6', os, arch, lib), path.join(dir, lib))
fs.writeFileSync(
  path.join(dir, 'ThirdPartyNotices.txt'),
  `${lib} is ONNX Runtime ${ortVersion} (https://onnxruntime.ai), copied unmodified from the npm package onnxruntime-node@${ortVersion}.

MIT License

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.

${'#'.repeat(78)}

${rustNotices(triple)}`,
)
console.log(`staged npm/${name}: colbert.${name}.node + ${lib} (ONNX Runtime ${ortVersion}) + notices`)
