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

test('the top table sorts, and a function opens its sandwich: callers above, callees below', async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const app = new ProfilePage(page);
  await app.open(server.url);
  await app.openProfile(fixture);
  await app.waitForStatus((d) => d.total === '10070000000');
  // pprof's order: |flat| descending.
  const sortedBy = (rows, key) => rows.every((r, i) => i === 0 || Math.abs(rows[i - 1][key]) >= Math.abs(r[key]));
  const byFlat = await app.waitForTop();
  assert.ok(sortedBy(byFlat, 'flat'), JSON.stringify(byFlat));
  assert.ok(byFlat.some((r) => r.name === 'main.funcB'), JSON.stringify(byFlat));
  // By cum: runtime.main (every sample) first.
  await page.getByTestId('top-sort-cum').click();
  const byCum = await app.waitForTop((rows) => sortedBy(rows, 'cum') && rows[0].cum === 10070000000);
  assert.equal(byCum.length, byFlat.length);
  // By name, ascending.
  await page.getByTestId('top-sort-name').click();
  const names = (rows) => rows.map((r) => r.name);
  await app.waitForTop((rows) => JSON.stringify(names(rows)) === JSON.stringify([...names(rows)].sort()));

  // funcB's sandwich: the canvas's top half ends with the function on the
  // row above the root, its caller funcA above that; the bottom half starts
  // with the root, then the function.
  await app.sandwich('main.funcB');
  await app.waitForStatus((d) => d.sandwich === 'main.funcB');
  assert.match(await page.getByTestId('sandwich-bar').textContent(), /sandwich of main\.funcB/);
  const { width, height } = await app.canvasSize();
  const half = Math.floor(height / 2);
  assert.equal(await app.hover(width / 2, half - 1.5 * ROW), 'main.funcB');
  assert.equal(await app.hover(width / 2, half - 2.5 * ROW), 'main.funcA');
  assert.equal(await app.hover(width / 2, half + 1.5 * ROW), 'main.funcB');
  assert.match(await app.fragment(), /p\.sw=main\.funcB/);
  await page.screenshot({ path: path.join(outDir, 'profile-sandwich.png') });
  await app.sandwichClose.click();
  await app.waitForStatus((d) => d.sandwich === undefined);
  assert.equal(await app.hover(width / 2, height - ROW / 2), 'root');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a diff base: the flamegraph and the top table show the change, removing it shows the profile', async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const app = new ProfilePage(page);
  await app.open(server.url);
  await app.openProfile({ name: 'new.folded', mimeType: 'text/plain', buffer: Buffer.from('main;grow 30\nmain;same 10\nmain;shrink 5\n') });
  await app.waitForStatus((d) => d.total === '45');
  await app.openBase({ name: 'old.folded', mimeType: 'text/plain', buffer: Buffer.from('main;grow 10\nmain;same 10\nmain;shrink 20\n') });
  await app.waitForStatus((d) => d.diff === 'true');
  assert.match(await page.getByTestId('base-name').textContent(), /old\.folded/);
  // pprof -top -diff_base: new minus base per function.
  const rows = await app.waitForTop((r) => r.some((x) => x.name === 'grow' && x.flat === 20));
  assert.equal(rows.find((r) => r.name === 'shrink').flat, -15);
  assert.match(await page.getByTestId('top-caption').textContent(), /change against the base/);
  assert.match(await app.fragment(), /p\.base=file%3Aold\.folded/);
  await page.screenshot({ path: path.join(outDir, 'profile-diff.png') });
  await app.removeBase.click();
  await app.waitForStatus((d) => d.diff === 'false');
  await app.waitForTop((r) => r.some((x) => x.name === 'grow' && x.flat === 30));
  assert.doesNotMatch(await app.fragment(), /p\.base=/);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a share URL of a local file names the file, and opening it restores the view', async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const app = new ProfilePage(page);
  const link = '#p.src=file%3Aknown-tree-cpu.pb.gz&p.st=samples%2Fcount&p.focus=funcC&p.o=icicle&p.q=funcC';
  await app.open(server.url + link);
  await app.notice.waitFor({ state: 'visible', timeout: 20_000 });
  assert.match(await app.notice.textContent(), /known-tree-cpu\.pb\.gz/);
  assert.equal(await page.getByTestId('refine-focus').inputValue(), 'funcC');
  assert.equal(await app.search.inputValue(), 'funcC');
  await app.openProfile(fixture);
  // samples/count, focused on funcC: every sample left matches the search.
  const s = await app.waitForStatus((d) => d.matched !== undefined);
  assert.equal(await app.sampleType.inputValue(), '0');
  assert.ok(Number(s.total) > 0 && Number(s.total) < 1007, `samples ${s.total}`);
  assert.equal(s.matched, s.total);
  assert.equal(await app.notice.isHidden(), true);
  const { width } = await app.canvasSize();
  assert.equal(await app.hover(width / 2, ROW / 2), 'root', 'icicle: the root on top');
  // Zoom in (wheel), then reopen the page's own link: same options, same window.
  await app.canvas.hover({ position: { x: width / 2, y: 4.5 * ROW } });
  await page.mouse.wheel(0, -400);
  const zoomed = await app.waitForStatus((d) => d.window && !d.window.startsWith('0 '));
  const own = await app.fragment();
  assert.match(own, /p\.src=file%3Aknown-tree-cpu\.pb\.gz/);
  assert.match(own, /p\.win=/);
  const again = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  again.on('pageerror', (e) => errors.push(e.message));
  const app2 = new ProfilePage(again);
  await app2.open(server.url + own);
  await app2.openProfile(fixture);
  const restored = await app2.waitForStatusWhere('window', zoomed.window);
  assert.equal(restored.total, s.total);
  assert.deepEqual(errors, []);
  await again.close();
  await page.close();
});

test('a hostile share URL lists what is wrong and the view still works', async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const app = new ProfilePage(page);
  const link = '#p.src=url%3Ajavascript%3Aalert(1)&p.win=NaN%2C1&p.o=sideways&p.gran=%00&p.q=%ff%fe%&p.focus=' + 'a'.repeat(9000);
  await app.open(server.url + link);
  await app.linkError.waitFor({ state: 'visible', timeout: 20_000 });
  const text = await app.linkError.textContent();
  for (const want of [/not http\(s\)/, /zoom window/, /orientation/, /granularity/, /bytes long/]) assert.match(text, want);
  // Nothing was fetched or opened; a file still opens and draws.
  await app.openProfile(fixture);
  const s = await app.waitForStatus((d) => Number(d.boxes) > 5);
  assert.equal(s.total, '10070000000');
  assert.deepEqual(errors, []);
  await page.close();
});
