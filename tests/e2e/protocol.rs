//! End to end, at the HTTP level: the release build in bare workerd over HTTPS on a non-default
//! port, in front of CNCF distribution with token auth and blob redirects, an open registry and
//! deliberately odd fake upstreams. Run by `tests/run.sh`, which starts them.

use crate::common::*;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const ACCEPT_ALL: &str = "Accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// A pull token from the proxy's own `/v2/auth`.
fn token(host: &str, scopes: &[&str], creds: Option<&str>) -> String {
    let mut q = String::from("service=cloudflare-docker-proxy");
    for s in scopes {
        q.push_str("&scope=");
        q.push_str(s);
    }
    let mut args = vec![];
    if let Some(c) = creds {
        args = vec!["-u", c];
    }
    let r = curl(&proxy_url(host, &format!("/v2/auth?{q}")), &args);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_string()
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

fn issuer_entry(marker: &str) -> serde_json::Value {
    log_lines("ISSUER_LOG")
        .into_iter()
        .find(|l| l.to_string().contains(marker))
        .unwrap_or_else(|| panic!("no issuer log line with {marker}"))
}

/// Whether the open registry's log holds `needle`, once it has caught up (the registry logs a
/// request after answering it).
fn open_log_has(needle: &str) -> bool {
    caught_up("OPEN_LOG");
    std::fs::read_to_string(var("OPEN_LOG"))
        .unwrap()
        .contains(needle)
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn routes_by_exact_host_case_insensitive_any_port() {
    // upper case and a port; the realm keeps that port so clients come back to it
    let r = curl("https://DOCKER.Example.TEST:8443/v2/", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            r#"Bearer realm="https://docker.example.test:8443/v2/auth",service="cloudflare-docker-proxy""#
        )
    );
    // the same Worker on a plain-http port
    let r = curl(
        &format!("http://open.example.test:{}/v2/", var("WORKER_HTTP_PORT")),
        &[],
    );
    assert_eq!(r.status, 200);
    // not routed: a registry 404 that does not list the route table
    for host in [
        "unknown.example.test",
        "docker.example.test.evil.example",
        "xdocker.example.test",
    ] {
        let r = curl(
            &format!("https://localhost:{}/v2/", var("WORKER_HTTPS_PORT")),
            &["-H", &format!("Host: {host}")],
        );
        assert_eq!(r.status, 404, "{host}");
        assert_eq!(r.error_code(), "NAME_UNKNOWN");
        let body = r.text();
        assert!(
            !body.contains("127.0.0.1") && !body.contains("open.example"),
            "{body}"
        );
    }
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn base_endpoint_answers_with_the_proxy_challenge_or_passes_through() {
    let r = curl(&proxy_url("docker.example.test", "/v2/"), &[]);
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().contains("/v2/auth"));
    // with a token the upstream accepts, its answer passes through
    let t = token(
        "docker.example.test",
        &["repository:library/hello:pull"],
        None,
    );
    let r = curl(
        &proxy_url("docker.example.test", "/v2/"),
        &["-H", &bearer(&t)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    // an open registry answers 200 itself
    assert_eq!(
        curl(&proxy_url("open.example.test", "/v2/"), &[]).status,
        200
    );
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn auth_completes_every_scope_and_keeps_other_parameters() {
    let marker = unique("acct");
    let url = proxy_url(
        "docker.example.test",
        &format!("/v2/auth?service=cloudflare-docker-proxy&scope=repository:hello:pull&scope=repository:library/multi:pull&account={marker}&client_id=e2e&offline_token=false"),
    );
    let r = curl(&url, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["token"].as_str().unwrap().to_string();
    let e = issuer_entry(&marker);
    assert_eq!(e["method"], "GET");
    assert_eq!(
        e["query"]["service"],
        serde_json::json!([var("ISSUER_SERVICE")])
    );
    assert_eq!(
        e["query"]["scope"],
        serde_json::json!([
            "repository:library/hello:pull",
            "repository:library/multi:pull"
        ])
    );
    assert_eq!(e["query"]["client_id"], serde_json::json!(["e2e"]));
    assert_eq!(e["query"]["offline_token"], serde_json::json!(["false"]));
    assert_eq!(e["authorization"], false);
    // the token is good for both completed names
    for repo in ["hello", "multi"] {
        let r = curl(
            &proxy_url(
                "docker.example.test",
                &format!("/v2/library/{repo}/manifests/latest"),
            ),
            &["-I", "-H", &bearer(&token), "-H", ACCEPT_ALL],
        );
        assert_eq!(r.status, 200, "{repo}");
    }
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn auth_forwards_credentials_and_refuses_a_wrong_password() {
    let marker = unique("login");
    let good = alice();
    let url = proxy_url("docker.example.test", &format!("/v2/auth?service=cloudflare-docker-proxy&account={marker}&client_id=docker&offline_token=true"));
    let r = curl(&url, &["-u", &good]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["token"].is_string());
    assert_eq!(issuer_entry(&marker)["authorization"], true);
    let r = curl(&url, &["-u", &format!("{}:wrong", var("TEST_USER"))]);
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "UNAUTHORIZED");
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn auth_post_form_goes_to_the_realm_as_a_post() {
    let marker = unique("ctrd");
    let form = format!(
        "grant_type=password&username={}&password={}&service=cloudflare-docker-proxy&scope=repository%3Ahello%3Apull&client_id={marker}",
        var("TEST_USER"),
        var("TEST_PASSWORD")
    );
    let r = curl(
        &proxy_url("docker.example.test", "/v2/auth"),
        &["--data", &form],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["access_token"].is_string());
    let e = issuer_entry(&marker);
    assert_eq!(e["method"], "POST");
    let text = e.to_string();
    assert!(text.contains("repository:library/hello:pull"), "{text}");
    assert!(
        text.contains(&var("ISSUER_SERVICE")) && !text.contains("cloudflare-docker-proxy"),
        "{text}"
    );
    // a wrong password is the issuer's 401, passed on
    let bad = form.replace(
        &format!("password={}", var("TEST_PASSWORD")),
        "password=nope",
    );
    assert_eq!(
        curl(
            &proxy_url("docker.example.test", "/v2/auth"),
            &["--data", &bad]
        )
        .status,
        401
    );
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn docker_hub_short_names_redirect_to_library() {
    for (path, to) in [
        (
            "/v2/hello/manifests/latest",
            "/v2/library/hello/manifests/latest",
        ),
        (
            "/v2/hello/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "/v2/library/hello/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ),
        ("/v2/hello/tags/list?n=1", "/v2/library/hello/tags/list?n=1"),
    ] {
        let r = curl(&proxy_url("docker.example.test", path), &[]);
        assert_eq!(r.status, 301, "{path}");
        assert_eq!(
            r.header("location"),
            Some(proxy_url("docker.example.test", to).as_str())
        );
    }
    // only routes with Docker Hub semantics do this: the open registry is asked as is
    let r = curl(
        &proxy_url("open.example.test", "/v2/hello/manifests/latest"),
        &[],
    );
    assert_eq!(r.status, 404);
    assert!(["NAME_UNKNOWN", "MANIFEST_UNKNOWN"].contains(&r.error_code().as_str()));
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn upstream_401_becomes_the_proxy_challenge_with_scope_and_error() {
    let r = curl(
        &proxy_url("docker.example.test", "/v2/library/hello/manifests/latest"),
        &[],
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            r#"Bearer realm="https://docker.example.test:8443/v2/auth",service="cloudflare-docker-proxy",scope="repository:library/hello:pull""#
        )
    );
    assert_eq!(
        r.error_code(),
        "UNAUTHORIZED",
        "the upstream's body is kept"
    );
    // a token for another repository: distribution says insufficient_scope, and so do we
    let t = token(
        "docker.example.test",
        &["repository:library/hello:pull"],
        None,
    );
    let r = curl(
        &proxy_url("docker.example.test", "/v2/library/multi/manifests/latest"),
        &["-H", &bearer(&t)],
    );
    assert_eq!(r.status, 401);
    let www = r.header("www-authenticate").unwrap();
    assert!(
        www.contains(r#"scope="repository:library/multi:pull""#),
        "{www}"
    );
    assert!(www.contains(r#"error="insufficient_scope""#), "{www}");
    assert!(
        www.starts_with(r#"Bearer realm="https://docker.example.test:8443/v2/auth""#),
        "{www}"
    );
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn query_strings_are_kept() {
    // pagination (distribution 2.8 pages the catalog)
    let r = curl(&proxy_url("open.example.test", "/v2/_catalog?n=1"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["repositories"].as_array().unwrap().len(),
        1,
        "{}",
        r.text()
    );
    let link = r.header("link").expect("pagination Link header");
    assert!(link.contains("last="), "{link}");
    let all = curl(&proxy_url("open.example.test", "/v2/_catalog"), &[]);
    assert!(all.json()["repositories"].as_array().unwrap().len() >= 3);
    // containerd's ?ns= reaches the upstream
    let marker = unique("ns");
    let r = curl(
        &proxy_url(
            "open.example.test",
            &format!("/v2/library/hello/manifests/latest?ns={marker}"),
        ),
        &["-H", ACCEPT_ALL],
    );
    assert_eq!(r.status, 200);
    assert!(open_log_has(&format!(
        "/v2/library/hello/manifests/latest?ns={marker}"
    )));
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn head_stays_head() {
    let marker = unique("head");
    let r = curl(
        &proxy_url(
            "open.example.test",
            &format!("/v2/library/hello/manifests/latest?probe={marker}"),
        ),
        &["-I", "-H", ACCEPT_ALL],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("docker-content-digest"),
        Some(upstream_digest("DIGEST_HELLO_LATEST").as_str())
    );
    assert!(r.header("content-length").unwrap().parse::<u64>().unwrap() > 0);
    assert!(open_log_has(&format!(
        "\"HEAD /v2/library/hello/manifests/latest?probe={marker} "
    )));
    assert!(!open_log_has(&format!(
        "\"GET /v2/library/hello/manifests/latest?probe={marker} "
    )));
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn response_headers_pass_through_unchanged() {
    let path = "/v2/library/hello/manifests/latest";
    let direct = curl(&format!("{}{path}", var("OPEN_URL")), &["-H", ACCEPT_ALL]);
    let proxied = curl(&proxy_url("open.example.test", path), &["-H", ACCEPT_ALL]);
    assert_eq!(proxied.status, 200);
    assert_eq!(proxied.body, direct.body);
    for h in [
        "docker-content-digest",
        "content-type",
        "content-length",
        "etag",
        "docker-distribution-api-version",
    ] {
        assert!(direct.header(h).is_some(), "{h}");
        assert_eq!(proxied.header(h), direct.header(h), "{h}");
    }
    assert_eq!(proxied.header("content-type"), Some(OCI_INDEX));
    // rate-limit headers (Docker Hub's) from an upstream that sends them
    let t = token("quirky.example.test", &["repository:quirk/app:pull"], None);
    let r = curl(
        &proxy_url("quirky.example.test", "/v2/quirk/app/manifests/v1"),
        &["-H", &bearer(&t)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("ratelimit-limit"), Some("100;w=21600"));
    assert_eq!(r.header("ratelimit-remaining"), Some("99;w=21600"));
    assert_eq!(r.header("docker-ratelimit-source"), Some("127.0.0.1"));
    assert!(r.header("etag").is_some());
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn blob_redirects_are_followed_without_credentials() {
    let layer = var("BLOB_HELLO_AMD64_LAYER");
    let t = token(
        "docker.example.test",
        &["repository:library/hello:pull"],
        None,
    );
    let path = format!("/v2/library/hello/blobs/{layer}");
    // an anonymous client's token says so (credentials.rs); the upstream knows it unmarked
    let upstream_token = t
        .strip_prefix("anon~")
        .expect("an anonymous token is marked");
    // the upstream itself answers 307 to another host
    let direct = curl(
        &format!("{}{path}", var("HUB_URL")),
        &["-H", &bearer(upstream_token)],
    );
    assert_eq!(direct.status, 307);
    assert!(direct
        .header("location")
        .unwrap()
        .starts_with("http://blobs.example.test:"));
    // through the proxy: the bytes themselves; the blob host refuses Authorization (as S3 does),
    // so this also proves the token was not sent there
    assert_eq!(var("BLOBS_REJECT_AUTH"), "1");
    let r = curl(
        &proxy_url("docker.example.test", &path),
        &["-H", &bearer(&t)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(format!("sha256:{}", sha256_hex(&r.body)), layer);
    assert_eq!(
        r.header("content-length").unwrap(),
        r.body.len().to_string()
    );
    let hex = &layer["sha256:".len()..];
    caught_up("BLOBS_LOG");
    let hits: Vec<_> = log_lines("BLOBS_LOG")
        .into_iter()
        .filter(|l| l["path"].as_str().unwrap_or("").contains(hex))
        .collect();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|l| l["authorization"] == false), "{hits:?}");
    // Range and method survive the redirect
    let part = curl(
        &proxy_url("docker.example.test", &path),
        &["-H", &bearer(&t), "-r", "0-9"],
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body, r.body[..10]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 0-9/{}", r.body.len()).as_str())
    );
    let head = curl(
        &proxy_url("docker.example.test", &path),
        &["-I", "-H", &bearer(&t)],
    );
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length").unwrap(),
        r.body.len().to_string()
    );
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn big_blob_streams_through() {
    let layer = var("BLOB_BIG_LAYER");
    let t = token(
        "docker.example.test",
        &["repository:library/big:pull"],
        None,
    );
    let r = curl(
        &proxy_url(
            "docker.example.test",
            &format!("/v2/library/big/blobs/{layer}"),
        ),
        &["-H", &bearer(&t)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len().to_string(), var("BLOB_BIG_LAYER_SIZE"));
    assert_eq!(format!("sha256:{}", sha256_hex(&r.body)), layer);
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn endless_redirects_end_in_a_registry_error() {
    let r = curl(
        &proxy_url(
            "quirky.example.test",
            &format!("/v2/loop/app/blobs/sha256:{}", "0".repeat(64)),
        ),
        &[],
    );
    assert_eq!(r.status, 502);
    assert_eq!(r.error_code(), "UNAVAILABLE");
    assert!(r.text().contains("redirects"), "{}", r.text());
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn challenges_are_parsed_by_the_rfc_not_by_position() {
    // lower-case scheme, spaces around '=', a token value, escapes, realm last
    let r = curl(&proxy_url("quirky.example.test", "/v2/"), &[]);
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("quirky.example.test:8443/v2/auth"));
    let marker = unique("quirk");
    let r = curl(
        &proxy_url(
            "quirky.example.test",
            &format!("/v2/auth?scope=repository:quirk/app:pull&account={marker}"),
        ),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // the quirky registry's own token service, by the service its challenge named
    let e = log_lines("QUIRKY_ISSUER_LOG")
        .into_iter()
        .find(|l| l.to_string().contains(&marker))
        .expect("the quirky registry's issuer was asked");
    assert_eq!(
        e["query"]["service"],
        serde_json::json!([var("QUIRKY_ISSUER_SERVICE")])
    );
    assert_eq!(e["status"], 200);
    // scope and error of an upstream 401 reach the client
    let r = curl(
        &proxy_url("quirky.example.test", "/v2/deny/app/manifests/v1"),
        &[],
    );
    let www = r.header("www-authenticate").unwrap();
    assert!(
        www.contains(r#"scope="repository:deny/app:pull,push""#)
            && www.contains(r#"error="insufficient_scope""#),
        "{www}"
    );
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn malformed_or_missing_challenges_are_502_naming_the_upstream() {
    for (host, port) in [("broken.example.test", 5007), ("bare.example.test", 5005)] {
        for path in [
            "/v2/auth?scope=repository:a/b:pull",
            "/v2/",
            "/v2/a/b/manifests/latest",
        ] {
            let r = curl(&proxy_url(host, path), &[]);
            assert_eq!(r.status, 502, "{host}{path}: {}", r.text());
            assert_eq!(r.error_code(), "UNAVAILABLE");
            assert!(
                r.text().contains(&format!("http://127.0.0.1:{port}")),
                "{}",
                r.text()
            );
        }
    }
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn unreachable_is_502_and_silent_is_504() {
    let r = curl(
        &proxy_url("down.example.test", "/v2/library/hello/manifests/latest"),
        &[],
    );
    assert_eq!(r.status, 502);
    assert_eq!(r.error_code(), "UNAVAILABLE");
    assert!(r
        .text()
        .contains(&format!("127.0.0.1:{}", var("DOWN_PORT"))));
    let t0 = std::time::Instant::now();
    let r = curl(
        &proxy_url("timeout.example.test", "/v2/library/hello/manifests/latest"),
        &[],
    );
    assert_eq!(r.status, 504);
    assert_eq!(r.error_code(), "UNAVAILABLE");
    assert!(r.text().contains("2000 ms"), "{}", r.text());
    assert!(
        t0.elapsed().as_secs() < 30,
        "the timeout (2 s here) bounds the wait"
    );
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn bad_input_is_refused_before_any_upstream_request() {
    let marker = unique("Bad");
    for (path, status, code) in [
        (
            format!("/v2/{marker}/manifests/latest"),
            400,
            "NAME_INVALID",
        ),
        (
            format!("/v2/library/hello/manifests/bad%20{marker}"),
            400,
            "MANIFEST_INVALID",
        ),
        (
            format!("/v2/library/{}/blobs/not-a-digest", marker.to_lowercase()),
            400,
            "DIGEST_INVALID",
        ),
        (format!("/{marker}"), 404, "UNSUPPORTED"),
    ] {
        let r = curl(&proxy_url("open.example.test", &path), &[]);
        assert_eq!(r.status, status, "{path}");
        assert_eq!(r.error_code(), code, "{path}");
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    assert!(!open_log_has(&marker));
    assert!(!open_log_has(&marker.to_lowercase()));
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn bad_configuration_answers_500_naming_the_variable() {
    for (port, bindings, var_name) in [
        (18601, r#"(name = "ROUTES", text = "{not json"),"#, "ROUTES"),
        (
            18602,
            r#"(name = "ROUTES", json = "{\"a.example.test\": \"ftp://x\"}"),"#,
            "ROUTES",
        ),
        (
            18603,
            r#"(name = "MODE", text = "debug"), (name = "TARGET_UPSTREAM", text = "registry.example"),"#,
            "TARGET_UPSTREAM",
        ),
        (
            18604,
            r#"(name = "UPSTREAM_TIMEOUT_MS", text = "soon"),"#,
            "UPSTREAM_TIMEOUT_MS",
        ),
        // fallbacks for a registry no route fronts
        (
            18605,
            r#"(name = "FALLBACKS", json = "{\"hub.registry.test\": [\"http://127.0.0.1:5032\"]}"),"#,
            "FALLBACKS",
        ),
    ] {
        let w = Workerd::start(port, bindings);
        for _ in 0..2 {
            let r = w.get("open.example.test", "/v2/", &[]);
            assert_eq!(r.status, 500, "{bindings}");
            assert_eq!(r.error_code(), "UNKNOWN");
            assert!(r.text().contains(var_name), "{}", r.text());
        }
    }
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn debug_mode_sends_any_host_to_target_upstream() {
    let w = Workerd::start(
        18610,
        &format!(
            r#"(name = "MODE", text = "debug"), (name = "TARGET_UPSTREAM", text = "{}"),"#,
            var("HUB_URL")
        ),
    );
    let r = w.get("localhost:18610", "/v2/", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="http://localhost:18610/v2/auth",service="cloudflare-docker-proxy""#)
    );
    let r = w.get(
        "localhost:18610",
        "/v2/auth?scope=repository:library/hello:pull",
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.json()["token"].as_str().unwrap().to_string();
    let r = w.get(
        "anything.local",
        "/v2/library/hello/manifests/latest",
        &["-H", &bearer(&t), "-H", ACCEPT_ALL],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("docker-content-digest"),
        Some(upstream_digest("DIGEST_HELLO_LATEST").as_str())
    );
    // without MODE=debug the same target is not used
    drop(w);
    let w = Workerd::start(
        18611,
        &format!(
            r#"(name = "TARGET_UPSTREAM", text = "{}"),"#,
            var("HUB_URL")
        ),
    );
    assert_eq!(w.get("anything.local", "/v2/", &[]).status, 404);
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn push_with_credentials_through_the_proxy() {
    let repo = format!("library/{}", unique("pushed").to_lowercase());
    let src = format!("oci:{}/multi:latest", var("IMAGES_DIR"));
    let dest = format!("docker://{}/{repo}:v1", proxy("docker.example.test"));
    let creds = alice();
    // anonymous tokens only pull
    run_fails(
        std::process::Command::new("skopeo").args(["copy", &src, &dest]),
        &["unauthorized: authentication required"],
    );
    run(std::process::Command::new("skopeo").args(["copy", "--dest-creds", &creds, &src, &dest]));
    // it landed upstream, byte for byte
    let out = run(std::process::Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://127.0.0.1:{}/{repo}:v1", var("HUB_PORT")),
    ]));
    assert_eq!(
        format!("sha256:{}", sha256_hex(&out.stdout)),
        var("DIGEST_MULTI")
    );
}
