// Profiles from the server: a real emberlens profiling itself every 2 s
// (its embedded default config), listed in the profile view, one stored
// profile and the merge of all opened in the flamegraph (fetched and
// decoded by the worker), and the share URL of a stored profile reopening it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startServer, launchBrowser, outDir, until } from '../lib/harness.js';
import { ProfilePage } from '../lib/profile-page.js';

let server;
let browser;

before(async () => {
  server = await startServer(['--scrape.interval=2s']);
  browser = await launchBrowser();
  // Wait for two stored self-profiles (one per 2 s interval).
  await until(async () => {
    const r = await fetch(`${server.url}api/v1/profiles`);
    return (await r.json()).data.length >= 2;
  }, 60_000, 'two stored self-profiles');
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('stored profiles are listed, opened, merged and shared by URL', async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const app = new ProfilePage(page);
  await app.open(server.url);
  const ids = await app.listServerProfiles();
  assert.ok(ids.length >= 2, `listed ${ids}`);
  const targets = await page.getByTestId('server-profiles-target').evaluate((s) => [...s.options].map((o) => o.value));
  assert.ok(targets.some((t) => t.includes('__name__="process_cpu"')), JSON.stringify(targets));

  // One stored profile (the newest is listed first).
  await app.serverRows.first().getByTestId('server-profile-open').click();
  const one = await app.waitForStatusWhere('name', `stored profile ${ids[0]}`);
  assert.deepEqual(await app.sampleType.evaluate((s) => [...s.options].map((o) => o.text)), ['samples/count', 'cpu/nanoseconds']);
  const link = await app.fragment();
  assert.match(link, new RegExp(`p\\.src=id%3A${ids[0]}`));

  // The merge of every profile of the chosen target over the range.
  await page.getByTestId('server-profiles-target').selectOption(targets.find((t) => t.includes('process_cpu')));
  await page.getByTestId('server-profiles-merge').click();
  const merged = await app.waitForStatus((d) => d.name.startsWith('merge of {__name__="process_cpu"'));
  assert.ok(Number(merged.total) >= Number(one.total), `merge ${merged.total} < one ${one.total}`);
  assert.match(await app.fragment(), /p\.src=merge%3A\d+%3A\d+%3A/);
  await page.screenshot({ path: path.join(outDir, 'profile-server-merge.png') });

  // A selector that matches nothing: the server's message, named.
  await page.getByTestId('server-profiles-selector').fill('{job="nope"}');
  await page.getByTestId('server-profiles-selector').press('Enter');
  await page.getByTestId('server-profiles-merge').click();
  await app.error.waitFor({ state: 'visible', timeout: 20_000 });
  assert.match(await app.error.textContent(), /no profiles match/);

  // The stored profile's link reopens it by itself (no file needed).
  const again = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  again.on('pageerror', (e) => errors.push(e.message));
  const app2 = new ProfilePage(again);
  await app2.open(server.url + link);
  const reopened = await app2.waitForStatusWhere('name', `stored profile ${ids[0]}`);
  assert.equal(reopened.total, one.total);
  assert.equal(await app2.notice.isHidden(), true);
  assert.deepEqual(errors, []);
  await again.close();
  await page.close();
});
