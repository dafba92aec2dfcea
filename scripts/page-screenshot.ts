/**
 * `npm run screenshot`: docs/page.png, the browser page in Chromium with one download in each
 * state (streamed, copied and ready, refused, copying). Starts its own local stack on free ports
 * and drives Debian's `chromium` (CHROMIUM_PATH) through playwright-core, like the end-to-end test.
 */
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../test/helpers/browser.ts';
import { startStack } from '../test/helpers/local-stack.ts';

const OUTPUT = fileURLToPath(new URL('../docs/page.png', import.meta.url));

// On the default port when it is free, so the page shows the URL `npm start` serves it at.
const stack = await startStack({ PORT: '3000' }).catch(() => startStack());
const browser = await launchChromium();
try {
  const context = await browser.newContext({
    acceptDownloads: true,
    viewport: { width: 1180, height: 900 },
    colorScheme: 'light',
  });
  const page = await context.newPage();
  await page.goto(`${stack.endpoints.restApi}/`);
  const start = async (key: string) => {
    await page.getByLabel('File key').fill(key);
    await page.getByLabel('File key').press('Enter');
  };
  const rowState = (key: string) =>
    page.locator(`li.download[aria-label="${key}"]`).getAttribute('data-state');
  const waitFor = async (check: () => Promise<boolean>, what: string) => {
    for (const started = Date.now(); Date.now() - started < 120_000; ) {
      if (await check()) return;
      await page.waitForTimeout(100);
    }
    throw new Error(`gave up waiting for ${what}`);
  };

  await page.getByRole('button', { name: 'sample/report.csv' }).click();
  await waitFor(async () => (await rowState('sample/report.csv?rows=20000')) === 'streamed', 'the CSV');
  await start('sample/150MB');
  await waitFor(async () => (await rowState('sample/150MB')) === 'streamed', 'the 150 MB stream');
  await start('sample/250MB');
  await waitFor(async () => (await rowState('sample/250MB')) === 'ready', 'the 250 MB copy');
  await start('archive/2025/q4-report.csv');
  await waitFor(async () => (await rowState('archive/2025/q4-report.csv')) === 'failed', 'the refusal');
  await page.getByRole('button', { name: 'sample/1GB' }).click();
  const copying = page.locator('li.download[aria-label="sample/1GB"] progress');
  await waitFor(async () => {
    const fraction = Number(await copying.getAttribute('value')) / Number(await copying.getAttribute('max'));
    return fraction >= 0.4 && fraction < 0.7;
  }, 'the 1 GB copy to pass 40%');
  await page.getByLabel('File key').fill('');
  await page.evaluate('document.activeElement?.blur()');
  await page.mouse.move(0, 0);
  // Let the bar's transition settle.
  await page.waitForTimeout(500);
  await mkdir(new URL('../docs/', import.meta.url), { recursive: true });
  await page.screenshot({ path: OUTPUT, fullPage: true });
  console.log(`wrote ${OUTPUT}`);
} finally {
  await browser.close();
  await stack.stop();
}
