// Wasm column of the PromQL benchmark (called by tools/bench/bench_promql.py).
//
// Usage: node tools/bench/wasm_bench.mjs URL DATA_DIR RUNS < queries.json > results.json
//   URL       an `emberlens serve` whose --web.ui-path is the built app (app/dist)
//   DATA_DIR  the TSDB blocks to open in the worker (every */meta.json, */index,
//             */chunks/*, */tombstones, named <ULID>/... as a folder upload would)
//   queries   [{name, expr, time: {"Instant": {...}} | {"Range": {...}}}] (protocol QueryTime)
// Launches Debian's Chromium headless (playwright-core from e2e/node_modules),
// opens the app's origin, starts its own classic worker
// ./emberlens-worker_loader.js named "emberlens-worker" (the app's protocol,
// worker/protocol/src/lib.rs), hands it the block files as File objects
// (OpenFiles), then per query: one warm-up Query, then RUNS timed ones, each
// the wall time in the page (performance.now()) from postMessage to the answer.
// Prints {open_ms, memory, results: [{name, times_ms, error, answer}]}, the
// answer being the warm-up's series (labels, [ts_ms, value as string]).
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const require = createRequire(path.join(repo, 'e2e', 'package.json'));
const { chromium } = require('playwright-core');

const [url, dataDir, runsArg] = process.argv.slice(2);
if (!url || !dataDir) {
  console.error('usage: wasm_bench.mjs URL DATA_DIR RUNS < queries.json');
  process.exit(2);
}
const runs = Number(runsArg ?? 5);
const queries = JSON.parse(readFileSync(0, 'utf8'));

// The block files, relative to dataDir.
const files = [];
for (const block of readdirSync(dataDir).sort()) {
  const dir = path.join(dataDir, block);
  if (!statSync(dir).isDirectory()) continue;
  for (const f of ['meta.json', 'index', 'tombstones']) {
    try { if (statSync(path.join(dir, f)).isFile()) files.push(`${block}/${f}`); } catch { /* absent */ }
  }
  try {
    for (const c of readdirSync(path.join(dir, 'chunks')).sort()) files.push(`${block}/chunks/${c}`);
  } catch { /* no chunks */ }
}
if (!files.some((f) => f.endsWith('/meta.json'))) {
  console.error(`wasm_bench: no blocks under ${dataDir}`);
  process.exit(1);
}

/** Resident and peak memory (KiB) of Chromium's renderer processes under this node process. */
function rendererMemory() {
  const kids = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(d));
    } catch { /* gone */ }
  }
  const todo = [process.pid];
  let rss = 0; let hwm = 0;
  while (todo.length) {
    const p = todo.pop();
    for (const c of kids.get(p) ?? []) {
      todo.push(c);
      try {
        if (!readFileSync(`/proc/${c}/cmdline`, 'utf8').includes('--type=renderer')) continue;
        const st = readFileSync(`/proc/${c}/status`, 'utf8');
        rss += Number(st.match(/VmRSS:\s+(\d+)/)?.[1] ?? 0);
        hwm = Math.max(hwm, Number(st.match(/VmHWM:\s+(\d+)/)?.[1] ?? 0));
      } catch { /* gone */ }
    }
  }
  return { renderer_rss_kib: rss, renderer_peak_kib: hwm };
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--enable-precise-memory-info'],
});
try {
  const page = await browser.newPage();
  page.on('console', (m) => { // (the document's favicon 404 is noise)
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) console.error(`page: ${m.text()}`);
  });
  page.on('pageerror', (e) => console.error(`page error: ${e}`));
  // The loader script as the document: same origin and directory as the
  // worker, without starting the app (and its own worker).
  const base = url.replace(/\/?$/, '/');
  const resp = await page.goto(`${base}emberlens-worker_loader.js`);
  if (!resp || !resp.ok()) throw new Error(`cannot load ${base}emberlens-worker_loader.js (is --web.ui-path the built app?)`);

  // One hidden file input per file, so names and File objects pair up.
  await page.evaluate((n) => {
    for (let i = 0; i < n; i++) {
      const input = document.createElement('input');
      input.type = 'file';
      input.id = `bench-file-${i}`;
      input.style.display = 'none';
      document.documentElement.appendChild(input);
    }
  }, files.length);
  for (let i = 0; i < files.length; i++) {
    await page.setInputFiles(`#bench-file-${i}`, path.join(dataDir, files[i]));
  }

  const open = await page.evaluate(async (names) => {
    const worker = new Worker('./emberlens-worker_loader.js', { name: 'emberlens-worker' });
    const pending = new Map();
    let nextId = 1;
    let readyResolve;
    const ready = new Promise((r) => { readyResolve = r; });
    worker.onmessage = (ev) => {
      const d = ev.data;
      if (d.id === 0 && d.body && d.body.Ready) { readyResolve(d.body.Ready); return; }
      const p = pending.get(d.id);
      if (p) { pending.delete(d.id); p(d); }
    };
    worker.onerror = (e) => { console.error(`worker error: ${e.message}`); };
    window.benchSend = (body, files) => new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      const msg = { id, version: 5, body }; // PROTOCOL_VERSION
      if (files) msg.files = files;
      worker.postMessage(msg);
    });
    const r = await Promise.race([ready, new Promise((_, rej) => setTimeout(() => rej(new Error('worker not ready in 60 s')), 60000))]);
    const fs = names.map((_, i) => document.getElementById(`bench-file-${i}`).files[0]);
    const t0 = performance.now();
    const opened = await window.benchSend({ OpenFiles: { names } }, fs);
    return { ready: r, opened: opened.body, ms: performance.now() - t0 };
  }, files);
  if (!open.opened.Opened) throw new Error(`OpenFiles failed: ${JSON.stringify(open.opened)}`);
  const memOpen = rendererMemory();

  const results = [];
  for (const q of queries) {
    const r = await page.evaluate(async ({ q, runs }) => {
      const body = { Query: { expr: q.expr, time: q.time, base_url: null } };
      const warm = await window.benchSend(body);
      if (!warm.body.QueryResult) return { error: JSON.stringify(warm.body), times_ms: [] };
      const times = [];
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        const a = await window.benchSend(body);
        times.push(performance.now() - t0);
        if (!a.body.QueryResult) return { error: JSON.stringify(a.body), times_ms: times };
      }
      const ans = warm.body.QueryResult;
      const series = ans.series.map((s) => ({
        labels: Object.fromEntries(s.labels),
        points: s.timestamps_ms.map((t, i) => [t, String(s.values[i])]),
      }));
      if (ans.scalar) series.push({ labels: {}, points: [[ans.scalar[0], String(ans.scalar[1])]] });
      return { times_ms: times, error: null, result_type: ans.result_type, answer: series };
    }, { q, runs });
    results.push({ name: q.name, ...r });
    const med = r.times_ms.length ? [...r.times_ms].sort((a, b) => a - b)[Math.floor(r.times_ms.length / 2)] : NaN;
    console.error(`  ${q.name.padEnd(32)} wasm ${med.toFixed(1).padStart(7)} ms${r.error ? `  ERROR ${r.error}` : ''}`);
  }
  const jsHeap = await page.evaluate(() => (performance.memory
    ? { used_js_heap: performance.memory.usedJSHeapSize, total_js_heap: performance.memory.totalJSHeapSize }
    : null));
  process.stdout.write(JSON.stringify({
    files: files.length,
    open_ms: open.ms,
    opened: open.opened.Opened,
    memory: { after_open: memOpen, after_queries: rendererMemory(), page_js_heap: jsHeap },
    results,
  }));
} finally {
  await browser.close();
}
