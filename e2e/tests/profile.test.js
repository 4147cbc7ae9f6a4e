// The profile view end to end: a real Go CPU profile (the known-tree
// fixture: runtime.main → main.main → main.run → funcA (80 %) → funcB, and
// funcC) picked in the app, decoded, laid out and painted by the worker on
// the canvas the page transferred to it; hover and click answered by the
// worker.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startServer, launchBrowser, outDir, repo, until } from '../lib/harness.js';
import { ProfilePage } from '../lib/profile-page.js';

const fixture = path.join(repo, 'worker', 'tests', 'fixtures', 'known-tree-cpu.pb.gz');
const ROW = 18; // DEFAULT_ROW_HEIGHT_CSS

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a picked pprof file is drawn by the worker, with hover, search, click-to-zoom and reset', async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') console.log('console error:', m.text()); });
  const app = new ProfilePage(page);
  await app.open(server.url);
  await app.openProfile(fixture);
  const first = await app.waitForStatus((d) => Number(d.boxes) > 5);
  assert.equal(first.total, '10070000000', 'the profile is 10.07 s of CPU');
  assert.deepEqual(await app.sampleType.evaluate((s) => [...s.options].map((o) => o.text)),
    ['samples/count', 'cpu/nanoseconds']);

  // Flame orientation: the root's row is the bottom one, then runtime.main,
  // main.main, main.run, and funcA over its left 80 %.
  const { width, height } = await app.canvasSize();
  assert.equal(await app.hover(width / 2, height - ROW / 2), 'root');
  assert.equal(await app.hover(width * 0.4, height - 4.5 * ROW), 'main.funcA');
  assert.equal(await app.hover(width * 0.9, height - 4.5 * ROW), 'main.funcC');
  await page.screenshot({ path: path.join(outDir, 'profile-flame.png') });

  // Search: funcB matches ~60 % of the profile.
  await app.search.fill('funcB');
  const searched = await app.waitForStatus((d) => d.matched !== undefined);
  const share = Number(searched.matched) / Number(searched.total);
  assert.ok(Math.abs(share - 0.5978) < 0.001, `funcB share ${share}`);
  await app.search.fill('');
  await app.waitForStatus((d) => d.matched === undefined);

  // Click funcA: the window becomes funcA's extent, so funcA spans the width.
  await app.canvas.click({ position: { x: width * 0.4, y: height - 4.5 * ROW } });
  const zoomed = await app.waitForStatus((d) => d.window && !d.window.startsWith('0 10070000000'));
  const [start, end] = zoomed.window.split(' ').map(Number);
  assert.ok(Math.abs((end - start) / 10070000000 - 0.7984) < 0.001, `window ${zoomed.window}`);
  assert.equal(await app.hover(width * 0.95, height - 4.5 * ROW), 'main.funcA');

  // Icicle: the root's row moves to the top.
  await app.orientation.click();
  await app.reset.click();
  await app.waitForStatus((d) => d.window === '0 10070000000');
  assert.equal(await app.hover(width / 2, ROW / 2), 'root');
  await page.screenshot({ path: path.join(outDir, 'profile-icicle.png') });

  assert.equal(await app.error.isHidden(), true, await app.error.textContent());
  assert.deepEqual(errors, []);
  await page.close();
});

test('a file that is no profile names itself in the error; folded stacks and a .cpuprofile open', async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const app = new ProfilePage(page);
  await app.open(server.url);
  // A truncated gzip stream: an error naming the file, no draw.
  await app.openProfile({ name: 'junk.pb.gz', mimeType: 'application/gzip', buffer: Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3]) });
  await app.error.waitFor({ state: 'visible', timeout: 20_000 });
  assert.match(await app.error.textContent(), /junk\.pb\.gz/);
  // Folded stacks (Brendan Gregg's collapsed format): one sample type.
  await app.openProfile({ name: 'stacks.folded', mimeType: 'text/plain', buffer: Buffer.from('main;work;hot 30\nmain;work;cold 10\nmain 2\n') });
  const folded = await app.waitForStatus((d) => d.total === '42');
  assert.equal(Number(folded.total), 42);
  assert.deepEqual(await app.sampleType.evaluate((s) => [...s.options].map((o) => o.text)), ['samples/count']);
  assert.equal(await app.error.isHidden(), true);
  const { width, height } = await app.canvasSize();
  // Children sorted by name: cold (10 of 40) left of hot (30 of 40) under work.
  assert.equal(await app.hover(width * 0.9, height - 3.5 * ROW), 'hot');
  assert.equal(await app.hover(width * 0.1, height - 3.5 * ROW), 'cold');
  // Node's --cpu-prof output: samples and cpu time, cpu time drawn by default.
  await app.openProfile(path.join(repo, 'worker', 'pprof', 'tests', 'fixtures', 'node-known-tree.cpuprofile'));
  await app.waitForStatus((d) => d.total !== '42');
  assert.deepEqual(await app.sampleType.evaluate((s) => [...s.options].map((o) => o.text)), ['samples/count', 'cpu/nanoseconds']);
  assert.deepEqual(errors, []);
  await page.close();
});

test("pprof's refinements: focus narrows the flamegraph, hide drops frames, a bad regex is an error", async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const app = new ProfilePage(page);
  await app.open(server.url);
  await app.openProfile(fixture);
  await app.waitForStatus((d) => d.total === '10070000000');
  const { width, height } = await app.canvasSize();
  // focus=funcC: only funcC's samples (20 % of main.run by design), and
  // funcC fills the row above main.run.
  await page.getByTestId('refine-focus').fill('funcC');
  await page.getByTestId('refine-focus').press('Enter');
  const focused = await app.waitForStatus((d) => d.total !== '10070000000');
  const share = Number(focused.total) / 10070000000;
  assert.ok(Math.abs(share - 0.2) < 0.02, `funcC share ${share}`);
  assert.equal(await app.hover(width * 0.95, height - 4.5 * ROW), 'main.funcC');
  // hide=main\.run: its row goes, funcC moves down a row.
  await page.getByTestId('refine-hide').fill('main\\.run');
  await page.getByTestId('refine-hide').press('Enter');
  await until(async () => (await app.hover(width * 0.5, height - 3.5 * ROW)) === 'main.funcC', 10_000, 'funcC one row down');
  // A bad regex: the error names the option, the drawing stays.
  await page.getByTestId('refine-ignore').fill('(');
  await page.getByTestId('refine-ignore').press('Enter');
  await app.error.waitFor({ state: 'visible', timeout: 10_000 });
  assert.match(await app.error.textContent(), /ignore/);
  assert.equal(await app.hover(width * 0.5, height - 3.5 * ROW), 'main.funcC');
  assert.deepEqual(errors, []);
  await page.close();
});
