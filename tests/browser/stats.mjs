// Loads the /_stats page in headless Chromium (as landing.mjs does) light, dark and 390 px wide,
// and prints one JSON object: status, visible text, console messages, the requests the page
// made, whether it scrolls sideways at 390 px, the background colours. Screenshots go to
// OUT_DIR (stats-light.png, stats-dark.png, stats-390.png).
//
//   node tests/browser/stats.mjs URL OUT_DIR
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [url, outDir] = process.argv.slice(2);
if (!url || !outDir) {
  console.error("usage: stats.mjs URL OUT_DIR");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const result = { status: {}, text: {}, console: [], requests: [], background: {}, scrollWidth: {}, svgs: {} };
try {
  for (const [name, options] of [
    ["light", { colorScheme: "light", viewport: { width: 1000, height: 900 } }],
    ["dark", { colorScheme: "dark", viewport: { width: 1000, height: 900 } }],
    ["390", { colorScheme: "light", viewport: { width: 390, height: 844 } }],
  ]) {
    const context = await browser.newContext({ ...options, ignoreHTTPSErrors: true });
    const page = await context.newPage();
    page.on("console", (m) => result.console.push({ name, type: m.type(), text: m.text() }));
    page.on("request", (r) => result.requests.push(r.url()));
    const resp = await page.goto(url, { waitUntil: "networkidle", timeout: 30000 });
    result.status[name] = resp ? resp.status() : 0;
    result.text[name] = await page.evaluate(() => document.body.innerText);
    result.background[name] = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    result.scrollWidth[name] = await page.evaluate(() => document.documentElement.scrollWidth);
    result.svgs[name] = await page.evaluate(() => [...document.querySelectorAll("svg")].map((s) => ({
      width: s.getBoundingClientRect().width, bars: s.querySelectorAll("rect").length })));
    await page.screenshot({ path: `${outDir}/stats-${name}.png`, fullPage: true });
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
