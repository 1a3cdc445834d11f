// Loads the landing page in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) and prints what happened as one JSON object: console messages, page errors,
// every request the page made, the visible text. Screenshots (light and dark) go to OUT_DIR.
//
//   node tests/browser/landing.mjs URL OUT_DIR [QUERY]
//
// With QUERY, the page's search box is used as a person with a keyboard would (type, Enter,
// Tab to the first result's Copy), in both schemes and once more 390 px wide: the results'
// text, where the focus went, and whether the page scrolls sideways.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [url, outDir, query] = process.argv.slice(2);
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
const result = { console: [], pageErrors: [], requests: [], failed: [], text: {}, status: {}, dialogs: [], search: {} };

// type the query into the focused box, Enter, wait for the answer; then Tab twice
async function search(page, name) {
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
  await page.keyboard.type(query);
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.getElementById("search-status").textContent.match(/found|Nothing|failed|Search/i) && !document.getElementById("search-status").textContent.startsWith("Searching"), null, { timeout: 15000 });
  const found = await page.evaluate(() => ({
    status: document.getElementById("search-status").textContent,
    items: [...document.querySelectorAll("#results li")].map((li) => li.innerText),
  }));
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  found.tabbed = await page.evaluate(() => {
    const a = document.activeElement;
    return a ? { tag: a.tagName, copy: a.dataset.copy || null, text: a.textContent } : null;
  });
  found.focusedFirst = focused;
  found.scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.screenshot({ path: `${outDir}/landing-search-${name}.png`, fullPage: true });
  result.search[name] = found;
}
try {
  for (const scheme of ["light", "dark"]) {
    // the harness's test CA is not in Chromium's store; the proxy's TLS is tested elsewhere
    const context = await browser.newContext({ colorScheme: scheme, ignoreHTTPSErrors: true });
    const page = await context.newPage();
    page.on("console", (m) => result.console.push({ scheme, type: m.type(), text: m.text() }));
    page.on("pageerror", (e) => result.pageErrors.push({ scheme, text: String(e) }));
    page.on("request", (r) => result.requests.push(r.url()));
    page.on("requestfailed", (r) => result.failed.push({ url: r.url(), error: r.failure()?.errorText }));
    page.on("dialog", (d) => { result.dialogs.push(d.message()); d.dismiss(); });
    const resp = await page.goto(url, { waitUntil: "networkidle", timeout: 30000 });
    result.status[scheme] = resp ? resp.status() : 0;
    result.text[scheme] = await page.evaluate(() => document.body.innerText);
    result.background = result.background || {};
    result.background[scheme] = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.screenshot({ path: `${outDir}/landing-${scheme}.png`, fullPage: true });
    if (query) await search(page, scheme);
    await context.close();
  }
  if (query) {
    // a phone
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, ignoreHTTPSErrors: true });
    const page = await context.newPage();
    page.on("console", (m) => result.console.push({ scheme: "390", type: m.type(), text: m.text() }));
    page.on("pageerror", (e) => result.pageErrors.push({ scheme: "390", text: String(e) }));
    page.on("request", (r) => result.requests.push(r.url()));
    page.on("dialog", (d) => { result.dialogs.push(d.message()); d.dismiss(); });
    await page.goto(url, { waitUntil: "networkidle", timeout: 30000 });
    await search(page, "390");
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
