/**
 * The browser page (`GET /` on the REST API, web/) in a real Chromium: Debian's `chromium`
 * driven by playwright-core. It starts the local stack, uses the page from the keyboard, saves a
 * streamed and an async file through the browser's own downloads and checks their bytes, follows
 * the copy's progress as the page shows it, and shows a problem document.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumAvailability, launchChromium } from '../helpers/browser.ts';
import { type RunningStack, startStack } from '../helpers/local-stack.ts';
import { expectedSampleSha256, sha256OfStream } from '../helpers/sample-bytes.ts';

const MB = 1_000_000;
const availability = chromiumAvailability();
// Under CI a missing Chromium fails (launching it throws) instead of skipping.
const skip = !availability.ok && !process.env.CI;
const suiteName = availability.ok
  ? 'the browser page in Chromium'
  : `the browser page in Chromium (skipped: ${availability.reason})`;

/** A progress bar's attributes each time the page changed them, with the figures shown then. */
interface ProgressSample {
  row: string | null;
  value: number;
  max: number;
  percent: string;
  figures: string;
  valueText: string | null;
}

/**
 * Runs in the page (a string: the tests' types are Node's, not the DOM's): records every change
 * the page makes to a progress bar's value or max, with the row's percent and figures at that moment.
 */
const RECORD_PROGRESS = `
  window.progressSamples = [];
  new MutationObserver((records) => {
    for (const record of records) {
      const bar = record.target;
      if (bar.tagName !== 'PROGRESS' || !bar.hasAttribute('value')) continue;
      const item = bar.closest('li');
      window.progressSamples.push({
        row: item?.getAttribute('aria-label') ?? null,
        value: bar.value,
        max: bar.max,
        percent: item?.querySelector('.percent')?.textContent ?? '',
        figures: item?.querySelector('.figures')?.textContent ?? '',
        valueText: bar.getAttribute('aria-valuetext'),
      });
    }
  }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['value', 'max'] });
`;

/** Runs in the page: records how each row follows its copy (`data-channel`: live, reconnecting, polling). */
const RECORD_CHANNELS = `
  window.channels = [];
  new MutationObserver((records) => {
    for (const record of records) {
      window.channels.push({ row: record.target.getAttribute('aria-label'), channel: record.target.dataset.channel });
    }
  }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['data-channel'] });
`;

let stack: RunningStack;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let downloadDirectory: string;
const consoleErrors: string[] = [];

beforeAll(async () => {
  if (skip) return;
  downloadDirectory = await mkdtemp(join(tmpdir(), 'browser-page-'));
  // A 20 MB threshold: 5 MB streams, 30 MB goes async. Both start at once; a failure is reported
  // once the other one is kept, so that afterAll stops it.
  const [started, launched] = await Promise.allSettled([
    startStack({ STREAM_MAX_BYTES: String(20 * MB) }),
    launchChromium(),
  ]);
  if (started.status === 'fulfilled') stack = started.value;
  if (launched.status === 'fulfilled') browser = launched.value;
  for (const outcome of [started, launched]) if (outcome.status === 'rejected') throw outcome.reason;
  context = await browser.newContext({ acceptDownloads: true });
  page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(error.message));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  if (downloadDirectory) await rm(downloadDirectory, { recursive: true, force: true });
});

async function sha256OfFile(path: string): Promise<string> {
  return (await sha256OfStream(createReadStream(path))).sha256;
}

function row(label: string) {
  return page.locator(`li.download[aria-label="${label}"]`);
}

describe.skipIf(skip)(suiteName, () => {
  it('serves the page at / with a policy that lets exactly its own script and style run', async () => {
    const response = await page.goto(`${stack.endpoints.restApi}/`);

    expect(response?.status()).toBe(200);
    const policy = response?.headers()['content-security-policy'] ?? '';
    expect(policy).toMatch(/script-src 'sha256-[^']+'/);
    expect(policy).toContain("default-src 'none'");
    await expect.poll(() => page.locator('#api-base').textContent()).toBe(`${stack.endpoints.restApi}/`);
    await expect.poll(() => page.locator('#empty').isVisible()).toBe(true);
    // Every control has a name.
    for (const name of ['File key', 'Path']) expect(await page.getByLabel(name).count()).toBe(1);
    expect(consoleErrors.filter((text) => /Content Security Policy/i.test(text))).toEqual([]);
    // The root resource is `/` alone: other paths still have no route.
    expect((await fetch(`${stack.endpoints.restApi}/index.html`)).status).toBe(403);
  });

  it('streams a small file into the browser’s downloads, driven from the keyboard', async () => {
    await page.getByLabel('File key').focus();
    await page.keyboard.type('sample/5MB');
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.id')).toBe('mode');
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.textContent.trim()')).toBe('Download');
    const saving = page.waitForEvent('download');

    await page.keyboard.press('Enter');

    const download = await saving;
    // A navigation to the API, saved by the browser: not a blob assembled in the page.
    expect(download.url()).toBe(`${stack.endpoints.restApi}/download/sample/5MB`);
    const file = join(downloadDirectory, 'streamed.bin');
    await download.saveAs(file);
    expect(await download.failure()).toBeNull();
    expect(await sha256OfFile(file)).toBe(expectedSampleSha256(5 * MB));
    const streamed = row('sample/5MB');
    expect(await streamed.getAttribute('data-state')).toBe('streamed');
    expect(await streamed.locator('.badge').textContent()).toBe('Streamed');
    expect(await streamed.locator('.route').textContent()).toContain('fits the streaming limit');
  });

  it('follows an async copy over the WebSocket, shows its progress, then saves it from S3', async () => {
    const key = 'sample/30MB?rate=6000000';
    await page.evaluate(RECORD_PROGRESS);
    await page.getByLabel('File key').fill(key);
    const saving = page.waitForEvent('download', { timeout: 40_000 });

    await page.getByLabel('File key').press('Enter');

    const copying = row(key);
    await expect.poll(() => copying.getAttribute('data-state')).toBe('copying');
    expect(await copying.locator('.badge').textContent()).toBe('Copy to S3');
    expect(await copying.locator('.route').textContent()).toContain('larger than the API streams');
    await expect.poll(() => copying.getAttribute('data-channel')).toBe('live');
    const download = await saving;
    expect(download.url().startsWith(stack.endpoints.s3 as string)).toBe(true);
    const file = join(downloadDirectory, 'async.bin');
    await download.saveAs(file);
    expect(await sha256OfFile(file)).toBe(expectedSampleSha256(30 * MB));
    await expect.poll(() => copying.getAttribute('data-state')).toBe('ready');
    expect(await copying.locator('.percent').textContent()).toBe('100%');
    expect(await copying.getByRole('link', { name: `Save ${key} again from S3` }).count()).toBe(1);
    // Both downloads keep their own rows.
    expect(await page.locator('li.download').count()).toBe(2);

    const samples = ((await page.evaluate('window.progressSamples')) as ProgressSample[]).filter(
      (sample) => sample.row === key && sample.max === 30 * MB,
    );
    const values = samples.map((sample) => sample.value);
    for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThanOrEqual(values[i - 1] as number);
    // Several values seen while the copy ran, between nothing and everything, then 100%.
    expect(new Set(values.filter((value) => value > 0 && value < 30 * MB)).size).toBeGreaterThanOrEqual(2);
    expect(values.at(-1)).toBe(30 * MB);
    expect(samples.at(-1)?.valueText).toMatch(/^100%/);
    expect(samples.some((sample) => /^\d+%$/.test(sample.percent) && sample.percent !== '100%')).toBe(true);
    // The rate while copying (MB/s at ~6 MB/s upstream).
    expect(samples.some((sample) => /\d(\.\d)? MB\/s/.test(sample.figures))).toBe(true);
  });

  it('shows the problem document’s title and detail when the router refuses', async () => {
    const key = 'missing/report.csv';
    const problem = (await (await fetch(`${stack.endpoints.restApi}/download/${key}`)).json()) as {
      title: string;
      detail: string;
    };

    await page.getByLabel('File key').fill(key);
    await page.getByLabel('File key').press('Enter');

    const refused = row(key);
    await expect.poll(() => refused.getAttribute('data-state')).toBe('failed');
    const alert = refused.getByRole('alert');
    expect(await alert.locator('.problem-title').textContent()).toBe(problem.title);
    expect(await alert.locator('.problem-detail').textContent()).toBe(problem.detail);
    expect(await refused.locator('.badge').textContent()).toBe('Refused');
  });

  it('reconnects when the WebSocket drops and polls the status URL once the service closes it', async () => {
    const key = 'sample/24MB?rate=4000000';
    // Between the page and the WebSocket API: the first connection is dropped after its first
    // progress message; on the second, the service's `closed` message is added after one.
    let connections = 0;
    await page.routeWebSocket(
      (url) => url.searchParams.has('downloadId'),
      (socket) => {
        const attempt = ++connections;
        let intervened = false;
        const server = socket.connectToServer();
        socket.onMessage((message) => server.send(message));
        server.onMessage((message) => {
          socket.send(message);
          if (intervened || !String(message).includes('"type":"progress"')) return;
          intervened = true;
          if (attempt === 1) void socket.close({ code: 4000, reason: 'dropped by the test' });
          else {
            socket.send(
              JSON.stringify({
                type: 'closed',
                downloadId: JSON.parse(String(message)).downloadId,
                reason: { code: 'TooManyConnections', message: 'a newer connection replaced this one' },
              }),
            );
          }
        });
      },
    );
    await page.evaluate(RECORD_CHANNELS);
    await page.getByLabel('File key').fill(key);
    const saving = page.waitForEvent('download', { timeout: 40_000 });

    await page.getByLabel('File key').press('Enter');

    const download = await saving;
    const file = join(downloadDirectory, 'polled.bin');
    await download.saveAs(file);
    expect(await sha256OfFile(file)).toBe(expectedSampleSha256(24 * MB));
    await expect.poll(() => row(key).getAttribute('data-state')).toBe('ready');
    expect(connections).toBe(2);
    const channels = ((await page.evaluate('window.channels')) as { row: string; channel: string }[])
      .filter((entry) => entry.row === key)
      .map((entry) => entry.channel);
    expect(channels).toEqual(['connecting', 'live', 'reconnecting', 'live', 'polling']);
  });
});
