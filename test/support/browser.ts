import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium, headless, as the dashboard's browser tests drive it (playwright-core downloads no browser). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/**
 * Runs every teardown step even when an earlier one fails (say, Docker went away), so nothing is
 * left running; then throws the first failure.
 */
export async function tearDown(...steps: (() => Promise<unknown> | undefined)[]): Promise<void> {
  const problems: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (err) {
      problems.push(err);
    }
  }
  if (problems.length) throw problems[0];
}
