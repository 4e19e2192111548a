import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/** Debian's Chromium, as `.ci/run` installs it; never a browser downloaded by Playwright. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Honest skip rule: a developer machine without Chromium skips (and says so in the test's name);
 * under CI (`CI` set, as `.ci/run` does) the test always runs, so a missing browser fails it.
 */
export const skipBrowser = !existsSync(CHROMIUM) && !process.env.CI;
export const skippedTitle = `SKIPPED: ${CHROMIUM} is missing (apt-get install chromium; with CI set this test fails instead)`;

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}
