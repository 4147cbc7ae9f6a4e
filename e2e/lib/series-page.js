// Page object for the series panel (the app's first screen).
export class SeriesPage {
  constructor(page) {
    this.page = page;
    this.chart = page.getByTestId('chart');
    this.legendItems = page.getByTestId('legend-item');
    this.error = page.getByTestId('error');
    this.selector = page.getByTestId('selector');
    this.workerStatus = page.getByTestId('worker-status');
    this.panel = page.getByTestId('series-panel');
    this.source = page.getByTestId('source');
    this.sourceError = page.getByTestId('source-error');
  }

  async open(url) {
    await this.page.goto(url);
  }

  /** Waits until the chart was drawn with at least one sample; returns its data attributes. */
  async waitForChart(timeoutMs = 20_000) {
    await this.page.waitForFunction(() => {
      const c = document.querySelector('[data-testid="chart"]');
      return c && c.dataset.drawnMs && Number(c.dataset.sampleCount) > 0;
    }, null, { timeout: timeoutMs });
    return this.chart.evaluate((c) => ({ ...c.dataset }));
  }

  async legend() {
    return this.legendItems.evaluateAll((items) => items.map((li) => ({
      series: li.dataset.series, samples: Number(li.dataset.samples),
    })));
  }

  /** Pixels of the canvas whose colour is within `tolerance` of `[r, g, b]`. */
  async countPixels([r, g, b], tolerance = 12) {
    return this.chart.evaluate((c, [r, g, b, tol]) => {
      const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
      let n = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (Math.abs(data[i] - r) <= tol && Math.abs(data[i + 1] - g) <= tol && Math.abs(data[i + 2] - b) <= tol) n++;
      }
      return n;
    }, [r, g, b, tolerance]);
  }

  async query(selector) {
    await this.selector.fill(selector);
    await this.page.getByTestId('run').click();
  }

  /** Waits until the worker answered Hello; returns how it cancels local queries (`flag` or `restart`). */
  async waitForWorker(timeoutMs = 20_000) {
    await this.page.waitForFunction(
      () => document.querySelector('[data-testid="worker-status"]')?.dataset.state === 'ready', null, { timeout: timeoutMs });
    return this.workerStatus.getAttribute('data-cancel');
  }

  /** Opens a snapshot folder (its block directories) in the worker; resolves with the source label. */
  async openFolder(dir, timeoutMs = 30_000) {
    await this.page.getByTestId('open-folder').setInputFiles(dir);
    await this.page.waitForFunction(
      () => document.querySelector('[data-testid="source"]')?.dataset.kind === 'local', null, { timeout: timeoutMs });
    return this.source.textContent();
  }

  /** Types a snapshot URL into the source bar and opens it (does not wait). */
  async openUrl(url) {
    await this.page.getByTestId('open-url').fill(url);
    await this.page.getByTestId('open-url-button').click();
  }

  /** The panel's data attributes (`running`, `cancelPath`). */
  async state() {
    return this.panel.evaluate((p) => ({ ...p.dataset }));
  }

  async waitUntilRunning(running, timeoutMs = 20_000) {
    await this.page.waitForFunction(
      (want) => document.querySelector('[data-testid="series-panel"]')?.dataset.running === want,
      String(running), { timeout: timeoutMs });
  }

  /**
   * Clicks Cancel and resolves with the milliseconds, measured in the page,
   * until the error message is shown (rejects after `timeoutMs`).
   */
  async cancelAndTimeError(timeoutMs = 10_000) {
    return this.page.evaluate((limit) => new Promise((resolve, reject) => {
      const err = document.querySelector('[data-testid="error"]');
      const shown = () => !err.hidden && err.textContent.length > 0;
      if (shown()) { reject(new Error(`an error is already shown: ${err.textContent}`)); return; }
      const t0 = performance.now();
      const obs = new MutationObserver(() => {
        if (shown()) { obs.disconnect(); resolve(performance.now() - t0); }
      });
      obs.observe(err, { attributes: true, childList: true, subtree: true, characterData: true });
      setTimeout(() => { obs.disconnect(); reject(new Error(`no error within ${limit} ms of Cancel`)); }, limit);
      document.querySelector('[data-testid="cancel"]').click();
    }), timeoutMs);
  }
}
