// Loads the landing page in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) and prints what happened as one JSON object: console messages, page errors,
// every request the page made, the visible text. Screenshots (light and dark) go to OUT_DIR.
//
//   node tests/browser/landing.mjs URL OUT_DIR
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [url, outDir] = process.argv.slice(2);
if (!url || !outDir) {
  console.error("usage: landing.mjs URL OUT_DIR");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const result = { console: [], pageErrors: [], requests: [], failed: [], text: {}, status: {} };
try {
  for (const scheme of ["light", "dark"]) {
    // the harness's test CA is not in Chromium's store; the proxy's TLS is tested elsewhere
    const context = await browser.newContext({ colorScheme: scheme, ignoreHTTPSErrors: true });
    const page = await context.newPage();
    page.on("console", (m) => result.console.push({ scheme, type: m.type(), text: m.text() }));
    page.on("pageerror", (e) => result.pageErrors.push({ scheme, text: String(e) }));
    page.on("request", (r) => result.requests.push(r.url()));
    page.on("requestfailed", (r) => result.failed.push({ url: r.url(), error: r.failure()?.errorText }));
    const resp = await page.goto(url, { waitUntil: "networkidle", timeout: 30000 });
    result.status[scheme] = resp ? resp.status() : 0;
    result.text[scheme] = await page.evaluate(() => document.body.innerText);
    result.background = result.background || {};
    result.background[scheme] = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.screenshot({ path: `${outDir}/landing-${scheme}.png`, fullPage: true });
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
