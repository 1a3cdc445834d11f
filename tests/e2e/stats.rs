//! Usage at a glance (issue 25), under Miniflare: the data point each request writes into the
//! `STATS` dataset (a recording stand-in for Miniflare's Analytics Engine binding, which drops
//! them: tests/harness/miniflare.mjs `--stats`), and the `/_stats` page against a stand-in for
//! the SQL API (tests/harness/stats_sql.py) in headless Chromium. Run by `tests/run.sh`.

use crate::common::*;
use serde_json::json;
use std::process::Command;

const PAGE_TOKEN: &str = "e2e-stats-page-token-0123456789";
const API_TOKEN: &str = "e2e-analytics-read-token-abcdef";

/// The data points written so far, once there are at least `n`.
fn points(file: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    wait_for(&format!("{n} data points"), || {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let all: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (all.len() >= n).then_some(all)
    })
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn every_request_writes_one_data_point_with_the_line_s_facts() {
    let file = tempdir("stats").join("points.jsonl");
    let mf = Miniflare::start_with(json!({}), &["--stats", file.to_str().unwrap()]);
    let token = mf.token("docker.example.test", "repository:library/hello:pull", None);
    let auth = format!("Authorization: Bearer {token}");
    let accept = "Accept: application/vnd.oci.image.index.v1+json";
    let tag = mf.url("docker.example.test", "/v2/library/hello/manifests/latest");
    let r = curl(&tag, &["-H", &auth, "-H", accept]);
    assert_eq!(r.status, 200);
    let blob = var("BLOB_HELLO_AMD64_CONFIG");
    curl(
        &mf.url(
            "docker.example.test",
            &format!("/v2/library/hello/blobs/{blob}"),
        ),
        &["-H", &auth],
    );
    let all = points(&file, 3);
    let token_point = all
        .iter()
        .find(|p| p["blobs"][2] == "token")
        .expect("the token's point");
    assert_eq!(token_point["blobs"][0], "hub.registry.test");
    let manifest = all
        .iter()
        .find(|p| p["blobs"][2] == "manifest")
        .unwrap_or_else(|| panic!("{all:?}"));
    let blobs = manifest["blobs"].as_array().unwrap();
    assert_eq!(blobs.len(), 8, "{manifest}");
    assert_eq!(
        (&blobs[0], &blobs[1], &blobs[3], &blobs[4], &blobs[5]),
        (
            &json!("hub.registry.test"),
            &json!("library/hello"),
            &json!("GET"),
            &json!("MISS"),
            &json!("proxied")
        ),
        "{manifest}"
    );
    assert_eq!(manifest["indexes"], json!(["hub.registry.test"]));
    let doubles = manifest["doubles"].as_array().unwrap();
    assert_eq!(doubles[0], 200.0, "{manifest}");
    assert_eq!(
        doubles[1],
        r.body.len() as f64,
        "bytes to the client: {manifest}"
    );
    assert_eq!(
        doubles[2],
        r.body.len() as f64,
        "bytes from the upstream: {manifest}"
    );
    assert!(
        doubles[3].as_f64().unwrap() >= 0.0 && doubles[4] == -1.0,
        "{manifest}"
    );
    let blob_point = all
        .iter()
        .find(|p| p["blobs"][2] == "blob")
        .expect("the blob's point");
    assert_eq!(blob_point["doubles"][0], 200.0);
    // no token, key or Authorization in any point
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(&token) && !text.to_lowercase().contains("bearer"),
        "{text}"
    );
}

/// A proxy with the page, reading the SQL API stand-in.
fn with_page(sql: &str) -> Miniflare {
    Miniflare::start(json!({
        "STATS_TOKEN": PAGE_TOKEN,
        "STATS_ACCOUNT_ID": "0123456789abcdef",
        "STATS_API_TOKEN": API_TOKEN,
        "STATS_SQL_URL": sql,
    }))
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn the_usage_page_opens_for_its_token_only_and_draws_the_sql_api_s_rows() {
    let port = next_port();
    let log = tempdir("stats-sql").join("queries.jsonl");
    let _sql = Helper::start(
        "stats_sql.py",
        &[
            "--port",
            &port.to_string(),
            "--token",
            API_TOKEN,
            "--log",
            log.to_str().unwrap(),
        ],
    );
    let mf = with_page(&format!("http://127.0.0.1:{port}/sql"));
    // no token, a wrong one, another method: what any unknown path gets
    let unknown = curl(&mf.url("docker.example.test", "/_nothing"), &[]);
    for args in [
        vec![],
        vec!["-H", "Authorization: Bearer wrong-token-of-the-same-size"],
        vec!["-X", "POST"],
    ] {
        let r = curl(&mf.url("docker.example.test", "/_stats"), &args);
        assert_eq!(
            (r.status, r.text()),
            (unknown.status, unknown.text()),
            "{args:?}"
        );
    }
    let wrong = curl(
        &mf.url(
            "docker.example.test",
            "/_stats?token=e2e-stats-page-token-012345678X",
        ),
        &[],
    );
    assert_eq!(wrong.status, 404);
    assert!(
        !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("SELECT"),
        "the SQL API was asked without the token"
    );
    // the token: in the query (a browser's), or as a Bearer token
    let url = mf.url(
        "docker.example.test",
        &format!("/_stats?token={PAGE_TOKEN}"),
    );
    let r = curl(&url, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let bearer = format!("Authorization: Bearer {PAGE_TOKEN}");
    assert_eq!(
        curl(&mf.url("docker.example.test", "/_stats"), &["-H", &bearer]).status,
        200
    );
    let html = r.text();
    for shown in [
        "1234",
        "library/repo-00",
        "docker.io",
        "team.registry.example",
        "73.3%",
        "<svg",
    ] {
        assert!(html.contains(shown), "{shown} not on the page");
    }
    assert!(r
        .header("content-security-policy")
        .is_some_and(|c| c.contains("default-src 'none'")));
    // five questions, each with the read token
    let asked: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        asked.len() >= 5 && asked.iter().all(|q| q["authorized"] == true),
        "{asked:?}"
    );
    // neither token reaches the Worker's log, the page, or the log's lines
    mf.caught_up();
    let logged = mf.log_text();
    for secret in [PAGE_TOKEN, API_TOKEN] {
        assert!(
            !logged.contains(secret) && !html.contains(secret),
            "{secret} leaked"
        );
    }
    in_chromium(&url);
}

/// The page light, dark and 390 px wide: drawn, readable, no sideways scroll, no requests of
/// its own.
fn in_chromium(url: &str) {
    let repo = var("REPO");
    let out_dir = std::path::PathBuf::from(&repo).join("test-artifacts");
    let out = run(Command::new("node")
        .arg(format!("{repo}/tests/browser/stats.mjs"))
        .arg(url)
        .arg(&out_dir)
        .current_dir(&repo));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("browser output not JSON ({e}): {stdout}"));
    for name in ["light", "dark", "390"] {
        assert_eq!(result["status"][name], 200, "{result}");
        let svgs = result["svgs"][name].as_array().unwrap();
        assert_eq!(svgs.len(), 3, "{result}");
        assert!(
            svgs.iter().all(|s| s["bars"].as_u64() > Some(5)),
            "{result}"
        );
        let png = out_dir.join(format!("stats-{name}.png"));
        let bytes = std::fs::read(&png).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{png:?}"
        );
    }
    assert!(
        result["scrollWidth"]["390"].as_u64() <= Some(390),
        "{result}"
    );
    assert!(
        result["svgs"]["390"][0]["width"].as_f64() > Some(300.0),
        "{result}"
    );
    assert_ne!(result["background"]["light"], result["background"]["dark"]);
    let requests = result["requests"].as_array().unwrap();
    assert!(
        requests
            .iter()
            .all(|r| r.as_str().is_some_and(|r| r.contains("/_stats"))),
        "{requests:?}"
    );
    let errors: Vec<_> = result["console"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}
