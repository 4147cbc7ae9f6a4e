// Page object for the profile view (flamegraph painted by the worker on a
// transferred OffscreenCanvas).
export class ProfilePage {
  constructor(page) {
    this.page = page;
    this.view = page.getByTestId('profile-view');
    this.openInput = page.getByTestId('open-profile');
    this.canvas = page.getByTestId('flame-canvas');
    this.status = page.getByTestId('flame-status');
    this.tooltip = page.getByTestId('flame-tooltip');
    this.search = page.getByTestId('flame-search');
    this.orientation = page.getByTestId('flame-orientation');
    this.reset = page.getByTestId('flame-reset');
    this.sampleType = page.getByTestId('sample-type');
    this.error = page.getByTestId('profile-error');
    this.notice = page.getByTestId('profile-notice');
    this.linkError = page.getByTestId('profile-link-error');
    this.openBaseInput = page.getByTestId('open-base');
    this.removeBase = page.getByTestId('remove-base');
    this.topRows = page.getByTestId('top-row');
    this.sandwichClose = page.getByTestId('sandwich-close');
    this.serverProfiles = page.getByTestId('server-profiles');
    this.serverRows = page.getByTestId('server-profile');
  }

  async openBase(file) {
    await this.openBaseInput.setInputFiles(file);
  }

  /** The top table's rows, in display order: [{ name, flat, cum }]. */
  async topTable() {
    return this.topRows.evaluateAll((rows) => rows.map((r) => ({
      name: r.dataset.name, flat: Number(r.dataset.flat), cum: Number(r.dataset.cum),
    })));
  }

  /** Waits until the top table has rows matching `pred(rows)`; returns them. */
  async waitForTop(pred = (rows) => rows.length > 0, timeoutMs = 20_000) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const rows = await this.topTable();
      if (pred(rows)) return rows;
      if (Date.now() > end) throw new Error(`top table never matched: ${JSON.stringify(rows).slice(0, 500)}`);
      await this.page.waitForTimeout(100);
    }
  }

  /** Clicks a function in the top table (opens its sandwich). */
  async sandwich(name) {
    await this.page.locator(`[data-testid="top-row"][data-name="${name}"] [data-testid="top-function"]`).click();
  }

  /** Opens the server-profiles panel and lists; resolves with the rows' ids. */
  async listServerProfiles(timeoutMs = 20_000) {
    if (!(await this.serverProfiles.evaluate((d) => d.open))) {
      await this.serverProfiles.locator('summary').click();
    }
    await this.page.getByTestId('server-profiles-list').click();
    await this.serverRows.first().waitFor({ timeout: timeoutMs });
    return this.serverRows.evaluateAll((rows) => rows.map((r) => r.dataset.id));
  }

  /** The fragment of the page's URL. */
  async fragment() {
    return this.page.evaluate(() => window.location.hash);
  }

  async open(url) {
    await this.page.goto(url);
  }

  async openProfile(file) {
    await this.openInput.setInputFiles(file);
  }

  /** Waits until the worker answered a draw matching `pred(dataset)`; returns the dataset. */
  async waitForStatus(pred = () => true, timeoutMs = 20_000) {
    const handle = await this.page.waitForFunction((src) => {
      const s = document.querySelector('[data-testid="flame-status"]');
      if (!s || !s.dataset.boxes) return null;
      const d = { ...s.dataset };
      // eslint-disable-next-line no-new-func
      return new Function('d', `return (${src})(d)`)(d) ? d : null;
    }, pred.toString(), { timeout: timeoutMs });
    return handle.jsonValue();
  }

  /** Waits until the status's `data-<key>` equals `value` (after a draw); returns the dataset. */
  async waitForStatusWhere(key, value, timeoutMs = 20_000) {
    const handle = await this.page.waitForFunction(([k, v]) => {
      const s = document.querySelector('[data-testid="flame-status"]');
      return s && s.dataset.boxes && s.dataset[k] === v ? { ...s.dataset } : null;
    }, [key, value], { timeout: timeoutMs });
    return handle.jsonValue();
  }

  /** Moves the pointer to CSS (x, y) of the canvas; resolves with the tooltip's box name. */
  async hover(x, y, timeoutMs = 10_000) {
    // Leave the canvas first: that hides the previous tooltip, so the one
    // waited for below is this position's answer.
    await this.page.mouse.move(0, 0);
    await this.tooltip.waitFor({ state: 'detached', timeout: timeoutMs });
    await this.canvas.hover({ position: { x, y } });
    await this.tooltip.waitFor({ timeout: timeoutMs });
    return this.tooltip.getAttribute('data-name');
  }

  async canvasSize() {
    return this.canvas.evaluate((c) => ({ width: c.clientWidth, height: c.clientHeight }));
  }
}
