//! `docker search` and `podman search` through the proxy (issue 14), against the harness's
//! stand-in for Docker Hub's search service (tests/harness/search_server.py, the hub route's
//! `search`): what reaches it, what comes back, and what is refused before any request.

use crate::common::*;
use serde_json::json;

/// The stand-in's log lines since line `from` (other tests search at the same time: filter).
fn searches(from: usize) -> Vec<serde_json::Value> {
    log_lines("SEARCH_LOG").into_iter().skip(from).collect()
}

/// Those of them that asked for `n`.
fn searches_for(from: usize, n: &str) -> Vec<serde_json::Value> {
    searches(from)
        .into_iter()
        .filter(|s| s["query"]["n"] == json!([n]))
        .collect()
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn docker_and_podman_search_through_the_proxy_with_the_query_as_sent() {
    daemons();
    let host = proxy("docker.example.test");
    let from = log_lines("SEARCH_LOG").len();
    let out = run(docker(&tempdir("search")).args([
        "search",
        "--limit",
        "7",
        "--format",
        "{{.Name}}|{{.StarCount}}|{{.IsOfficial}}|{{.Description}}",
        &format!("{host}/nginx"),
    ]));
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        listed.lines().next() == Some("nginx|20813|[OK]|Official build of Nginx."),
        "{listed}"
    );
    assert!(listed.contains("bitnami/nginx|199|"), "{listed}");
    let seen = searches_for(from, "7");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["path"], "/v1/search");
    assert_eq!(seen[0]["query"], json!({"q": ["nginx"], "n": ["7"]}));
    // docker sends its (empty) login with a search; none of it goes to the search service
    assert_eq!(
        (seen[0]["authorization"].clone(), seen[0]["cookie"].clone()),
        (json!(false), json!(false))
    );

    let from = log_lines("SEARCH_LOG").len();
    let root = tempdir("podman-search");
    let out = run(podman(&root).args([
        "search",
        "--limit",
        "3",
        "--format",
        "{{.Name}}|{{.Description}}",
        &format!("{host}/library/nginx"),
    ]));
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        listed.lines().next() == Some(&format!("{host}/nginx|Official build of Nginx.")),
        "{listed}"
    );
    assert_eq!(listed.lines().count(), 3, "{listed}");
    let seen = searches_for(from, "3");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["query"], json!({"q": ["nginx"], "n": ["3"]}));

    // other registries have no search here: refused, nothing asked
    let from = log_lines("SEARCH_LOG").len();
    let name = unique("nosearch");
    run_fails(
        docker(&tempdir("search-team"))
            .args(["search", &format!("{}/{name}", proxy("team.example.test"))]),
        &["Unexpected status code 404"],
    );
    assert!(!searches(from).iter().any(|s| s.to_string().contains(&name)));
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn a_search_answer_passes_as_the_service_gave_it_and_bad_queries_never_reach_it() {
    let url = |host: &str, query: &str| proxy_url(host, &format!("/v1/search?{query}"));
    // the same JSON as the service's own, its rate-limit headers, not its cookie
    let query = "q=nginx&n=2&page=2";
    let direct = curl(&format!("{}/v1/search?{query}", var("SEARCH_URL")), &[]);
    let r = curl(&url("docker.example.test", query), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), direct.json());
    assert_eq!(r.json()["page"], 2);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-ratelimit-limit"), Some("180"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("179"));
    assert_eq!(r.header("set-cookie"), None);
    assert_eq!(r.header("x-search-backend"), None);
    // the service's 429, with its Retry-After; a body cut short is the service's failure
    let r = curl(&url("docker.example.test", "q=ratelimited"), &[]);
    assert_eq!((r.status, r.header("retry-after")), (429, Some("42")));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    let r = curl(&url("docker.example.test", "q=cutshort"), &[]);
    assert_eq!(
        (r.status, r.error_code()),
        (502, "UNAVAILABLE".into()),
        "{}",
        r.text()
    );
    // a path-routing host searches its default registry, or the one the query names first
    let r = curl(
        &url("proxy.example.test", "q=hub.registry.test%2Fnginx&n=1"),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["results"][0]["name"], "nginx");
    assert_eq!(r.json()["query"], "nginx");

    // refused before any request to the service (each names `m`, or asks n=13)
    let from = log_lines("SEARCH_LOG").len();
    let m = unique("refused");
    let long = format!("q={m}{}", "a".repeat(257));
    let long = long.as_str();
    let q = |rest: &str| format!("q={m}{rest}");
    let (nul, twice, n101, n0, lots, page0) = (
        q("%00b"),
        format!("q={m}&q=b"),
        q("&n=101"),
        q("&n=0"),
        q("&n=lots"),
        q("&page=0"),
    );
    let (team, ns) = (format!("q={m}"), format!("q=team.registry.test%2F{m}"));
    for (host, query, status, code) in [
        ("docker.example.test", "", 400, "UNSUPPORTED"),
        ("docker.example.test", "q=", 400, "UNSUPPORTED"),
        ("docker.example.test", "n=13", 400, "UNSUPPORTED"),
        ("docker.example.test", long, 400, "UNSUPPORTED"),
        ("docker.example.test", &nul, 400, "UNSUPPORTED"),
        ("docker.example.test", &twice, 400, "UNSUPPORTED"),
        (
            "docker.example.test",
            &n101,
            400,
            "PAGINATION_NUMBER_INVALID",
        ),
        ("docker.example.test", &n0, 400, "PAGINATION_NUMBER_INVALID"),
        (
            "docker.example.test",
            &lots,
            400,
            "PAGINATION_NUMBER_INVALID",
        ),
        (
            "docker.example.test",
            &page0,
            400,
            "PAGINATION_NUMBER_INVALID",
        ),
        ("team.example.test", &team, 404, "UNSUPPORTED"),
        ("open.example.test", &team, 404, "UNSUPPORTED"),
        ("proxy.example.test", &ns, 404, "UNSUPPORTED"),
    ] {
        let r = curl(&url(host, query), &[]);
        assert_eq!(
            (r.status, r.error_code()),
            (status, code.into()),
            "{host} {query}: {}",
            r.text()
        );
    }
    let r = curl(&url("docker.example.test", &team), &["-X", "POST"]);
    assert_eq!(r.status, 405);
    // nothing but /v1/search is reachable through it
    for path in [
        "/v1/_ping",
        "/v1/search/x",
        "/v1/repositories/nginx/images",
        "/v1/",
    ] {
        let r = curl(&proxy_url("docker.example.test", path), &[]);
        assert_eq!(r.status, 404, "{path}");
    }
    let reached: Vec<_> = searches(from)
        .into_iter()
        .filter(|s| {
            s.to_string().contains(&m)
                || s["query"]["n"] == json!(["13"])
                || s["path"] != "/v1/search"
        })
        .collect();
    assert!(reached.is_empty(), "{reached:?}");
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn with_proxy_users_a_search_needs_a_login_and_docker_search_sends_it() {
    daemons();
    let key = "rpk_e2e-search-user-key-of-some-length-0123456789";
    let users = json!({"sam": {"sha256": sha256_hex(key.as_bytes()), "pull_only": true}});
    let mf = Miniflare::start(json!({
        "PROXY_USERS": users.to_string(),
        "PROXY_TOKEN_SECRET": "e2e-token-secret-of-forty-characters-zz",
    }));
    let from = log_lines("SEARCH_LOG").len();
    let path = "/v1/search?q=nginx&n=17";
    let r = curl(&mf.url("docker.example.test", path), &[]);
    assert_eq!((r.status, r.error_code()), (401, "UNAUTHORIZED".into()));
    assert!(r
        .header("www-authenticate")
        .is_some_and(|w| w.contains("/v2/auth")));
    assert!(searches_for(from, "17").is_empty());
    let r = curl(
        &mf.url("docker.example.test", path),
        &["-u", &format!("sam:{key}")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // docker logs in, then searches with the login it keeps
    let config = tempdir("docker-search-users");
    let host = mf.host("docker.example.test");
    run(docker(&config).args(["login", "--username", "sam", "--password", key, &host]));
    let out = run(docker(&config).args([
        "search",
        "--limit",
        "17",
        "--format",
        "{{.Name}}",
        &format!("{host}/grafana"),
    ]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "grafana/grafana"
    );
    let seen = searches_for(from, "17");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|s| s["authorization"] == false), "{seen:?}");
    assert!(!mf.log_text().contains(key));
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn landing_off_is_an_unknown_path_and_a_url_redirects_browsers() {
    const BROWSER: &str = "Accept: text/html,application/xhtml+xml,*/*;q=0.8";
    let off = Miniflare::start(json!({"LANDING": "off"}));
    let root = curl(&off.url("docker.example.test", "/"), &["-H", BROWSER]);
    let unknown = curl(
        &off.url("docker.example.test", "/nothing-here"),
        &["-H", BROWSER],
    );
    assert_eq!((root.status, root.text()), (unknown.status, unknown.text()));
    assert_eq!(root.status, 404);
    assert!(!root.text().contains("<html"), "{}", root.text());
    let to = "https://operator.example.org/about";
    let away = Miniflare::start(json!({"LANDING": to}));
    let r = curl(&away.url("docker.example.test", "/"), &["-H", BROWSER]);
    assert_eq!((r.status, r.header("location")), (302, Some(to)));
    // registry clients are still sent to the API, and the API works
    for mf in [&off, &away] {
        let r = curl(&mf.url("docker.example.test", "/"), &[]);
        assert_eq!(r.status, 301);
        assert!(r.header("location").is_some_and(|l| l.ends_with("/v2/")));
        assert_eq!(
            curl(&mf.url("docker.example.test", "/v2/"), &[]).status,
            401
        );
    }
    // the default is the page
    let r = curl(&proxy_url("docker.example.test", "/"), &["-H", BROWSER]);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("id=\"search\""));
    // a bad value names the var
    let bad = Miniflare::start(json!({"LANDING": "http://operator.example.org/"}));
    let r = curl(&bad.url("docker.example.test", "/v2/"), &[]);
    assert_eq!(r.status, 500);
    assert!(r.text().contains("LANDING"), "{}", r.text());
}
