#!/usr/bin/env python3
"""Checks of the repository's own files, run by tests/lint.sh: the test command is the one the
README gives, CI runs it, the workflows parse and do what the README says, the two READMEs
carry the same content, and the test command runs every end-to-end area and the harness's
self-check."""
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEST_COMMAND = "bash tests/run.sh"
VARS = ["CUSTOM_DOMAIN", "ROUTES", "PATH_ROUTING", "DEFAULT_REGISTRY", "LOG_LEVEL", "UPSTREAM_TIMEOUT_MS",
        "MODE", "TARGET_UPSTREAM", "CACHE", "CACHE_STALE_SECONDS",
        "CACHE_VERIFY_MAX_BYTES", "CACHE_BUCKET_MIN_BYTES", "CACHE_BUCKET", "ALLOW_REPOSITORIES", "DENY_REPOSITORIES",
        "READ_ONLY", "ALLOW_IPS", "BLOCK_USER_AGENTS", "PROXY_USERS", "PROXY_TOKEN_SECRET",
        "UPSTREAM_CREDENTIALS", "PUBLIC_UPSTREAM_CREDENTIALS", "LANDING", "FALLBACKS",
        "STATS", "STATS_TOKEN", "STATS_ACCOUNT_ID", "STATS_API_TOKEN", "STATS_DATASET", "STATS_SQL_URL"]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def text(path):
    return (ROOT / path).read_text(encoding="utf-8")


# the test command: README names it, .ci/run and ci.yml run exactly it
ci_run = [l.strip() for l in text(".ci/run").splitlines() if l.strip() and not l.startswith("#")]
check(TEST_COMMAND in ci_run, f".ci/run must run `{TEST_COMMAND}`")
readme = text("README.md")
check(f"\n{TEST_COMMAND}" in readme, f"README.md must give the test command `{TEST_COMMAND}`")

ci = yaml.safe_load(text(".github/workflows/ci.yml"))
steps = [s.get("run", "") for job in ci["jobs"].values() for s in job["steps"]]
check(TEST_COMMAND in steps, "ci.yml must run the test command")
check("cargo fmt --check" in steps, "ci.yml must run cargo fmt --check")
check(any("clippy" in s and "-D warnings" in s and "wasm32" not in s for s in steps), "ci.yml: native clippy")
check(any("clippy" in s and "-D warnings" in s and "wasm32-unknown-unknown" in s for s in steps), "ci.yml: wasm32 clippy")
uses = [s.get("uses", "") for job in ci["jobs"].values() for s in job["steps"]]
check(any(u.startswith("Swatinem/rust-cache") for u in uses), "ci.yml caches cargo")
check(any(u.startswith("actions/setup-node") for u in uses), "ci.yml sets up node (npm cache)")

deploy = yaml.safe_load(text(".github/workflows/deploy.yml"))
check(deploy[True if True in deploy else "on"]["push"]["branches"] == ["main"], "deploy.yml deploys on push to main")
job = next(iter(deploy["jobs"].values()))
wrangler_steps = [s for s in job["steps"] if s.get("uses", "").startswith("cloudflare/wrangler-action@")]
check(len(wrangler_steps) == 1, "deploy.yml uses the official wrangler action")
check("secrets.CLOUDFLARE_API_TOKEN" in job.get("env", {}).get("HAS_SECRETS", ""), "deploy.yml checks the secrets")
check(all(s.get("if") for s in job["steps"]), "every deploy step is conditional on the secrets")

# the two READMEs: same sections, code blocks and vars
zh_path = ROOT / "README.zh-CN.md"
check(zh_path.exists(), "README.zh-CN.md exists")
if zh_path.exists():
    zh = zh_path.read_text(encoding="utf-8")
    for name, doc in [("README.md", readme), ("README.zh-CN.md", zh)]:
        for var in VARS:
            check(f"`{var}`" in doc, f"{name} documents {var}")
        check("README.zh-CN.md" in doc and "README.md" in doc, f"{name} links the other language")
        check("deploy.workers.cloudflare.com" in doc, f"{name} has the deploy button")
    heads = lambda d: re.findall(r"^#{2,3} ", d, re.M)
    fences = lambda d: d.count("```")
    check(len(heads(readme)) == len(heads(zh)), f"same number of sections ({len(heads(readme))} vs {len(heads(zh))})")
    check(fences(readme) == fences(zh), f"same number of code fences ({fences(readme)} vs {fences(zh)})")
    code = lambda d: [b.strip() for b in re.findall(r"```[a-z]*\n(.*?)```", d, re.S)]
    en_code = [b for b in code(readme) if "#" not in b]  # comments may be translated
    for block in en_code:
        check(block in zh, f"README.zh-CN.md keeps the code block starting {block[:40]!r}")

# every var the code reads is documented
config_rs = "".join(text(f"src/{m}.rs") for m in ["config", "access", "users", "accounts", "stats"])
for var in set(re.findall(r'(?:present|var)\("([A-Z_]+)"\)', config_rs)):
    check(var in VARS and f"`{var}`" in readme, f"README documents {var}")

# the end-to-end suite: one binary, tests/e2e/main.rs, a module per area; the test command runs
# it (`--ignored`: each test needs the harness) after the harness's own self-check
e2e = ROOT / "tests" / "e2e"
main_rs = text("tests/e2e/main.rs")
declared = set(re.findall(r"^mod (\w+);", main_rs, re.M))
files = {p.stem for p in e2e.glob("*.rs") if p.name != "main.rs"} | {
    p.name for p in e2e.iterdir() if p.is_dir() and (p / "mod.rs").exists()}
for area in sorted(files - declared):
    failures.append(f"tests/e2e/{area}.rs is not declared in tests/e2e/main.rs (never compiled nor run)")
for area in sorted(declared - files):
    failures.append(f"tests/e2e/main.rs declares {area}, which has no file")
check(not list((ROOT / "tests").glob("e2e_*.rs")), "end-to-end tests go in tests/e2e/ (one binary), not tests/e2e_*.rs")
run_sh = text("tests/run.sh")
e2e_run = re.search(r"^cargo test [^\n]*--test e2e\b[^\n]*-- [^\n]*--ignored", run_sh, re.M)
check(e2e_run is not None, "tests/run.sh runs the end-to-end binary: cargo test ... --test e2e -- --ignored")
up = run_sh.find("bash tests/harness/up.sh")
selfcheck = run_sh.find("\nbash tests/harness/selfcheck.sh")
check(up != -1 and selfcheck > up and (e2e_run is None or selfcheck < e2e_run.start()),
      "tests/run.sh runs tests/harness/selfcheck.sh after up.sh, before the end-to-end tests")
for path in sorted(e2e.rglob("*.rs")):
    src = path.read_text(encoding="utf-8")
    rel = path.relative_to(ROOT)
    check("allow(dead_code)" not in src, f"{rel}: no allow(dead_code) (one binary: what is unused shows)")
    lines = src.split("\n")
    for i, line in enumerate(lines):
        if line.strip() != "#[test]":
            continue
        check(lines[i + 1].startswith('#[ignore = "needs the'),
              f"{rel}:{i + 1}: an end-to-end test is #[ignore]d (it needs the harness: tests/run.sh)")
        start = next(j for j in range(i, len(lines)) if lines[j].startswith("fn "))
        end = next(j for j in range(start, len(lines)) if lines[j] == "}")
        name = lines[start].split("(")[0][3:]
        check(end - start + 1 <= 150, f"{rel}: {name} is {end - start + 1} lines: build it from named helpers")

# url's IDNA stays ASCII-only (Cargo.toml says why)
lock = text("Cargo.lock")
m = re.search(r'name = "idna_adapter"\nversion = "([^"]+)"', lock)
check(m is not None and m.group(1).startswith("1.0."), "Cargo.lock pins idna_adapter 1.0")

if failures:
    print("check_repo: FAILED", *failures, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print("check_repo: ok")
