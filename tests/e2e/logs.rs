//! Logs: one JSON line per request in the Worker's console output (what `wrangler tail` and
//! Workers Logs show), with no secret in it, and `LOG_LEVEL` to quiet it. Run by
//! `tests/run.sh`.

use crate::common::*;
use std::process::Command;

/// The Worker's log lines in `path` once one of them matches `line`: the lines of the requests
/// answered before that one are in the log by then.
fn lines_once(
    path: &str,
    what: &str,
    line: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    wait_for(what, || {
        let lines = worker_log_lines(path);
        lines.iter().any(&line).then_some(lines)
    })
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn a_pull_with_credentials_is_logged_without_any_secret() {
    let user = var("TEST_USER");
    let password = var("TEST_PASSWORD");
    let creds = format!("{user}:{password}");
    assert_eq!(base64("alice:wonderland"), "YWxpY2U6d29uZGVybGFuZA==");
    let tag = unique("logged").to_lowercase();
    let src = format!("oci:{}/multi:latest", var("IMAGES_DIR"));
    let host = proxy("docker.example.test");
    // a push and a pull, both with credentials, through the token flow and blob redirects
    run(Command::new("skopeo").args([
        "copy",
        "--dest-creds",
        &creds,
        &src,
        &format!("docker://{host}/library/multi:{tag}"),
    ]));
    let out = tempdir("pulled");
    run(Command::new("skopeo").args([
        "copy",
        "--src-creds",
        &creds,
        &format!("docker://{host}/library/multi:{tag}"),
        &format!("oci:{}:x", out.display()),
    ]));
    // and a token fetched by hand, to know one token value the proxy handled
    let r = curl(
        &proxy_url(
            "docker.example.test",
            "/v2/auth?service=x&scope=repository:library/multi:pull&account=alice",
        ),
        &["-u", &creds],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["token"].as_str().unwrap().to_string();

    // an anonymous request for the same manifest meets the proxy's challenge
    let r = curl(
        &proxy_url(
            "docker.example.test",
            &format!("/v2/library/multi/manifests/{tag}"),
        ),
        &[],
    );
    assert_eq!(r.status, 401);
    // errors say which registry error the client got; this test's last request, so that its
    // line shows the log has the lines of the others
    let bad = format!("/v2/{}/manifests/x", unique("BAD"));
    let r = curl(&proxy_url("docker.example.test", &bad), &[]);
    assert_eq!(r.status, 400);
    let log_path = var("WORKERD_LOG");
    let lines = lines_once(&log_path, "the error's line", |l| {
        l["path"] == bad.as_str() && l["error"] == "NAME_INVALID" && l["outcome"] == "error"
    });
    let manifest_path = format!("/v2/library/multi/manifests/{tag}");
    let text = std::fs::read_to_string(&log_path).unwrap();
    for secret in [
        password.as_str(),
        &base64(&creds),
        &token,
        "eyJ", // any JWT
        "Bearer ",
        "Basic ",
        "authorization",
        "Authorization",
        "account=alice",
    ] {
        assert!(
            !text.contains(secret),
            "{log_path} contains a secret ({secret:.12}…)"
        );
    }

    let mine = |path: &str| {
        lines
            .iter()
            .filter(|l| l["path"] == path && l["host"] == "docker.example.test")
            .cloned()
            .collect::<Vec<_>>()
    };
    let manifest = mine(&manifest_path);
    let put = manifest
        .iter()
        .find(|l| l["method"] == "PUT")
        .unwrap_or_else(|| panic!("no PUT line in {manifest:?}"));
    assert_eq!(put["status"], 201);
    assert_eq!(put["upstream_status"], 201);
    assert_eq!(put["outcome"], "proxied");
    let get = manifest
        .iter()
        .find(|l| l["method"] == "GET" && l["status"] == 200)
        .unwrap_or_else(|| panic!("no GET 200 line in {manifest:?}"));
    assert_eq!(get["route"], var("HUB_URL").as_str());
    assert!(get["bytes"].as_u64().unwrap() > 0, "{get}");
    assert!(get["duration_ms"].is_u64(), "{get}");
    assert!(get["time"].as_str().unwrap().ends_with('Z'), "{get}");
    // the challenge was logged as such, and token requests without their query
    assert!(manifest
        .iter()
        .any(|l| l["outcome"] == "challenge" && l["status"] == 401));
    let auth = mine("/v2/auth");
    assert!(auth
        .iter()
        .any(|l| l["outcome"] == "token" && l["status"] == 200));
    // blob GETs were redirected upstream to the blob host and followed
    assert!(
        lines.iter().any(|l| l["path"]
            .as_str()
            .unwrap()
            .starts_with("/v2/library/multi/blobs/sha256:")
            && l["method"] == "GET"
            && l["hops"].as_u64().unwrap() >= 1
            && l["status"] == 200),
        "no followed blob redirect logged"
    );
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn log_level_quiets_the_log() {
    let routes = format!(
        r#"(name = "ROUTES", json = "{{\"open.example.test\": \"{}\"}}"),"#,
        var("OPEN_URL")
    );
    let quiet = Workerd::start(
        18091,
        &format!("{routes} (name = \"LOG_LEVEL\", text = \"error\"),"),
    );
    let off = Workerd::start(
        18092,
        &format!("{routes} (name = \"LOG_LEVEL\", text = \"off\"),"),
    );
    // the same requests, first to `off`, then to `quiet`
    for w in [&off, &quiet] {
        assert_eq!(w.get("open.example.test", "/v2/", &[]).status, 200);
        assert_eq!(
            w.get("open.example.test", "/v2/BAD/tags/list", &[]).status,
            400
        );
    }
    // quiet's error line, the last request's: its /v2/ line would be in by then, and off's
    // lines too (the same build, answered before), were there any
    let lines = lines_once(quiet.log().to_str().unwrap(), "the error's line", |l| {
        l["error"] == "NAME_INVALID"
    });
    assert_eq!(
        lines.len(),
        1,
        "only the error at LOG_LEVEL=error: {lines:?}"
    );
    assert_eq!(lines[0]["error"], "NAME_INVALID");
    assert!(worker_log_lines(off.log().to_str().unwrap()).is_empty());

    // and the default, info, logs both
    let info = Workerd::start(18093, &routes);
    assert_eq!(info.get("open.example.test", "/v2/", &[]).status, 200);
    let lines = lines_once(
        info.log().to_str().unwrap(),
        "the version check's line",
        |l| l["path"] == "/v2/" && l["status"] == 200 && l["upstream_status"] == 200,
    );
    // without the answer's size: reading it costs CPU (LOG_LEVEL = "debug" adds it, as the
    // harness's main workerd has it)
    assert!(lines.iter().all(|l| l.get("bytes").is_none()), "{lines:?}");
}
