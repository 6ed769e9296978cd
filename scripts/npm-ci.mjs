// How to run npm, and `npm ci` in a folder when its package-lock.json is not what was last installed there: the
// lock's sha256 is stamped in node_modules/.colbert-installed after a successful install. The
// one implementation behind the set-up (the repository root), the glibc cross toolchains
// (scripts/toolchain) and the CI helper folders (.ci/registry, .ci/runtimes, .ci/arm64). Uses
// only Node's standard library (it runs before anything is installed).
//
//   node scripts/npm-ci.mjs <folder> <what, for the log> [more npm ci arguments, e.g. --cpu=arm64]
import { execFileSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The command running npm with `args`: the npm running us when started by `npm run` (its
 * `npm_execpath`), else `npm` on the PATH. Returns `[file, arguments]` for execFileSync.
 */
export function npmCommand(args) {
  const cli = process.env.npm_execpath
  if (cli && /\.[cm]?js$/.test(cli)) return [process.execPath, [cli, ...args]]
  return [process.platform === 'win32' ? 'npm.cmd' : 'npm', args]
}

/**
 * Runs `npm ci --no-audit --no-fund ...args` in `dir` (with `env` added) when its lock changed
 * since the last install, or always with `force`. Returns whether it installed; `log` gets one
 * line saying what it does.
 */
export function npmCiIfChanged(dir, { what, args = [], env = {}, force = false, log = () => {} }) {
  const hash = crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, 'package-lock.json'))).digest('hex')
  const stamp = path.join(dir, 'node_modules', '.colbert-installed')
  if (!force && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === hash) return false
  log(`installing ${what} (npm ci in ${path.relative(process.cwd(), dir) || '.'}) ...`)
  execFileSync(...npmCommand(['ci', '--no-audit', '--no-fund', ...args]), { cwd: dir, stdio: 'inherit', env: { ...process.env, ...env } })
  fs.writeFileSync(stamp, hash)
  return true
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [dir, what, ...args] = process.argv.slice(2)
  if (!dir || !what) {
    console.error('usage: node scripts/npm-ci.mjs <folder> <what, for the log> [npm ci arguments]')
    process.exit(2)
  }
  npmCiIfChanged(path.resolve(dir), { what, args, log: (s) => console.log(`== ${s}`) })
}
