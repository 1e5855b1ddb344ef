// Drives nabla's page in headless Chromium for tests/browser.rs, and for the browser figures in
// BENCHMARKS.md: `node tests/browser/drive.mjs OUT_DIR QUERY [TIMEOUT_S]`.
//
// It serves web/www on 127.0.0.1 and opens the page with QUERY (e.g. preset=default&train=2000&epochs=3).
// It presses Start, pauses after the first report and resumes, and waits for training to finish. It
// draws a digit on the pad with the mouse, saves a screenshot and the model (through the Save button),
// presses Reset, and opens the page once more with WebGPU hidden. What the page reported goes to
// OUT_DIR/results.json. The Rust test judges the results; this script only fails when the page cannot
// be driven (no browser, no WebGPU, an error on the page, a timeout).

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { serve } from "../../web/serve.mjs";

const [out, query = "", timeoutText = "300"] = process.argv.slice(2);
if (!out) {
  console.error("usage: node tests/browser/drive.mjs OUT_DIR QUERY [TIMEOUT_S]");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const timeout = Number(timeoutText) * 1000;
const log = [];
const results = { query, log };
const finish = (code) => {
  writeFileSync(join(out, "results.json"), JSON.stringify(results, null, 2));
  process.exit(code);
};

const server = await serve(0);
const url = `http://127.0.0.1:${server.address().port}/?${query}`;
let browser;
try {
  browser = await chromium.launch({
    // The test command exports CHROMIUM (Debian's /usr/bin/chromium unless it says otherwise).
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    // WebGPU on Linux is behind --enable-unsafe-webgpu; without a GPU Chromium runs it on SwiftShader.
    // The rest keeps Chromium off the network, which these machines do not reach.
    args: [
      "--no-sandbox",
      "--enable-unsafe-webgpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
} catch (error) {
  results.error = `Chromium did not start: ${error.message}`;
  finish(1);
}

try {
  const page = await browser.newPage({ viewport: { width: 1180, height: 980 }, acceptDownloads: true });
  page.on("console", (message) => log.push(`${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => log.push(`pageerror: ${error.message}`));
  await page.goto(url);
  await page.waitForFunction(() => window.nabla?.ready || window.nabla?.error, null, { timeout: 120_000 });
  const began = Date.now();
  await page.click("#start");
  // Pause after the first report and resume once the loop has stopped: the run must not change.
  await page.waitForFunction(() => window.nabla.reports.length > 0 || window.nabla.error, null, { timeout });
  await page.click("#pause");
  await page.waitForFunction(() => !document.getElementById("start").disabled || window.nabla.error, null, { timeout });
  results.pausedAt = await page.evaluate(() => ({
    state: document.body.dataset.state,
    button: document.getElementById("start").textContent,
    steps: window.nabla.state.steps,
  }));
  await page.click("#start");
  await page.waitForFunction(
    () => document.body.dataset.state === "finished" || window.nabla.error,
    null,
    { timeout, polling: 250 },
  );
  results.wallSeconds = (Date.now() - began) / 1000;
  Object.assign(results, await page.evaluate(() => ({
    error: window.nabla.error,
    adapter: document.getElementById("adapter").textContent,
    architecture: document.getElementById("architecture").textContent,
    reports: window.nabla.reports,
    steps: window.nabla.state.steps,
    trainSeconds: window.nabla.state.trainMs / 1000,
    timeTo97: window.nabla.state.timeTo97,
  })));
  if (results.error) finish(1);

  // A "7": a stroke across the top, then down and to the left.
  const pad = await page.locator("#pad").boundingBox();
  const at = (x, y) => [pad.x + x * pad.width, pad.y + y * pad.height];
  await page.mouse.move(...at(0.25, 0.22));
  await page.mouse.down();
  await page.mouse.move(...at(0.75, 0.22), { steps: 12 });
  await page.mouse.move(...at(0.42, 0.82), { steps: 16 });
  await page.mouse.up();
  await page.waitForFunction(() => window.nabla.probabilities || window.nabla.error, null, { timeout: 60_000 });
  results.probabilities = await page.evaluate(() => window.nabla.probabilities);

  await page.screenshot({ path: join(out, "page.png"), fullPage: true });
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#save")]);
  await download.saveAs(join(out, "model.safetensors"));
  // Reset frees the session and offers a fresh start.
  await page.click("#reset");
  await page.waitForFunction(() => document.body.dataset.state === "ready" || window.nabla.error, null, { timeout: 60_000 });
  results.afterReset = await page.evaluate(() => ({
    button: document.getElementById("start").textContent,
    enabled: !document.getElementById("start").disabled,
    steps: document.getElementById("step").textContent,
  }));
  results.error = await page.evaluate(() => window.nabla.error);

  // The same page where the browser has no WebGPU must say so, and how to get it.
  const bare = await browser.newPage();
  await bare.addInitScript(() => Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined }));
  await bare.goto(url);
  await bare.waitForFunction(() => window.nabla?.ready || window.nabla?.error, null, { timeout: 60_000 });
  results.withoutWebGpu = await bare.evaluate(() => ({
    state: document.body.dataset.state,
    message: document.getElementById("message").textContent,
  }));
  await browser.close();
  server.close();
  finish(results.error ? 1 : 0);
} catch (error) {
  results.error = `driving the page failed: ${error.message}`;
  await browser?.close();
  finish(1);
}
