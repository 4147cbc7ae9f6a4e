// Cancelling a running query from the app, on every path it can take:
// - a query the worker runs over opened files, on a cross-origin isolated
//   page: the shared flag (SharedArrayBuffer) stops it at its next step;
// - the same without isolation (the server started with
//   --web.cross-origin-isolation=false): the app restarts the worker, which
//   opens the same files again, and drops the other request in flight with
//   a clear error;
// - a query the worker forwards to the server: the fetch is aborted, and
//   the server stops evaluating it;
// and a snapshot on another origin still opens on the isolated page.
// Each time the panel shows Prometheus's canceled error within a second of
// the click, and the next query works.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, launchBrowser, until, repo } from '../lib/harness.js';
import { SeriesPage } from '../lib/series-page.js';

const fixture = path.resolve(repo, '..', 'shared', 'fixtures', 'tsdb', 'synthetic-6h', 'data');
const haveFixture = existsSync(fixture);
if (!haveFixture && process.env.CI === 'true') throw new Error(`CI=true but ${fixture} is missing`);
const skip = haveFixture ? false : `SKIPPED: ${fixture} not found`;

// Sorts a window of 86,400 subquery points at each of ~900 steps: tens of
// seconds in the worker and on the server, whatever data they hold
// (vector(time()) needs none).
const SLOW = 'quantile_over_time(0.5, vector(time())[6h:250ms])';
const CANCELED = 'query was canceled in expression evaluation';
// Cancel must show its error within this (the flag stops the engine at its
// next step, an abort is immediate, a restart does not wait for the worker).
const LATENCY_MS = 1000;

let isolated;
let plain;
let browser;
let work;

before(async () => {
  if (skip) return;
  // A 1 s self-scrape leaves the embedded default without its CPU
  // self-profile, whose collector (pprof-rs zeroes ~64 MiB per profile)
  // would add its own spikes of CPU to the "server stops" measurement.
  [isolated, plain] = await Promise.all([
    startServer(['--scrape.interval=1s']),
    startServer(['--web.cross-origin-isolation=false', '--scrape.interval=1s']),
  ]);
  browser = await launchBrowser();
  work = mkdtempSync(path.join(tmpdir(), 'emberlens-e2e-cancel-'));
});

after(async () => {
  await browser?.close();
  await isolated?.stop();
  await plain?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A page on `server` with its worker ready; checks the page's isolation. */
async function openApp(server, wantIsolated) {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const app = new SeriesPage(page);
  await app.open(server.url);
  const cancelBy = await app.waitForWorker();
  assert.equal(await page.evaluate(() => crossOriginIsolated), wantIsolated);
  assert.equal(cancelBy, wantIsolated ? 'flag' : 'restart');
  return { page, app, errors };
}

/**
 * Runs SLOW, lets it run for `runForMs`, cancels it; returns the latency.
 * `whileRunning` (optional) is awaited during the run instead of a sleep.
 */
async function startSlowThenCancel(app, runForMs = 1500, whileRunning = null) {
  await app.waitUntilRunning(false);
  await app.query(SLOW);
  await app.waitUntilRunning(true);
  await (whileRunning ? whileRunning() : new Promise((r) => setTimeout(r, runForMs)));
  // Still running: it is slow enough to need a cancel.
  assert.equal((await app.state()).running, 'true');
  assert.equal(await app.page.getByTestId('cancel').isEnabled(), true);
  const ms = await app.cancelAndTimeError();
  assert.equal(await app.error.textContent(), CANCELED);
  await app.waitUntilRunning(false);
  assert.equal(await app.page.getByTestId('cancel').isEnabled(), false);
  return ms;
}

/** Runs a quick query over the opened fixture and waits for its one series. */
async function quickQueryWorks(app) {
  await app.query('sum(fx_requests_total)');
  await until(async () => !(await app.error.isVisible()), 10_000, 'the error to clear');
  await until(async () => {
    const l = await app.legend();
    return l.length === 1 && l[0].series === '{}' && l[0].samples > 0;
  }, 20_000, 'the sum over the opened fixture');
}

test('isolated page: the shared flag stops a query running in the worker', { skip }, async () => {
  const { page, app, errors } = await openApp(isolated, true);
  assert.match(await app.openFolder(fixture), /3 blocks · 600 series/);
  const ms = await startSlowThenCancel(app);
  console.log(`cancel latency, shared flag: ${Math.round(ms)} ms`);
  assert.ok(ms < LATENCY_MS, `the error took ${ms} ms`);
  assert.equal((await app.state()).cancelPath, 'flag');
  await quickQueryWorks(app);
  assert.deepEqual(errors, []);
  await page.close();
});

test('page not isolated: the worker is restarted, reopens the files, drops the request in flight', { skip }, async () => {
  const { page, app, errors } = await openApp(plain, false);
  assert.match(await app.openFolder(fixture), /3 blocks · 600 series/);
  await app.waitUntilRunning(false);
  await app.query(SLOW);
  await app.waitUntilRunning(true);
  // Another request queues behind the busy worker: it must not hang.
  await app.openUrl(`${plain.url}no-such-snapshot.tar`);
  await new Promise((r) => setTimeout(r, 1500));
  const ms = await app.cancelAndTimeError();
  console.log(`cancel latency, worker restart: ${Math.round(ms)} ms`);
  assert.ok(ms < LATENCY_MS, `the error took ${ms} ms`);
  assert.equal(await app.error.textContent(), CANCELED);
  assert.equal((await app.state()).cancelPath, 'restart');
  await until(async () => app.sourceError.isVisible(), 5_000, 'the dropped request\'s error');
  assert.match(await app.sourceError.textContent(), /the worker was restarted to stop a cancelled query, and this request was dropped/);
  // The files are still the source, opened again by the new worker.
  assert.equal(await app.source.getAttribute('data-kind'), 'local');
  await quickQueryWorks(app);
  assert.deepEqual(errors, []);
  await page.close();
});

/** CPU time (user + system, in clock ticks) of process `pid`. */
function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

test('a query forwarded to the server: the request is aborted and the server stops', { skip }, async () => {
  const { page, app, errors } = await openApp(isolated, true);
  assert.equal(await app.source.getAttribute('data-kind'), 'server');
  const busyFor = async (ms) => {
    const t0 = cpuTicks(isolated.pid);
    await new Promise((r) => setTimeout(r, ms));
    return cpuTicks(isolated.pid) - t0;
  };
  let busy = 0;
  const ms = await startSlowThenCancel(app, 0, async () => {
    await new Promise((r) => setTimeout(r, 300));
    busy = await busyFor(1000);
  });
  // The server was evaluating it (a busy core is ~100 ticks a second; the
  // bound leaves room for a machine busy with other work).
  assert.ok(busy > 25, `the server used only ${busy} CPU ticks in a second of the query`);
  console.log(`cancel latency, aborted fetch: ${Math.round(ms)} ms`);
  assert.ok(ms < LATENCY_MS, `the error took ${ms} ms`);
  assert.equal((await app.state()).cancelPath, 'abort');
  // The server noticed the closed connection: it no longer evaluates.
  await new Promise((r) => setTimeout(r, 300));
  const after = await busyFor(1000);
  console.log(`server CPU ticks per second: ${busy} while the query ran, ${after} after the cancel`);
  assert.ok(after < 15, `the server used ${after} CPU ticks in the second after the cancel`);
  await app.query('up');
  await until(async () => (await app.legend()).some((l) => l.series.startsWith('up{')), 20_000, 'up from the server');
  assert.equal(await app.error.isVisible(), false);
  assert.deepEqual(errors, []);
  await page.close();
});

/** Serves `file` with range requests; `cors` adds the headers a cross-origin reader needs. */
async function snapshotHost(file, cors) {
  const size = statSync(file).size;
  const server = http.createServer((req, res) => {
    const h = cors ? {
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Allow-Headers': 'Range',
      'Access-Control-Expose-Headers': 'Content-Range, Content-Length',
    } : {};
    if (req.method === 'OPTIONS') { res.writeHead(204, h); res.end(); return; }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m) { res.writeHead(200, { ...h, 'Content-Length': size }); createReadStream(file).pipe(res); return; }
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), size - 1);
    res.writeHead(206, { ...h, 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${size}` });
    createReadStream(file, { start, end }).pipe(res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/snapshot.tar`, close: () => new Promise((r) => server.close(r)) };
}

test('isolated page: a snapshot on another origin opens when its host sends CORS headers', { skip }, async () => {
  const tar = path.join(work, 'snapshot.tar');
  execFileSync('tar', ['-cf', tar, '-C', fixture, '.']);
  const withCors = await snapshotHost(tar, true);
  const withoutCors = await snapshotHost(tar, false);
  try {
    const { page, app, errors } = await openApp(isolated, true);
    await app.openUrl(withoutCors.url);
    await until(async () => app.sourceError.isVisible(), 20_000, 'the error of a host without CORS');
    assert.match(await app.sourceError.textContent(), new RegExp(withoutCors.url.replace(/[.]/g, '\\.')));
    assert.equal(await app.source.getAttribute('data-kind'), 'server');

    await app.openUrl(withCors.url);
    await until(async () => (await app.source.getAttribute('data-kind')) === 'local', 20_000, 'the snapshot to open');
    assert.match(await app.source.textContent(), /snapshot\.tar · 3 blocks · 600 series/);
    await quickQueryWorks(app);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await withCors.close();
    await withoutCors.close();
  }
});
