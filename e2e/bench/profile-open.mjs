// Benchmark (not a test): time from picking a profile file in the app to its
// first flamegraph drawn (decode + model + tree + layout + paint, all in the
// worker, Wasm), and the peak resident memory of Chromium's renderer
// processes (the tab and its worker) meanwhile. Each file is opened in a
// fresh browser, so peaks don't carry over.
//
//   node e2e/bench/profile-open.mjs FILE...
// with EMBERLENS_BIN (a release build is fairer) and EMBERLENS_UI (app/dist)
// as for the tests. Prints one line per file.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { startServer, launchBrowser, until } from '../lib/harness.js';

/** Chromium renderer processes now: pid -> VmHWM (peak RSS, KiB). */
function renderers() {
  const out = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (!readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('--type=renderer')) continue;
      const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${d}/status`, 'utf8'));
      if (m) out.set(Number(d), Number(m[1]));
    } catch { /* gone */ }
  }
  return out;
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node e2e/bench/profile-open.mjs FILE...');
  process.exit(2);
}
const server = await startServer(['--scrape.interval=1s']);
try {
  for (const file of files) {
    const already = renderers();
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
      await page.goto(server.url);
      await until(async () => page.getByTestId('open-profile').isEnabled(), 20_000, 'the profile view');
      const t0 = Date.now();
      await page.getByTestId('open-profile').setInputFiles(file);
      await until(async () => {
        if (await page.getByTestId('profile-error').isVisible()) {
          throw new Error(`${file}: ${await page.getByTestId('profile-error').textContent()}`);
        }
        return /total/.test(await page.getByTestId('flame-status').textContent());
      }, 600_000, `the first draw of ${file}`);
      const ms = Date.now() - t0;
      const status = await page.getByTestId('flame-status').textContent();
      // The new renderers are this browser's (the page and its worker).
      let peak = 0;
      for (const [pid, kib] of renderers()) if (!already.has(pid)) peak = Math.max(peak, kib);
      console.log(`${path.basename(file)} (${(statSync(file).size / 1e6).toFixed(1)} MB): wasm open to first draw ${(ms / 1000).toFixed(2)} s, peak renderer RSS ${(peak / 1024).toFixed(0)} MiB; ${status}`);
    } finally {
      await browser.close();
    }
  }
} finally {
  await server.stop();
}
