// Usage at a glance (src/stats.rs decides what goes where): one Analytics Engine data point per
// request, and the /_stats page drawn from Analytics Engine's SQL API as server-rendered SVG.
// The SQL API token goes to the SQL API only; nothing here logs.

const SEP = "\u001f";

/**
 * One data point, written without waiting: `blobs` is the blobs joined by U+001F (one string
 * across the boundary), `doubles` a Float64Array; the first blob is the index. A dataset whose
 * write returns a promise (a test's recorder) is waited for after the response.
 */
export function writePoint(ctx, dataset, blobs, doubles) {
  const all = blobs.split(SEP);
  try {
    const written = dataset.writeDataPoint({ blobs: all, doubles: Array.from(doubles), indexes: [all[0]] });
    if (written && typeof written.then === "function") ctx.waitUntil(written.catch(() => {}));
  } catch {
    // a full dataset or a bad field never fails the request
  }
}

const DAYS = 30;

function queries(ds) {
  const since = `timestamp > NOW() - INTERVAL '${DAYS}' DAY`;
  const pull = "blob3 = 'manifest' AND blob4 = 'GET'";
  const fromCache = "blob5 IN ('HIT', 'STALE')";
  return {
    pulls: `SELECT toStartOfDay(timestamp) AS day, blob1 AS registry, SUM(_sample_interval) AS n FROM ${ds} WHERE ${pull} AND ${since} GROUP BY day, registry ORDER BY day`,
    cache: `SELECT toStartOfDay(timestamp) AS day, SUM(IF(${fromCache}, _sample_interval, 0)) AS hits, SUM(IF(blob5 != '', _sample_interval, 0)) AS cacheable, SUM(IF(${fromCache}, _sample_interval * double2, 0)) AS saved FROM ${ds} WHERE ${since} GROUP BY day ORDER BY day`,
    hub: `SELECT SUM(_sample_interval) AS n FROM ${ds} WHERE blob1 = 'docker.io' AND ${pull} AND ${fromCache} AND ${since}`,
    failures: `SELECT toStartOfDay(timestamp) AS day, SUM(IF(blob6 = 'limited', _sample_interval, 0)) AS limited, SUM(IF(double1 >= 500, _sample_interval, 0)) AS errors FROM ${ds} WHERE ${since} GROUP BY day ORDER BY day`,
    top: `SELECT blob1 AS registry, blob2 AS repository, SUM(_sample_interval) AS n FROM ${ds} WHERE ${pull} AND blob2 != '' AND ${since} GROUP BY registry, repository ORDER BY n DESC LIMIT 20`,
  };
}

async function sql(url, token, query) {
  const resp = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: query });
  if (!resp.ok) throw new Error(`the SQL API answered ${resp.status}`);
  const body = await resp.json();
  return Array.isArray(body.data) ? body.data : [];
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const num = (v) => Number(v) || 0;
const day = (v) => String(v).slice(0, 10);
const PALETTE = 6;

function bytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB", "PB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** Bars per day (`series`: name -> day -> value), stacked, in a 360-wide viewBox. */
function bars(title, days, series, { format = String } = {}) {
  const names = Object.keys(series);
  const totals = days.map((d) => names.reduce((s, n) => s + (series[n][d] || 0), 0));
  const max = Math.max(1, ...totals);
  const w = 360, h = 150, left = 34, bottom = 18, top = 8;
  const bw = (w - left) / Math.max(days.length, 1);
  let out = "";
  for (let t = 0; t <= 2; t++) {
    const v = (max * t) / 2, y = top + (h - top - bottom) * (1 - t / 2);
    out += `<line class="grid" x1="${left}" x2="${w}" y1="${y}" y2="${y}"/><text class="axis" x="${left - 4}" y="${y + 3}" text-anchor="end">${esc(format(Math.round(v)))}</text>`;
  }
  days.forEach((d, i) => {
    let y = h - bottom;
    names.forEach((n, k) => {
      const v = series[n][d] || 0;
      const bh = ((h - top - bottom) * v) / max;
      if (bh > 0) out += `<rect class="s${k % PALETTE}" x="${(left + i * bw + 1).toFixed(1)}" y="${(y - bh).toFixed(1)}" width="${Math.max(bw - 2, 1).toFixed(1)}" height="${bh.toFixed(1)}"><title>${esc(d)} ${esc(n)}: ${esc(format(v))}</title></rect>`;
      y -= bh;
    });
  });
  if (days.length) {
    out += `<text class="axis" x="${left}" y="${h - 4}">${esc(days[0])}</text><text class="axis" x="${w}" y="${h - 4}" text-anchor="end">${esc(days[days.length - 1])}</text>`;
  }
  const legend = names.map((n, k) => `<span class="key"><i class="k${k % PALETTE}"></i>${esc(n)}</span>`).join(" ");
  return `<section><h2>${esc(title)}</h2><svg viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(title)}">${out}</svg><p class="legend">${legend}</p></section>`;
}

function page(r) {
  const days = [...new Set([...r.pulls, ...r.cache, ...r.failures].map((x) => day(x.day)))].sort();
  const pulls = {};
  for (const x of r.pulls) ((pulls[x.registry] ??= {})[day(x.day)] = num(x.n));
  const hits = {}, misses = {};
  let hitSum = 0, cacheable = 0, saved = 0;
  for (const x of r.cache) {
    hits[day(x.day)] = num(x.hits);
    misses[day(x.day)] = Math.max(num(x.cacheable) - num(x.hits), 0);
    hitSum += num(x.hits); cacheable += num(x.cacheable); saved += num(x.saved);
  }
  const limited = {}, errors = {};
  for (const x of r.failures) { limited[day(x.day)] = num(x.limited); errors[day(x.day)] = num(x.errors); }
  const hub = num(r.hub[0]?.n);
  const topMax = Math.max(1, ...r.top.map((x) => num(x.n)));
  const top = r.top.map((x) => `<li><span class="repo">${esc(x.registry)}/${esc(x.repository)}</span><span class="bar" style="width:${((100 * num(x.n)) / topMax).toFixed(1)}%"></span><span class="n">${num(x.n)}</span></li>`).join("");
  const ratio = cacheable ? `${((100 * hitSum) / cacheable).toFixed(1)}%` : "–";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><meta name="robots" content="noindex"><link rel="icon" href="data:,">
<title>Usage: the last ${DAYS} days</title>
<style>
:root { color-scheme: light dark; --bg: #fbfbfa; --fg: #1d2023; --muted: #5b6470; --card: #f0f1f3; --accent: #0b63c5; --border: #d9dce1;
  --s0: #0b63c5; --s1: #d9730d; --s2: #2f9e44; --s3: #9c36b5; --s4: #c92a2a; --s5: #5c7080; }
@media (prefers-color-scheme: dark) { :root { --bg: #14171a; --fg: #e6e8eb; --muted: #9aa3ad; --card: #1e2328; --accent: #6cb0ff; --border: #2d333a;
  --s0: #6cb0ff; --s1: #ffa94d; --s2: #69db7c; --s3: #da77f2; --s4: #ff8787; --s5: #a5b4c3; } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }
main { max-width: 52rem; margin: 0 auto; padding: 2rem 1.25rem 3rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; } h2 { font-size: 1.1rem; margin: 2rem 0 .5rem; }
p { margin: .25rem 0 .75rem; color: var(--muted); }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); gap: .75rem; margin-top: 1rem; }
.figure { background: var(--card); border: 1px solid var(--border); border-radius: 8px; padding: .75rem 1rem; }
.figure b { display: block; font-size: 1.5rem; } .figure span { color: var(--muted); font-size: .9rem; }
svg { width: 100%; max-width: 40rem; height: auto; display: block; background: var(--card); border: 1px solid var(--border); border-radius: 8px; }
svg text { fill: var(--muted); font-size: 10px; } svg .grid { stroke: var(--border); stroke-width: 1; }
${[0, 1, 2, 3, 4, 5].map((k) => `.s${k} { fill: var(--s${k}); } .k${k} { background: var(--s${k}); }`).join("\n")}
.legend { font-size: .85rem; } .key { white-space: nowrap; margin-right: .75rem; }
.key i { display: inline-block; width: .7rem; height: .7rem; border-radius: 2px; margin-right: .3rem; vertical-align: -.05rem; }
ol { list-style: none; padding: 0; margin: 0; } li { display: grid; grid-template-columns: 1fr 5rem 3rem; gap: .5rem; align-items: center; padding: .3rem 0; border-bottom: 1px solid var(--border); font-size: .9rem; }
.repo { overflow-wrap: anywhere; } .bar { height: .6rem; background: var(--accent); border-radius: 2px; } .n { text-align: right; font-variant-numeric: tabular-nums; }
</style></head>
<body><main>
<h1>Usage</h1>
<p>The last ${DAYS} days, from Workers Analytics Engine (sampled counts).</p>
<div class="figures">
<div class="figure"><b>${esc(ratio)}</b><span>of cacheable requests answered from the cache</span></div>
<div class="figure"><b>${esc(bytes(saved))}</b><span>the upstreams did not send</span></div>
<div class="figure"><b>${hub}</b><span>Docker Hub pulls saved (manifest GETs from the cache)</span></div>
</div>
${bars("Pulls per day, per registry", days, pulls)}
${bars("Cacheable requests: from the cache, from the upstream", days, { "from the cache": hits, "from the upstream": misses })}
${bars("Upstream 429s and errors per day", days, { "429 (rate limit)": limited, "5xx": errors })}
<section><h2>The 20 most pulled repositories</h2>${top ? `<ol>${top}</ol>` : "<p>No pulls yet.</p>"}</section>
</main></body></html>`;
}

const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
  "cache-control": "no-store",
  "x-robots-tag": "noindex",
  "referrer-policy": "no-referrer",
};

/** The page: the SQL API asked the five questions at once, the answer drawn. */
export async function statsPage(sqlUrl, apiToken, dataset) {
  const q = queries(dataset);
  let r;
  try {
    const names = Object.keys(q);
    const rows = await Promise.all(names.map((n) => sql(sqlUrl, apiToken, q[n])));
    r = Object.fromEntries(names.map((n, i) => [n, rows[i]]));
  } catch (e) {
    const body = JSON.stringify({ errors: [{ code: "UNAVAILABLE", message: `usage figures unavailable: ${e instanceof Error ? e.message : e}` }] });
    return new Response(body, { status: 502, headers: { "content-type": "application/json" } });
  }
  return new Response(page(r), { status: 200, headers: PAGE_HEADERS });
}
