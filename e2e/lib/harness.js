// Starts a real emberlens on a free loopback port and Debian's Chromium, for one test file.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '..', '..');
export const outDir = path.join(repo, 'e2e', 'test-results');

const bin = process.env.EMBERLENS_BIN ?? path.join(repo, 'target', 'debug', 'emberlens');
const ui = process.env.EMBERLENS_UI ?? path.join(repo, 'app', 'dist');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Starts `emberlens serve` on 127.0.0.1:0; resolves once it printed its URL. */
export async function startServer(extraArgs = []) {
  for (const [what, p] of [['emberlens binary', bin], ['built app', path.join(ui, 'index.html')], ['chromium', chromiumPath]]) {
    if (!existsSync(p)) throw new Error(`${what} not found at ${p} (run tools/test.sh, which builds it)`);
  }
  const dataDir = mkdtempSync(path.join(tmpdir(), 'emberlens-e2e-'));
  const child = spawn(bin, ['serve', '--web.listen-address', '127.0.0.1:0', '--storage.tsdb.path', dataDir,
    '--web.ui-path', ui, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`emberlens did not start within 20 s\n${stderr}`)), 20_000);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`emberlens exited with ${code}\n${stderr}`)); });
  });
  return {
    url,
    pid: child.pid,
    stderr: () => stderr,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls `fn` until it returns a truthy value or `ms` pass. */
export async function until(fn, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Launches Debian's Chromium headless, with the flags this closed network needs. */
export async function launchBrowser() {
  mkdirSync(outDir, { recursive: true });
  return chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
