#!/usr/bin/env node
// Self-test of the OpenSearch test harness (issue 16): fetch.sh, then clusters of
// 1, 3 and 2 nodes through cluster.mjs, a k-NN (lucene HNSW) index with 2 shards x 1
// replica, a node killed and restarted, and checks that no JVM is left behind.
//
//   node scripts/opensearch/selftest.mjs [--only 1,3,2,crash] [--heap 512m]
//
// Exits non-zero on the first failure; prints start-up times and node RSS.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCluster } from './cluster.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const only = new Set(opt('--only', '1,3,2,crash').split(','));
const heap = opt('--heap', '512m');

const results = [];
const ourPids = new Set();
const mb = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const log = (m) => console.error(`  [cluster] ${m}`);
const step = (m) => console.error(`\n== ${m}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function alive(pid) {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function ok(res, what) {
  if (res.status >= 300) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 800)}`);
  return res.body;
}

// Docs: 4-d vectors; the nearest to QUERY under l2 is d3, then d2.
const DOCS = [
  { id: 'd0', tag: 'a', vec: [1, 0, 0, 0] },
  { id: 'd1', tag: 'b', vec: [0, 1, 0, 0] },
  { id: 'd2', tag: 'a', vec: [0, 0, 1, 0] },
  { id: 'd3', tag: 'b', vec: [0, 0, 0.9, 0.4] },
  { id: 'd4', tag: 'c', vec: [0, 0, 0, 1] },
  { id: 'd5', tag: 'a', vec: [1, 1, 0, 0] },
  { id: 'd6', tag: 'b', vec: [-1, 0, 0, 0] },
  { id: 'd7', tag: 'c', vec: [0, -1, 0, 0] },
];
const QUERY = [0, 0, 0.8, 0.5];

async function createAndFill(cluster, { shards, replicas }) {
  await ok(await cluster.request('PUT', '/selftest', {
    settings: { index: { knn: true, number_of_shards: shards, number_of_replicas: replicas } },
    mappings: {
      properties: {
        tag: { type: 'keyword' },
        vec: {
          type: 'knn_vector', dimension: 4,
          method: { name: 'hnsw', engine: 'lucene', space_type: 'l2', parameters: { m: 16, ef_construction: 64 } },
        },
      },
    },
  }), 'create index');
  const bulk = DOCS.map((d) => `${JSON.stringify({ index: { _index: 'selftest', _id: d.id } })}\n${JSON.stringify({ tag: d.tag, vec: d.vec })}\n`).join('');
  const b = await ok(await cluster.request('POST', '/_bulk?refresh=wait_for', bulk), 'bulk');
  assert.equal(b.errors, false, `bulk had item errors: ${JSON.stringify(b.items.filter((i) => i.index.error)).slice(0, 500)}`);
}

async function checkSearches(cluster, label, { shards }) {
  const terms = await ok(await cluster.request('POST', '/selftest/_search', {
    size: 10, query: { terms: { tag: ['a', 'c'] } },
  }), `${label}: terms`);
  assert.equal(terms._shards.failed, 0, `${label}: terms had failed shards`);
  assert.equal(terms._shards.successful, shards, `${label}: terms answered by ${terms._shards.successful}/${shards} shards`);
  assert.deepEqual(terms.hits.hits.map((h) => h._id).sort(), ['d0', 'd2', 'd4', 'd5', 'd7'], `${label}: terms hits`);

  const knn = await ok(await cluster.request('POST', '/selftest/_search', {
    size: 3, query: { knn: { vec: { vector: QUERY, k: 3 } } },
  }), `${label}: knn`);
  assert.equal(knn._shards.failed, 0, `${label}: knn had failed shards`);
  assert.deepEqual(knn.hits.hits.slice(0, 2).map((h) => h._id), ['d3', 'd2'], `${label}: knn order`);

  const filtered = await ok(await cluster.request('POST', '/selftest/_search', {
    size: 3, query: { knn: { vec: { vector: QUERY, k: 3, filter: { term: { tag: 'a' } } } } },
  }), `${label}: filtered knn`);
  assert.equal(filtered.hits.hits[0]?._id, 'd2', `${label}: filtered knn top hit`);
  assert.ok(filtered.hits.hits.every((h) => DOCS.find((d) => d.id === h._id).tag === 'a'), `${label}: filter respected`);
  console.error(`  ${label}: terms ${terms.hits.hits.length} hits, knn ${knn.hits.hits.map((h) => h._id).join(',')}, filtered knn ${filtered.hits.hits.map((h) => h._id).join(',')} (${knn._shards.successful}/${shards} shards)`);
}

async function withCluster(opts, fn) {
  const t0 = Date.now();
  const cluster = await startCluster({ heap, log, ...opts });
  const startMs = Date.now() - t0;
  cluster.nodes.forEach((n) => ourPids.add(n.pid));
  try {
    await fn(cluster, startMs);
  } finally {
    const pids = cluster.nodes.map((n) => n.pid).filter(Boolean);
    await cluster.stop();
    for (const p of pids) assert.ok(!alive(p), `pid ${p} still alive after stop()`);
    assert.ok(!fs.existsSync(cluster.dir), `temp data ${cluster.dir} not removed`);
  }
}

function record(nodes, startMs, cluster) {
  const rss = cluster.nodes.map((n) => n.rss());
  results.push({ nodes, startMs, rss });
  console.error(`  ${nodes} node(s): ready in ${(startMs / 1000).toFixed(1)} s; RSS ${rss.map(mb).join(', ')}`);
}

async function main() {
  const load0 = os.loadavg()[0].toFixed(2);
  step('fetch.sh');
  let t = Date.now();
  const f = spawnSync('bash', [path.join(HERE, 'fetch.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  assert.equal(f.status, 0, 'fetch.sh failed');
  const install = f.stdout.trim().split('\n').pop();
  console.error(`  install: ${install} (${((Date.now() - t) / 1000).toFixed(1)} s)`);

  if (only.has('1')) {
    step('1 node');
    await withCluster({ nodes: 1 }, async (c, ms) => {
      record(1, ms, c);
      assert.equal(c.urls.length, 1);
      await createAndFill(c, { shards: 1, replicas: 0 });
      await checkSearches(c, '1 node', { shards: 1 });
      console.error(`  1 node: RSS after indexing and searching ${mb(c.nodes[0].rss())}`);
    });
  }

  if (only.has('3')) {
    step('3 nodes: 2 shards x 1 replica, kill node-2, restart it');
    await withCluster({ nodes: 3 }, async (c, ms) => {
      record(3, ms, c);
      const cat = await ok(await c.request('GET', '/_cat/nodes?h=name,node.role,cluster_manager&format=json'), 'cat nodes');
      console.error(`  nodes: ${cat.map((n) => `${n.name}(${n['node.role']}${n.cluster_manager === '*' ? ',manager' : ''})`).join(' ')}`);
      await createAndFill(c, { shards: 2, replicas: 1 });
      await c.request('GET', '/_cluster/health/selftest?wait_for_status=green&timeout=60s');
      await checkSearches(c, 'healthy', { shards: 2 });

      const victim = c.nodes[2];
      const pid = victim.pid;
      t = Date.now();
      await victim.kill();
      assert.ok(!alive(pid), 'killed JVM still alive');
      assert.equal(victim.running, false);
      await c.waitForHealth({ nodes: 2, status: 'yellow' });
      const h = await c.health();
      console.error(`  after SIGKILL of ${victim.name}: ${h.number_of_nodes} nodes, ${h.status} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
      await checkSearches(c, 'one node killed', { shards: 2 });

      t = Date.now();
      await victim.restart();
      ourPids.add(victim.pid);
      console.error(`  ${victim.name} rejoined in ${((Date.now() - t) / 1000).toFixed(1)} s (pid ${victim.pid})`);
      await c.waitForHealth({ nodes: 3, status: 'green' });
      await checkSearches(c, 'after restart', { shards: 2 });
    });
  }

  if (only.has('2')) {
    step('2 nodes: kill node-1 (not cluster-manager eligible), search, restart');
    await withCluster({ nodes: 2 }, async (c, ms) => {
      record(2, ms, c);
      await createAndFill(c, { shards: 2, replicas: 1 });
      await c.request('GET', '/_cluster/health/selftest?wait_for_status=green&timeout=60s');
      await c.nodes[1].kill();
      await c.waitForHealth({ nodes: 1, status: 'yellow' });
      await checkSearches(c, '2 nodes, node-1 killed', { shards: 2 });
      await c.nodes[1].restart();
      ourPids.add(c.nodes[1].pid);
      await checkSearches(c, '2 nodes, node-1 back', { shards: 2 });
    });
  }

  if (only.has('crash')) {
    step('crash: the starting process is SIGKILLed; its JVM must die too');
    const script = `import { startCluster } from ${JSON.stringify(path.join(HERE, 'cluster.mjs'))};
const c = await startCluster({ nodes: 1, heap: ${JSON.stringify(heap)} });
console.log(JSON.stringify({ pid: c.nodes[0].pid, dir: c.dir }));
setInterval(() => {}, 1e9);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const info = await new Promise((resolve, reject) => {
      let buf = '';
      child.stdout.on('data', (d) => {
        buf += d;
        if (buf.includes('\n')) resolve(JSON.parse(buf.split('\n')[0]));
      });
      child.once('exit', (code) => reject(new Error(`crash child exited early (${code})`)));
    });
    ourPids.add(info.pid);
    assert.ok(alive(info.pid), 'crash child JVM not running');
    child.kill('SIGKILL');
    let gone = false;
    for (let i = 0; i < 50 && !gone; i++) { await sleep(100); gone = !alive(info.pid); }
    assert.ok(gone, `JVM ${info.pid} survived the SIGKILL of the process that started it`);
    console.error(`  JVM ${info.pid} died with its parent (parent-death signal)`);
    fs.rmSync(info.dir, { recursive: true, force: true }); // a SIGKILLed parent cannot clean up
  }

  step('no JVM left');
  for (const p of ourPids) assert.ok(!alive(p), `JVM ${p} is still alive`);
  const pg = spawnSync('pgrep', ['-af', 'org.opensearch.bootstrap'], { encoding: 'utf8' });
  const left = (pg.stdout || '').trim();
  assert.equal(left, '', `OpenSearch processes still running:\n${left.slice(0, 500)}`);
  console.error('  pgrep -f org.opensearch.bootstrap: none');

  console.log('\nsummary (load average at start %s, %d cores):', load0, os.cpus().length);
  for (const r of results) console.log(`  ${r.nodes} node(s): start ${(r.startMs / 1000).toFixed(1)} s, RSS ${r.rss.map(mb).join(' / ')}`);
  console.log('selftest: ok');
}

main().catch((err) => {
  console.error(`\nselftest: FAILED: ${err.stack ?? err}`);
  process.exit(1);
});
