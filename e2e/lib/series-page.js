// Page object for the series panel (the app's first screen).
export class SeriesPage {
  constructor(page) {
    this.page = page;
    this.chart = page.getByTestId('chart');
    this.legendItems = page.getByTestId('legend-item');
    this.error = page.getByTestId('error');
    this.selector = page.getByTestId('selector');
    this.workerStatus = page.getByTestId('worker-status');
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
}
