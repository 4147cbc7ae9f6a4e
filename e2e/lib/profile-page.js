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
