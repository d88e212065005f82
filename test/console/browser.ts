/**
 * Debian's Chromium driven by puppeteer-core (no browser download): the
 * console's tests run in a real browser. Without /usr/bin/chromium they skip
 * with a message, except under CI, where .ci/run installs it and they must run.
 * Screenshots go to test-output/console/ for a reviewer to look at.
 */
import fs from "node:fs";
import path from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { ROOT } from "../harness/cli.js";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const SCREENSHOTS = path.join(ROOT, "test-output", "console");

/** Why the browser tests cannot run here, or undefined when they can. Under CI a missing browser is a failure, not a skip. */
export function browserMissing(): string | undefined {
  if (fs.existsSync(CHROMIUM)) return undefined;
  const why = `${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) to run the console's browser tests`;
  if (process.env.CI) throw new Error(`${why} (CI must run them: .ci/run installs it)`);
  console.warn(`SKIPPED test/console browser tests: ${why}`);
  return why;
}

export async function launchBrowser(): Promise<Browser> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  console.log(`console screenshots: ${SCREENSHOTS}`);
  // As root Chromium needs --no-sandbox; headless: true is the new headless mode.
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    defaultViewport: { width: 1400, height: 1000 },
  });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Collects what the page reports: script errors and CSP refusals fail the tests that check them. */
export function pageProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(`page error: ${(error as Error).message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/401|Unauthorized/.test(m.text())) problems.push(`console error: ${m.text()}`);
  });
  return problems;
}
