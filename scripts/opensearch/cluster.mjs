#!/usr/bin/env node
// Start and stop throw-away OpenSearch clusters on loopback, for tests and benchmarks
// (issue 16). Node built-ins only.
//
//   import { startCluster } from './scripts/opensearch/cluster.mjs';
//   const cluster = await startCluster({ nodes: 2 });
//   ... fetch(`${cluster.url}/_cat/nodes`) ...
//   await cluster.nodes[1].kill();      // SIGKILL that node
//   await cluster.nodes[1].restart();   // same ports and data, waits until it rejoined
//   await cluster.stop();               // kills all, removes the temp data
//
//   node scripts/opensearch/cluster.mjs --nodes 2     # CLI: prints the URL, Ctrl-C stops
//
// The server comes from scripts/opensearch/fetch.sh (run on demand; instant once
// installed) unless `install` or COLBERT_OPENSEARCH_HOME names an install folder.
// OpenSearch refuses to run as root: when this process is root, each node runs as
// `nobody` (setpriv, which execs, so a node's pid is the JVM's pid). Every node is
// started with a parent-death signal (SIGKILL) and in its own process group, and
// exit/SIGINT/SIGTERM handlers SIGKILL any node still running, so no JVM outlives
// the process that started it.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FETCH_SH = path.join(HERE, 'fetch.sh');
const NOBODY_FALLBACK = 65534;

// ---------------------------------------------------------------------------------
// Cleanup of every node this process started, whatever way the process ends.
const live = new Set(); // NodeProcess records whose JVM may still run
const tempDirs = new Set(); // temp folders to remove at exit
let handlersInstalled = false;

function killGroup(pid, signal = 'SIGKILL') {
  try { process.kill(-pid, signal); } catch { /* gone or not a group leader */ }
  try { process.kill(pid, signal); } catch { /* gone */ }
}

function installExitHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const p of live) killGroup(p.pid);
    live.clear();
    for (const d of tempDirs) {
      try { fs.rmSync(d, { recursive: true, force: true, maxRetries: 3 }); } catch { /* best effort */ }
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    const onSignal = () => {
      for (const p of live) killGroup(p.pid);
      // If nobody else handles this signal, keep its default meaning (die by it).
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}

// ---------------------------------------------------------------------------------
// Helpers.
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Free TCP ports on 127.0.0.1 (all held open together, so they are distinct). */
export async function freePorts(count) {
  const servers = [];
  try {
    for (let i = 0; i < count; i++) {
      const srv = net.createServer();
      await new Promise((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', resolve);
      });
      servers.push(srv);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

function javaMajor(home) {
  if (!home || !fs.existsSync(path.join(home, 'bin', 'java'))) return 0;
  let v = '';
  try {
    const rel = fs.readFileSync(path.join(home, 'release'), 'utf8');
    v = /^JAVA_VERSION="([^"]*)"/m.exec(rel)?.[1] ?? '';
  } catch { /* no release file */ }
  if (!v) {
    const r = spawnSync(path.join(home, 'bin', 'java'), ['-XshowSettings:properties', '-version'], { encoding: 'utf8' });
    v = /java\.specification\.version = (\S+)/.exec(r.stderr ?? '')?.[1] ?? '';
  }
  v = v.replace(/^1\./, '');
  return Number.parseInt(v, 10) || 0;
}

/** A JDK home with Java >= 21: OPENSEARCH_JAVA_HOME, JAVA_HOME, then /usr/lib/jvm/*. */
export function findJavaHome() {
  const candidates = [process.env.OPENSEARCH_JAVA_HOME, process.env.JAVA_HOME];
  try {
    for (const d of fs.readdirSync('/usr/lib/jvm').sort().reverse()) candidates.push(path.join('/usr/lib/jvm', d));
  } catch { /* no system JVM folder */ }
  for (const c of candidates) if (c && javaMajor(c) >= 21) return fs.realpathSync(c);
  throw new Error('no JDK >= 21 found (OpenSearch 3.5 needs one): set OPENSEARCH_JAVA_HOME to a JDK 21+ home');
}

/** The OpenSearch install folder: option, COLBERT_OPENSEARCH_HOME, or fetch.sh's output. */
export function resolveInstall(install) {
  const dir = install ?? process.env.COLBERT_OPENSEARCH_HOME;
  if (dir) {
    if (!fs.existsSync(path.join(dir, 'bin', 'opensearch'))) throw new Error(`no OpenSearch install at ${dir} (bin/opensearch missing)`);
    return path.resolve(dir);
  }
  const r = spawnSync('bash', [FETCH_SH], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) {
    throw new Error(`scripts/opensearch/fetch.sh failed (exit ${r.status}):\n${(r.stderr || '').trim()}`);
  }
  const lines = r.stdout.trim().split('\n');
  return lines[lines.length - 1].trim();
}

function nobodyIds() {
  const id = (flag) => {
    const r = spawnSync('id', [flag, 'nobody'], { encoding: 'utf8' });
    return r.status === 0 ? Number.parseInt(r.stdout, 10) : NOBODY_FALLBACK;
  };
  return { uid: id('-u'), gid: id('-g') };
}

function readableBy(ids, ...paths) {
  const args = [`--reuid=${ids.uid}`, `--regid=${ids.gid}`, '--clear-groups', '--', 'sh', '-c',
    'for p in "$@"; do test -r "$p" || exit 1; done', 'sh', ...paths];
  return spawnSync('setpriv', args, { stdio: 'ignore' }).status === 0;
}

/**
 * When root runs the nodes as `nobody` but `nobody` cannot read the install (it sits
 * under /root, mode 700), give it a hard-linked mirror under the temp folder: no copy
 * of the data, the files stay read-only to it. Kept between runs (it is keyed by the
 * install and its stamp), falls back to a real copy across file systems.
 */
function installFor(ids, install) {
  const probe = [path.join(install, 'bin', 'opensearch'), path.join(install, 'lib'), path.join(install, 'config', 'jvm.options')];
  if (readableBy(ids, ...probe)) return install;
  let key = install;
  try {
    for (const f of fs.readdirSync(path.dirname(install))) {
      if (f.startsWith('.installed-')) key += `|${f}|${fs.statSync(path.join(path.dirname(install), f)).mtimeMs}`;
    }
  } catch { /* no stamp */ }
  const hash = createHash('sha1').update(key).digest('hex').slice(0, 12);
  const root = path.join(os.tmpdir(), `colbert-opensearch-mirror-${hash}`);
  const target = path.join(root, path.basename(install));
  const done = path.join(root, '.complete');
  if (!fs.existsSync(done)) {
    fs.mkdirSync(root, { recursive: true, mode: 0o755 });
    fs.chmodSync(root, 0o755);
    const partial = `${target}.partial-${process.pid}`;
    fs.rmSync(partial, { recursive: true, force: true });
    let r = spawnSync('cp', ['-al', install, partial], { encoding: 'utf8' });
    if (r.status !== 0) {
      fs.rmSync(partial, { recursive: true, force: true });
      r = spawnSync('cp', ['-a', install, partial], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`could not mirror ${install} to ${partial}: ${r.stderr}`);
    }
    spawnSync('chmod', ['-R', 'a+rX', partial]);
    try {
      fs.renameSync(partial, target);
    } catch (e) {
      fs.rmSync(partial, { recursive: true, force: true }); // another process won the race
      if (!fs.existsSync(target)) throw e;
    }
    fs.writeFileSync(done, `${install}\n`);
  }
  if (!readableBy(ids, ...probe.map((p) => path.join(target, path.relative(install, p))))) {
    throw new Error(`user ${ids.uid} cannot read the OpenSearch install at ${install} nor its mirror ${target}`);
  }
  return target;
}

function chownR(p, uid, gid) {
  fs.chownSync(p, uid, gid);
  if (fs.lstatSync(p).isDirectory()) for (const e of fs.readdirSync(p)) chownR(path.join(p, e), uid, gid);
}

function tail(file, lines = 40) {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      // Without Java stack frames, so that the exception messages fit in the tail.
      return buf.toString('utf8').split('\n')
        .filter((l) => !/^\s+at |^\s+\.\.\. \d+ more|^WARNING: /.test(l))
        .slice(-lines - 1).join('\n').trimEnd();
    } finally { fs.closeSync(fd); }
  } catch {
    return '(no output)';
  }
}

/** A node's per-node config folder: a copy of the install's, with the JVM's own files moved off the install. */
function writeNodeConfig(install, confDir, nodeDir, logsDir) {
  fs.cpSync(path.join(install, 'config'), confDir, { recursive: true });
  const jvm = path.join(confDir, 'jvm.options');
  const text = fs.readFileSync(jvm, 'utf8')
    .split('\n')
    .filter((l) => !/^-Xm[sx]/.test(l)) // the heap comes from OPENSEARCH_JAVA_OPTS
    .join('\n')
    .replaceAll('file=logs/gc.log', `file=${logsDir}/gc.log`)
    .replace(/-XX:HeapDumpPath=\S+/, `-XX:HeapDumpPath=${nodeDir}`)
    .replace(/-XX:ErrorFile=\S+/, `-XX:ErrorFile=${logsDir}/hs_err_pid%p.log`);
  fs.writeFileSync(jvm, text);
}

async function getJson(url, timeoutMs = 5000) {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const body = await res.text();
  let json;
  try { json = JSON.parse(body); } catch { json = { raw: body }; }
  return { status: res.status, json };
}

// ---------------------------------------------------------------------------------
class Node {
  constructor(cluster, index, opts) {
    this.cluster = cluster;
    this.index = index;
    this.name = opts.name;
    this.httpPort = opts.httpPort;
    this.transportPort = opts.transportPort;
    this.url = `http://127.0.0.1:${this.httpPort}`;
    this.dir = opts.dir;
    this.dataPath = path.join(opts.dir, 'data');
    this.logsPath = path.join(opts.dir, 'logs');
    this.confPath = path.join(opts.dir, 'config');
    this.stdoutPath = path.join(opts.dir, 'logs', 'stdout.log');
    this.args = opts.args;
    this.child = null;
    this.exit = null; // { code, signal } of the last exit
    this.starts = 0;
  }

  /** pid of the node's JVM (changes on restart); null when not running. */
  get pid() { return this.running ? this.child.pid : null; }
  get running() { return this.child !== null && this.exit === null; }

  _spawn() {
    const c = this.cluster;
    const out = fs.openSync(this.stdoutPath, 'a');
    fs.writeSync(out, `\n--- start ${++this.starts} at ${new Date().toISOString()}\n`);
    if (c.runAs) fs.fchownSync(out, c.runAs.uid, c.runAs.gid);
    const cmd = path.join(c.install, 'bin', 'opensearch');
    const pre = ['--pdeathsig', 'KILL'];
    if (c.runAs) pre.push(`--reuid=${c.runAs.uid}`, `--regid=${c.runAs.gid}`, '--clear-groups');
    const env = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      LANG: 'C.UTF-8',
      HOME: this.dir,
      OPENSEARCH_JAVA_HOME: c.javaHome,
      OPENSEARCH_PATH_CONF: this.confPath,
      OPENSEARCH_TMPDIR: path.join(this.dir, 'tmp'),
      OPENSEARCH_JAVA_OPTS: [`-Xms${c.heap}`, `-Xmx${c.heap}`, ...c.javaOpts].join(' '),
    };
    const child = spawn('setpriv', [...pre, '--', cmd, ...this.args], {
      cwd: this.dir,
      env,
      detached: true, // own process group: kill(-pid) reaches everything it started
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    this.child = child;
    this.exit = null;
    const exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        live.delete(this);
        resolve(this.exit);
      });
      child.once('error', (err) => {
        this.exit = { code: null, signal: null, error: err };
        live.delete(this);
        resolve(this.exit);
      });
    });
    this.exited = exited;
    live.add(this);
    c.log(`${this.name}: started pid ${child.pid} (http ${this.httpPort}, transport ${this.transportPort})`);
  }

  /** Memory the node's JVM holds (VmRSS), in bytes; 0 when not running. */
  rss() {
    if (!this.running) return 0;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${this.child.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : 0;
    } catch { return 0; }
  }

  /** Last lines of the node's stdout/stderr (the console log). */
  tail(lines = 40) { return tail(this.stdoutPath, lines); }

  /**
   * Send `signal` (default SIGKILL) to the node's process group and wait until the JVM
   * has exited; after SIGTERM, SIGKILL follows when it has not exited in `graceMs`.
   */
  async kill(signal = 'SIGKILL', { graceMs = 20000 } = {}) {
    if (!this.running) return this.exit;
    const pid = this.child.pid;
    killGroup(pid, signal);
    if (signal !== 'SIGKILL') {
      const t = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
      try { await this.exited; } finally { clearTimeout(t); }
    } else {
      await this.exited;
    }
    killGroup(pid, 'SIGKILL'); // anything left in its group
    this.cluster.log(`${this.name}: exited (${this.exit.signal ?? this.exit.code})`);
    return this.exit;
  }

  /**
   * Start the node again on the same ports and data folder (killing it first if it
   * still runs) and wait until the cluster has all running nodes again.
   */
  async restart({ timeoutMs = this.cluster.timeoutMs } = {}) {
    if (this.running) await this.kill();
    this._spawn();
    const want = this.cluster.nodes.filter((n) => n.running).length;
    await this.cluster._waitHealthy({ via: this, nodes: want, timeoutMs, failOn: [this] });
    return this;
  }
}

class Cluster {
  constructor(o) {
    Object.assign(this, o);
    this.nodes = [];
    this.stopped = false;
  }

  get urls() { return this.nodes.map((n) => n.url); }
  get url() { return this.nodes[0].url; }

  /** A running node's URL (the first node's when it runs). */
  liveUrl() {
    const n = this.nodes.find((x) => x.running);
    if (!n) throw new Error(`cluster ${this.name}: no node is running`);
    return n.url;
  }

  /**
   * JSON request to a running node: `await cluster.request('PUT', '/idx', { mappings })`.
   * Resolves `{ status, body }`; a body that is a string is sent as is (NDJSON for _bulk).
   */
  async request(method, urlPath, body, { timeoutMs = 30000, url } = {}) {
    const headers = {};
    let payload;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      headers['content-type'] = /\/_bulk|\/_msearch/.test(urlPath) ? 'application/x-ndjson' : 'application/json';
    }
    const res = await fetch(`${url ?? this.liveUrl()}${urlPath}`, {
      method, headers, body: payload, signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let parsed;
    try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = text; }
    return { status: res.status, body: parsed };
  }

  /** GET /_cluster/health (through a running node). */
  async health(query = '') {
    return (await getJson(`${this.liveUrl()}/_cluster/health${query ? `?${query}` : ''}`, 65000)).json;
  }

  /**
   * Wait until `nodes` nodes (default: those running) are in the cluster with at least
   * `status` ('yellow' default, or 'green').
   */
  async waitForHealth({ status = 'yellow', nodes, timeoutMs = this.timeoutMs } = {}) {
    const want = nodes ?? this.nodes.filter((n) => n.running).length;
    await this._waitHealthy({ nodes: want, status, timeoutMs, failOn: [] });
  }

  async _waitHealthy({ via, nodes, status = 'yellow', timeoutMs, failOn }) {
    const started = Date.now();
    const deadline = started + timeoutMs;
    let last = 'no answer yet';
    while (true) {
      if (this.signal?.aborted) throw new Error(`cluster ${this.name}: aborted while waiting for health`, { cause: this.signal.reason });
      const dead = failOn.find((n) => !n.running);
      if (dead) {
        const e = dead.exit ?? {};
        throw new Error(`OpenSearch node ${dead.name} exited (${e.error ? e.error.message : e.signal ?? `code ${e.code}`}) before the cluster was ready; `
          + `its output ends with:\n${dead.tail()}`);
      }
      const target = via && via.running ? via : this.nodes.find((n) => n.running);
      try {
        const q = `wait_for_nodes=${nodes}&wait_for_status=${status}&timeout=2s`;
        const { status: http, json } = await getJson(`${target.url}/_cluster/health?${q}`, 10000);
        if (http === 200 && json.timed_out === false) {
          this.log(`cluster ${this.name}: ${json.number_of_nodes} node(s), ${json.status}, after ${((Date.now() - started) / 1000).toFixed(1)} s`);
          return json;
        }
        last = `HTTP ${http}: ${json.number_of_nodes ?? '?'} node(s), status ${json.status ?? json.error?.type ?? JSON.stringify(json).slice(0, 200)}`;
        await sleep(250);
      } catch (err) {
        last = err.cause?.code ?? err.name ?? String(err);
        await sleep(500);
      }
      if (Date.now() > deadline) {
        const tails = failOn.length ? failOn : this.nodes;
        throw new Error(`cluster ${this.name}: not ${nodes} node(s) / ${status} after ${Math.round(timeoutMs / 1000)} s (last: ${last}); `
          + tails.map((n) => `\n--- ${n.name} (${n.running ? 'running' : 'exited'}) output ends with:\n${n.tail(25)}`).join(''));
      }
    }
  }

  /**
   * Kill every node (SIGKILL by default), wait for the JVMs to exit, and remove the
   * temp folder unless `keepData` (a caller-given dataDir is never removed).
   */
  async stop({ keepData = this.keepData, signal = 'SIGKILL' } = {}) {
    await Promise.all(this.nodes.map((n) => n.kill(signal)));
    if (!this.stopped) {
      this.stopped = true;
      if (this.ownDir && !keepData) {
        fs.rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
      }
      tempDirs.delete(this.dir);
      this.log(`cluster ${this.name}: stopped${this.ownDir && !keepData ? '' : ` (data kept in ${this.dir})`}`);
    }
  }

  async [Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]() { await this.stop(); }
}

let clusterCount = 0;

/**
 * Start an OpenSearch cluster of `nodes` nodes on 127.0.0.1 and wait until it is yellow.
 *
 * @param {object} [o]
 * @param {number} [o.nodes=1]          number of nodes
 * @param {number} [o.httpPort]         first node's HTTP port (node i: +i); free ports when absent
 * @param {number} [o.transportPort]    first node's transport port (node i: +i); free ports when absent
 * @param {string} [o.heap='512m']      -Xms/-Xmx of each node
 * @param {string} [o.name]             cluster.name (default colbert-<pid>-<n>)
 * @param {string} [o.dataDir]          folder for the nodes' data, logs and config (kept);
 *                                      default a fresh temp folder, removed by stop()
 * @param {boolean} [o.keepData=false]  keep the temp folder on stop()
 * @param {AbortSignal} [o.signal]      aborting stops the cluster (and a pending start)
 * @param {(msg: string) => void} [o.log] progress messages (default: none)
 * @param {number} [o.timeoutMs=120000] how long start (and restart) may take
 * @param {number} [o.clusterManagers]  how many nodes (the first ones) are cluster-manager
 *                                      eligible; default all, but 1 for a 2-node cluster
 *                                      (so killing node 1 never loses the quorum)
 * @param {Record<string, string|number|boolean>} [o.settings] extra -E settings for every node
 * @param {string[]} [o.javaOpts]       extra JVM options
 * @param {string} [o.install]          OpenSearch install folder (default: fetch.sh)
 * @param {string} [o.javaHome]         JDK >= 21 (default: found)
 */
export async function startCluster({
  nodes = 1, httpPort, transportPort, heap = '512m', name, dataDir, keepData = false,
  signal, log, timeoutMs = 120000, clusterManagers, settings = {}, javaOpts = [],
  install, javaHome,
} = {}) {
  if (!Number.isInteger(nodes) || nodes < 1) throw new Error(`nodes must be a positive integer, got ${nodes}`);
  signal?.throwIfAborted();
  const logf = typeof log === 'function' ? log : () => {};
  const isRoot = process.getuid?.() === 0;
  const runAs = isRoot ? nobodyIds() : null;
  const home = resolveInstall(install);
  const jdk = javaHome ?? findJavaHome();
  const osHome = runAs ? installFor(runAs, home) : home;
  if (runAs && !readableBy(runAs, path.join(jdk, 'bin', 'java'))) {
    throw new Error(`user ${runAs.uid} cannot run the JDK at ${jdk}`);
  }

  const clusterName = name ?? `colbert-${process.pid}-${++clusterCount}`;
  const ports = (httpPort === undefined || transportPort === undefined) ? await freePorts(2 * nodes) : [];
  const httpPorts = Array.from({ length: nodes }, (_, i) => (httpPort !== undefined ? httpPort + i : ports[i]));
  const transportPorts = Array.from({ length: nodes }, (_, i) => (transportPort !== undefined ? transportPort + i : ports[nodes + i]));
  const managers = Math.min(nodes, Math.max(1, clusterManagers ?? (nodes === 2 ? 1 : nodes)));

  installExitHandlers();
  const ownDir = !dataDir;
  const dir = dataDir ? path.resolve(dataDir) : fs.mkdtempSync(path.join(os.tmpdir(), `${clusterName}-`));
  fs.mkdirSync(dir, { recursive: true });
  if (ownDir && !keepData) tempDirs.add(dir);
  if (runAs) fs.chmodSync(dir, 0o755);

  const cluster = new Cluster({
    name: clusterName, dir, ownDir, keepData, install: osHome, javaHome: jdk, heap, javaOpts,
    runAs, log: logf, timeoutMs, signal,
  });

  const names = Array.from({ length: nodes }, (_, i) => `node-${i}`);
  for (let i = 0; i < nodes; i++) {
    const nodeDir = path.join(dir, names[i]);
    const logsDir = path.join(nodeDir, 'logs');
    for (const sub of ['data', 'logs', 'tmp']) fs.mkdirSync(path.join(nodeDir, sub), { recursive: true });
    if (!fs.existsSync(path.join(nodeDir, 'config', 'jvm.options'))) {
      writeNodeConfig(osHome, path.join(nodeDir, 'config'), nodeDir, logsDir);
    }
    if (runAs) chownR(nodeDir, runAs.uid, runAs.gid);
    const s = {
      'cluster.name': clusterName,
      'node.name': names[i],
      'network.host': '127.0.0.1',
      'http.port': httpPorts[i],
      'transport.port': transportPorts[i],
      'path.data': path.join(nodeDir, 'data'),
      'path.logs': logsDir,
      // A small CI disk must not make shards unassignable or indices read-only.
      'cluster.routing.allocation.disk.threshold_enabled': false,
    };
    if (nodes === 1) {
      s['discovery.type'] = 'single-node';
    } else {
      s['discovery.seed_hosts'] = transportPorts.map((p) => `127.0.0.1:${p}`).join(',');
      s['cluster.initial_cluster_manager_nodes'] = names.slice(0, managers).join(',');
      if (i >= managers) s['node.roles'] = 'data,ingest';
    }
    Object.assign(s, settings);
    const args = Object.entries(s).map(([k, v]) => `-E${k}=${v}`);
    cluster.nodes.push(new Node(cluster, i, {
      name: names[i], httpPort: httpPorts[i], transportPort: transportPorts[i], dir: nodeDir, args,
    }));
  }

  const onAbort = () => { cluster.stop().catch(() => {}); };
  signal?.addEventListener('abort', onAbort, { once: true });
  const t0 = Date.now();
  try {
    for (const n of cluster.nodes) n._spawn();
    await cluster._waitHealthy({ via: cluster.nodes[0], nodes, timeoutMs, failOn: cluster.nodes });
  } catch (err) {
    await cluster.stop({ keepData });
    throw err;
  }
  cluster.startupMs = Date.now() - t0;
  return cluster;
}

// ---------------------------------------------------------------------------------
// CLI
function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--nodes': o.nodes = Number(val()); break;
      case '--heap': o.heap = val(); break;
      case '--http-port': o.httpPort = Number(val()); break;
      case '--transport-port': o.transportPort = Number(val()); break;
      case '--name': o.name = val(); break;
      case '--data-dir': o.dataDir = val(); break;
      case '--keep-data': o.keepData = true; break;
      case '--timeout': o.timeoutMs = Number(val()) * 1000; break;
      case '-E': {
        const [k, ...v] = val().split('=');
        o.settings = { ...(o.settings ?? {}), [k]: v.join('=') };
        break;
      }
      case '-h': case '--help':
        console.log(`usage: node scripts/opensearch/cluster.mjs [--nodes N] [--heap 512m] [--http-port P] [--transport-port P]
       [--name NAME] [--data-dir DIR] [--keep-data] [--timeout SECONDS] [-E key=value]...
Starts an OpenSearch cluster on 127.0.0.1, prints its URL (first line) and all node URLs,
and stops it (removing its temp data) on Ctrl-C / SIGTERM.`);
        process.exit(0);
        break;
      default: throw new Error(`unknown argument ${a} (try --help)`);
    }
  }
  return o;
}

async function main() {
  let opts;
  try { opts = parseArgs(process.argv.slice(2)); } catch (e) { console.error(e.message); process.exit(2); }
  const cluster = await startCluster({ ...opts, log: (m) => console.error(`[cluster] ${m}`) });
  console.log(cluster.url);
  for (const n of cluster.nodes) console.error(`[cluster] ${n.name}: ${n.url} pid ${n.pid} logs ${n.logsPath}`);
  console.error(`[cluster] up in ${(cluster.startupMs / 1000).toFixed(1)} s; Ctrl-C stops it`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await cluster.stop();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // Report a node that dies on its own.
  for (const n of cluster.nodes) {
    n.exited.then((e) => { if (!stopping) console.error(`[cluster] ${n.name} exited (${e.signal ?? e.code})`); });
  }
  setInterval(() => {}, 1 << 30); // stay alive
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => { console.error(err.stack ?? String(err)); process.exit(1); });
}
