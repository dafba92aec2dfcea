import { accessSync, constants } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/** Debian's `chromium` package; `CHROMIUM_PATH` points elsewhere. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Flags for a headless system Chromium in a container: no sandbox (CI runs as root), no GPU, and
 * nothing that reaches the network on its own (the machine has none beyond loopback).
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
] as const;

/** Whether the system Chromium is there to drive; if not, why. */
export function chromiumAvailability(): { ok: true } | { ok: false; reason: string } {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
    return { ok: true };
  } catch {
    return {
      ok: false,
      reason: `no Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH)`,
    };
  }
}

/** Launches the system Chromium through playwright-core (its own browser downloads are not used). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS], timeout: 30_000 });
}
