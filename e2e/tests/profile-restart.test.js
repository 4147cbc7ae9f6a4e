// A worker restart keeps the flamegraph: on a page without cross-origin
// isolation, cancelling a query the worker runs over opened files restarts
// the worker. The transferred canvas went away with the old worker (a canvas
// is transferred only once), so the profile view replaces its <canvas>,
// transfers the new one and opens its profile again in the new worker.
// The opened source is the server's own snapshot, so no fixture is needed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startServer, launchBrowser, repo } from '../lib/harness.js';
import { ProfilePage } from '../lib/profile-page.js';
import { SeriesPage } from '../lib/series-page.js';

const fixture = path.join(repo, 'worker', 'tests', 'fixtures', 'known-tree-cpu.pb.gz');
const ROW = 18; // DEFAULT_ROW_HEIGHT_CSS
// Tens of seconds in the worker, whatever data it holds.
const SLOW = 'quantile_over_time(0.5, vector(time())[6h:250ms])';

let server;
let browser;

before(async () => {
  server = await startServer(['--web.cross-origin-isolation=false', '--scrape.interval=1s']);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('after a worker restart the flamegraph is drawn again on a new canvas', async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const series = new SeriesPage(page);
  const app = new ProfilePage(page);
  await app.open(server.url);
  assert.equal(await series.waitForWorker(), 'restart');
  // The canvas's pixels live in the worker; a screenshot shows them. A
  // painted flamegraph compresses far worse than the blank canvas.
  const blank = (await app.canvas.screenshot()).length;
  await app.openProfile(fixture);
  await app.waitForStatus((d) => d.total === '10070000000');
  assert.equal(await app.canvas.getAttribute('data-generation'), '0');
  const painted = (await app.canvas.screenshot()).length;
  assert.ok(painted > 2 * blank, `painted ${painted} bytes, blank ${blank}`);

  // A local source (the server's snapshot), a slow local query, cancelled.
  // (The server's snapshot download answers no range requests, so the
  // .tar is opened as a file.)
  const snap = await (await fetch(`${server.url}api/v1/admin/tsdb/snapshot`, { method: 'POST' })).json();
  const tar = Buffer.from(await (await fetch(`${server.url}api/v1/snapshots/${snap.data.name}.tar`)).arrayBuffer());
  await page.getByTestId('open-files').setInputFiles({ name: 'snapshot.tar', mimeType: 'application/x-tar', buffer: tar });
  await page.waitForFunction(() => document.querySelector('[data-testid="source"]')?.dataset.kind === 'local', null, { timeout: 30_000 });
  await series.waitUntilRunning(false);
  await series.query(SLOW);
  await series.waitUntilRunning(true);
  await series.cancelAndTimeError();
  assert.equal((await series.state()).cancelPath, 'restart');

  // A new canvas, drawn by the new worker: hover is answered from it.
  await page.waitForFunction(() => document.querySelector('[data-testid="flame-canvas"]')?.dataset.generation === '1', null, { timeout: 20_000 });
  await app.waitForStatus((d) => d.total === '10070000000');
  const repainted = (await app.canvas.screenshot()).length;
  assert.ok(repainted > 2 * blank, `repainted ${repainted} bytes, blank ${blank}`);
  const { width, height } = await app.canvasSize();
  assert.equal(await app.hover(width / 2, height - ROW / 2), 'root');
  assert.equal(await app.hover(width * 0.4, height - 4.5 * ROW), 'main.funcA');
  assert.equal(await app.error.isHidden(), true, await app.error.textContent());
  assert.deepEqual(errors, []);
  await page.close();
});
