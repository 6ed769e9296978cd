// Installs the built package as a user gets it, for the smoke tests: stages npm/<platform>/ (addon
// + ONNX Runtime), packs it and the main package, and installs both into a fresh app folder with
// npm, the platform package as an optional dependency selected by os/cpu/libc (for another
// architecture, npm is told which one). Copies smoke.mjs into the app and prints the app's path.
// Needs `npm run build` (and, for another platform, scripts/build-native.mjs --target) first.
//
//   node scripts/smoke/install-app.mjs <platform> <app folder>
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { npmCommand } from '../npm-ci.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..', '..')
const [platform, appArg] = process.argv.slice(2)
if (!platform || !appArg) throw new Error('usage: install-app.mjs <platform> <app folder>')
const app = path.resolve(appArg)
const [os, arch, libc] = platform.split('-')

const npm = (args, cwd) => execFileSync(...npmCommand(args), { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })

execFileSync(process.execPath, [path.join(root, 'scripts', 'stage-platform.mjs'), '--platform', platform], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })
fs.rmSync(app, { recursive: true, force: true })
const packs = path.join(app, 'packs')
fs.mkdirSync(packs, { recursive: true })
const platformTgz = npm(['pack', '--silent', '--pack-destination', packs], path.join(root, 'npm', platform)).trim()
const mainTgz = npm(['pack', '--silent', '--ignore-scripts', '--pack-destination', packs], root).trim()
const platformName = JSON.parse(fs.readFileSync(path.join(root, 'npm', platform, 'package.json'), 'utf8')).name
fs.writeFileSync(
  path.join(app, 'package.json'),
  JSON.stringify(
    {
      name: 'colbert-smoke-app',
      private: true,
      dependencies: { colbert: `file:packs/${mainTgz}` },
      optionalDependencies: { [platformName]: `file:packs/${platformTgz}` },
    },
    null,
    2,
  ),
)
const target = [`--os=${os}`, `--cpu=${arch}`]
if (libc === 'gnu') target.push('--libc=glibc')
npm(['install', '--offline', '--no-audit', '--no-fund', ...target], app)
if (!fs.existsSync(path.join(app, 'node_modules', platformName, `colbert.${platform}.node`))) {
  throw new Error(`npm did not install ${platformName} into ${app}`)
}
fs.copyFileSync(path.join(here, 'smoke.mjs'), path.join(app, 'smoke.mjs'))
console.log(app)
