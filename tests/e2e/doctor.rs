//! `npm run doctor` (scripts/doctor.mjs, issue 25) against the harness: a healthy proxy, host
//! routed and path routing, where every check passes, and broken ones, each with the ✘ and
//! hint it must give: a host with no route, a realm on another host, the cache off, the
//! upstream down, proxy users without a key. Run by `tests/run.sh`.

use crate::common::*;
use serde_json::json;
use std::process::Command;

/// The doctor's `--json` report of `url` (with `args`), and its exit status.
fn doctor(url: &str, args: &[&str]) -> (serde_json::Value, i32) {
    let out = Command::new("node")
        .arg(format!("{}/scripts/doctor.mjs", var("REPO")))
        .arg(url)
        .args([
            "--image",
            "library/hello:latest",
            "--json",
            "--timeout",
            "20000",
        ])
        .args(args)
        .env("NODE_EXTRA_CA_CERTS", var("CA_FILE"))
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (report, out.status.code().unwrap_or(-1))
}

/// The checks that failed: (name, detail, hint).
fn failures(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
            (s("name"), s("detail"), s("hint"))
        })
        .collect()
}

/// That the report failed, among others with a check named with `name` whose hint says `hint`.
fn fails_with(url: &str, args: &[&str], name: &str, hint: &str) {
    let (report, status) = doctor(url, args);
    assert_eq!((status, &report["ok"]), (1, &json!(false)), "{report}");
    let failed = failures(&report);
    assert!(
        failed
            .iter()
            .any(|(n, _, h)| n.contains(name) && h.contains(hint)),
        "{url}: no failed {name:?} hinting {hint:?} in {failed:#?}"
    );
}

/// The harness's hub and open registry only (no default routes: nothing reaches a real
/// registry), with a path-routing host for both.
fn local_only() -> serde_json::Value {
    let mut routes = routes_via("docker.example.test", &var("HUB_URL"));
    let all = routes.as_object_mut().unwrap();
    all.retain(|host, _| host == "docker.example.test" || host == "open.example.test");
    json!({
        "CUSTOM_DOMAIN": "",
        "ROUTES": routes,
        "PATH_ROUTING": "proxy.example.test",
        "DEFAULT_REGISTRY": "hub.registry.test",
    })
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn a_healthy_proxy_passes_every_check_host_routed_and_path_routing() {
    let mf = Miniflare::start(local_only());
    for host in ["docker.example.test", "proxy.example.test"] {
        let (report, status) = doctor(&mf.url(host, ""), &[]);
        assert_eq!(status, 0, "{host}: {:#?}", failures(&report));
        let names: Vec<&str> = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        for wanted in [
            "resolves",
            "TLS",
            "LANDING",
            "/v2/auth",
            "HEAD library/hello",
            "digest checked",
            "Range",
            "from the cache",
        ] {
            assert!(
                names.iter().any(|n| n.contains(wanted)),
                "{host}: no {wanted:?} in {names:?}"
            );
        }
        if host == "proxy.example.test" {
            for registry in ["hub.registry.test", "open.registry.test"] {
                for how in ["by prefix", "with ?ns="] {
                    let name = format!("{registry} {how}");
                    assert!(names.contains(&name.as_str()), "{name} in {names:?}");
                }
            }
        }
    }
    // and the plain report says so, one line per check
    let out = Command::new("node")
        .arg(format!("{}/scripts/doctor.mjs", var("REPO")))
        .args([
            &mf.url("docker.example.test", ""),
            "--image",
            "library/hello:latest",
        ])
        .env("NODE_EXTRA_CA_CERTS", var("CA_FILE"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.lines().filter(|l| l.starts_with("✔ ")).count() >= 10,
        "{text}"
    );
    assert!(!text.contains('✘'), "{text}");
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn a_broken_proxy_gets_the_failure_and_what_to_do() {
    // a host with no route, and an upstream that cannot be reached (the workerd harness)
    fails_with(
        &proxy_url("unknown.example.test", ""),
        &[],
        "/v2/",
        "no route for this host",
    );
    fails_with(
        &proxy_url("down.example.test", ""),
        &[],
        "/v2/",
        "upstream registry cannot be reached",
    );
    // a realm on another host: the hub itself, its token service elsewhere
    fails_with(&var("HUB_URL"), &[], "/v2/", "must get their tokens from");
    // the cache off
    let mut off = local_only();
    off["CACHE"] = json!("off");
    let mf = Miniflare::start(off);
    fails_with(
        &mf.url("docker.example.test", ""),
        &[],
        "from the cache",
        "CACHE = \"off\"",
    );
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn with_proxy_users_the_doctor_needs_a_key_and_sees_strangers_refused() {
    let key = "rpk_e2e-doctor-user-key-of-some-length-0123456789";
    let mut bindings = local_only();
    bindings["PROXY_USERS"] =
        json!(json!({"frank": {"sha256": sha256_hex(key.as_bytes())}}).to_string());
    bindings["PROXY_TOKEN_SECRET"] = json!("e2e-token-secret-of-forty-characters-dd");
    let mf = Miniflare::start(bindings);
    let url = mf.url("docker.example.test", "");
    fails_with(&url, &[], "HEAD library/hello", "--user NAME --key KEY");
    fails_with(
        &url,
        &["--user", "frank", "--key", "rpk_wrong"],
        "HEAD library/hello",
        "refused this user's key",
    );
    let (report, status) = doctor(&url, &["--user", "frank", "--key", key]);
    assert_eq!(status, 0, "{:#?}", failures(&report));
    let checks = report["checks"].as_array().unwrap();
    assert!(checks
        .iter()
        .any(|c| c["name"] == "an anonymous token request is refused" && c["ok"] == true));
    // the key never reached anything but the proxy: the hub's token service saw no frank
    assert!(!log_lines("ISSUER_LOG")
        .iter()
        .any(|l| l.to_string().contains("frank")));
}
