// The real path: emberlens scrapes itself, the app's worker runs the PromQL
// range query against the server, the app draws it. A real server, a real
// browser, nothing mocked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startServer, launchBrowser, until, outDir } from '../lib/harness.js';
import { SeriesPage } from '../lib/series-page.js';

let server;
let browser;

before(async () => {
  // Scrape every second so a few samples exist within the test's first seconds.
  server = await startServer(['--scrape.interval', '1s']);
  browser = await launchBrowser();
  // Wait for three self-scrapes, so the page's first fetch has a line to draw.
  await until(async () => {
    const r = await fetch(`${server.url}api/v1/raw?match[]=process_resident_memory_bytes`);
    const body = await r.json();
    return body.data.result[0]?.values.length >= 3;
  }, 20_000, 'three self-scrapes');
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the chart shows the self-scraped series with its name and samples', async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const app = new SeriesPage(page);
  await app.open(server.url);
  const chart = await app.waitForChart();
  const host = new URL(server.url).host;

  const legend = await app.legend();
  assert.deepEqual(legend.map((l) => l.series),
    [`process_resident_memory_bytes{instance="${host}", job="emberlens"}`]);
  assert.ok(legend[0].samples > 0, `legend sample count ${legend[0].samples}`);
  assert.equal(Number(chart.sampleCount), legend[0].samples);
  assert.equal(chart.seriesCount, '1');

  // The line was really painted, in the legend's first colour (#7eb26d).
  const linePixels = await app.countPixels([0x7e, 0xb2, 0x6d]);
  assert.ok(linePixels > 20, `only ${linePixels} pixels in the series colour`);

  assert.equal(await app.workerStatus.getAttribute('data-state'), 'ready');
  assert.match(page.url(), /#q=process_resident_memory_bytes&range=15m$/);
  await page.screenshot({ path: path.join(outDir, 'chart.png') });
  console.log(`time from navigation to chart drawn: ${Math.round(Number(chart.drawnMs))} ms`);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a bad expression shows the parse error with its position; a good one recovers', async () => {
  const page = await browser.newPage();
  const app = new SeriesPage(page);
  await app.open(`${server.url}#q=up&range=5m`);
  await app.waitForChart();
  assert.deepEqual((await app.legend()).map((l) => l.series.split('{')[0]), ['up']);

  await app.query('up{');
  await until(async () => (await app.error.isVisible()), 10_000, 'the error message');
  assert.match(await app.error.textContent(), /1:4: parse error: unexpected end of input inside braces/);

  await app.query('scrape_samples_scraped');
  await until(async () => !(await app.error.isVisible()), 10_000, 'the error to clear');
  await until(async () => (await app.legend()).some((l) => l.series.startsWith('scrape_samples_scraped{')), 10_000, 'the new series');

  // PromQL, not just selectors: an aggregation drops the labels it sums away.
  await app.query('sum by (job) (up)');
  await until(async () => (await app.legend()).some((l) => l.series === '{job="emberlens"}'), 10_000, 'the sum by job');
  await page.close();
});

test('a shared URL reopens the same view', async () => {
  const page = await browser.newPage();
  const app = new SeriesPage(page);
  await app.open(`${server.url}#q=${encodeURIComponent('scrape_duration_seconds{job="emberlens"}')}&range=60m`);
  await app.waitForChart();
  assert.equal(await app.selector.inputValue(), 'scrape_duration_seconds{job="emberlens"}');
  assert.equal(await page.getByTestId('range').inputValue(), '60');
  assert.ok((await app.legend())[0].series.startsWith('scrape_duration_seconds{'));
  await page.close();
});
