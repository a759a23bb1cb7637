// Opens PAGE_URL in headless Chromium (the system's, through playwright-core) and prints, as
// one JSON line, what the page left in window.walletqlResult, with the browser's console
// errors and failed requests. Usage: node browser/run_page.mjs PAGE_URL [SCREENSHOT.png]
// CHROMIUM overrides /usr/bin/chromium.
import { chromium } from "playwright-core";

const [pageUrl, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const problems = [];
try {
  const page = await browser.newPage();
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  page.on("requestfailed", (r) => problems.push(`failed: ${r.url()} ${r.failure()?.errorText}`));
  await page.goto(pageUrl);
  await page.waitForFunction(() => window.walletqlResult !== undefined, null, { timeout: 90_000 });
  const result = await page.evaluate(() => window.walletqlResult);
  if (screenshot) await page.screenshot({ path: screenshot });
  console.log(JSON.stringify({ ...result, problems }));
} finally {
  await browser.close();
}
