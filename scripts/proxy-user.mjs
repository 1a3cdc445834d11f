#!/usr/bin/env node
// Makes proxy users for PROXY_USERS (see README, "Proxy users"). Needs only Node (wrangler's).
//
//   node scripts/proxy-user.mjs add NAME [--pull-only] [--repositories JSON] [--file FILE]
//       a new random key for NAME, printed once; its SHA-256 entry added to FILE
//       (proxy-users.json); then: wrangler secret put PROXY_USERS < proxy-users.json
//   node scripts/proxy-user.mjs remove NAME [--file FILE]
//   node scripts/proxy-user.mjs secret
//       a random PROXY_TOKEN_SECRET: wrangler secret put PROXY_TOKEN_SECRET
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values: a, positionals: [command, name] } = parseArgs({
  allowPositionals: true,
  options: {
    "pull-only": { type: "boolean", default: false },
    repositories: { type: "string" },
    file: { type: "string", default: "proxy-users.json" },
  },
});
const die = (why) => { console.error(`proxy-user: ${why}`); process.exit(2); };
const load = () => (existsSync(a.file) ? JSON.parse(readFileSync(a.file, "utf8")) : {});
const save = (users) => writeFileSync(a.file, JSON.stringify(users, null, 2) + "\n", { mode: 0o600 });

if (command === "secret") {
  console.log(randomBytes(32).toString("base64url"));
} else if (command === "add") {
  if (!name || /[:\s]/.test(name)) die("add NAME: a user name without ':' or spaces");
  const users = load();
  // 256 random bits: a key no one guesses, so a plain SHA-256 of it is enough to keep
  const key = `rpk_${randomBytes(32).toString("base64url")}`;
  const entry = { sha256: createHash("sha256").update(key).digest("hex") };
  if (a["pull-only"]) entry.pull_only = true;
  if (a.repositories) {
    try { entry.repositories = JSON.parse(a.repositories); } catch (e) { die(`--repositories: ${e.message}`); }
  }
  users[name] = entry;
  save(users);
  console.error(`${name} added to ${a.file}; the key is shown once, here:`);
  console.log(key);
  console.error(`then: npx wrangler secret put PROXY_USERS < ${a.file}`);
  console.error(`and:  docker login <your proxy host> -u ${name}   (the key is the password)`);
} else if (command === "remove") {
  const users = load();
  if (!(name in users)) die(`${name} is not in ${a.file}`);
  delete users[name];
  save(users);
  console.error(`${name} removed; npx wrangler secret put PROXY_USERS < ${a.file}`);
} else {
  die("usage: add NAME [--pull-only] [--repositories JSON] [--file FILE] | remove NAME | secret");
}
