//! The landing page: browsers get a self-contained page with recipes for the very host they
//! reached; registry clients at `/` are sent to `/v2/`. Run by `tests/run.sh`.

use crate::common::*;
use std::process::Command;

const BROWSER_ACCEPT: &str =
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn root_is_a_page_for_browsers_and_a_redirect_for_registry_clients() {
    let r = curl(
        &proxy_url("docker.example.test", "/"),
        &["-H", BROWSER_ACCEPT],
    );
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = r.text();
    let host = proxy("docker.example.test");
    for needle in [
        format!("docker pull {host}/library/alpine:latest"),
        format!("&quot;registry-mirrors&quot;: [&quot;https://{host}&quot;]"),
        format!("[host.&quot;https://{host}&quot;]"),
        format!("location = &quot;{host}&quot;"),
    ] {
        assert!(html.contains(&needle), "missing {needle}");
    }
    // nothing from elsewhere: no URL in the page but this host's
    for attr in ["src=", "href=\"http", "url("] {
        assert!(!html.contains(attr), "page loads something: {attr}");
    }

    // the same Worker on another host name fronts another registry: the page says so
    let r = curl(
        &proxy_url("open.example.test", "/"),
        &["-H", BROWSER_ACCEPT],
    );
    assert_eq!(r.status, 200);
    let html = r.text();
    // the name ROUTES gives that registry
    assert!(html.contains("/etc/containerd/certs.d/open.registry.test/hosts.toml"));
    assert!(
        !html.contains("registry-mirrors"),
        "docker mirrors only Docker Hub"
    );

    // a registry client (no text/html) at / goes to the API
    let r = curl(
        &proxy_url("docker.example.test", "/"),
        &["-H", "Accept: application/json"],
    );
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some(format!("https://{host}/v2/").as_str())
    );
    // unknown hosts still get the registry's 404, never a page listing routes
    let r = curl(
        &format!("https://localhost:{}/", var("WORKER_HTTPS_PORT")),
        &["-H", "Host: unknown.example.test", "-H", BROWSER_ACCEPT],
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "NAME_UNKNOWN");
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn path_routing_host_lists_every_registry_with_recipes() {
    let r = curl(
        &proxy_url("proxy.example.test", "/"),
        &["-H", BROWSER_ACCEPT],
    );
    assert_eq!(r.status, 200);
    let html = r.text();
    let host = proxy("proxy.example.test");
    for needle in [
        format!("docker pull {host}/hub.registry.test/library/alpine:latest"),
        format!("docker pull {host}/open.registry.test/namespace/image:tag"),
        format!("docker pull {host}/alpine:latest"),
        "/etc/containerd/certs.d/open.registry.test/hosts.toml".to_string(),
        format!("location = &quot;{host}/open.registry.test&quot;"),
        format!("&quot;registry-mirrors&quot;: [&quot;https://{host}&quot;]"),
    ] {
        assert!(html.contains(&needle), "missing {needle}");
    }
}

/// tests/browser/landing.mjs's report of the page at `origin`, its search box used for `query`.
fn browse(repo: &str, origin: &str, out_dir: &std::path::Path, query: &str) -> serde_json::Value {
    let out = run(Command::new("node")
        .arg(format!("{repo}/tests/browser/landing.mjs"))
        .arg(format!("{origin}/"))
        .arg(out_dir)
        .arg(query)
        .current_dir(repo));
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("browser output not JSON ({e}): {stdout}"))
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn landing_page_in_headless_chromium() {
    let repo = var("REPO");
    let out_dir = std::path::PathBuf::from(&repo).join("test-artifacts");
    let origin = format!("https://{}", proxy("docker.example.test"));
    let result = browse(&repo, &origin, &out_dir, "nginx");

    for scheme in ["light", "dark"] {
        assert_eq!(result["status"][scheme], 200, "{result}");
        let text = result["text"][scheme].as_str().unwrap();
        let host = proxy("docker.example.test");
        assert!(
            text.contains(&format!("docker pull {host}/library/alpine:latest")),
            "{text}"
        );
        assert!(text.contains(&format!("[host.\"{origin}\"]")), "{text}");
        let png = out_dir.join(format!("landing-{scheme}.png"));
        let bytes = std::fs::read(&png).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{png:?}"
        );
    }
    assert_ne!(
        result["background"]["light"], result["background"]["dark"],
        "dark mode must change the colours"
    );
    let errors: Vec<_> = result["console"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "error" || m["type"] == "warning")
        .collect();
    assert!(errors.is_empty(), "console: {errors:?}");
    assert_eq!(
        result["pageErrors"].as_array().unwrap().len(),
        0,
        "{result}"
    );
    assert_eq!(result["failed"].as_array().unwrap().len(), 0, "{result}");
    let requests = result["requests"].as_array().unwrap();
    assert!(!requests.is_empty());
    for r in requests {
        let u = r.as_str().unwrap();
        assert!(u.starts_with(&origin), "outside request: {u}");
    }

    // the search box, by keyboard: focused on load, Enter searches, Tab reaches the results
    let host = proxy("docker.example.test");
    assert!(
        requests.iter().any(|r| r
            .as_str()
            .unwrap()
            .starts_with(&format!("{origin}/v1/search?"))),
        "{requests:?}"
    );
    for view in ["light", "dark", "390"] {
        let s = &result["search"][view];
        assert_eq!(s["focusedFirst"], "q", "{view}: {s}");
        assert!(
            s["status"].as_str().unwrap().contains("found"),
            "{view}: {s}"
        );
        let first = s["items"][0].as_str().unwrap_or("");
        assert!(
            first.contains("nginx") && first.contains("official"),
            "{view}: {first}"
        );
        assert!(first.contains("Official build of Nginx."), "{first}");
        assert!(
            first.contains(&format!("docker pull {host}/nginx")),
            "{first}"
        );
        assert!(s["items"].as_array().unwrap().len() >= 4, "{view}: {s}");
        assert_eq!(
            s["tabbed"]["copy"], "s0",
            "{view}: Tab after the search goes to the first Copy: {s}"
        );
        let png = out_dir.join(format!("landing-search-{view}.png"));
        assert!(
            std::fs::read(&png).unwrap().starts_with(b"\x89PNG"),
            "{png:?}"
        );
    }
    let phone = result["search"]["390"]["scrollWidth"].as_u64().unwrap();
    assert!(phone <= 390, "the page scrolls sideways at 390 px: {phone}");

    // what the service says is text, never markup
    let result = browse(&repo, &origin, &out_dir.join("escaping"), "quote");
    let first = result["search"]["light"]["items"][0].as_str().unwrap_or("");
    assert!(first.contains("<script>alert(1)</script>"), "{first}");
    assert!(first.contains("example/quote\"s"), "{first}");
    assert_eq!(result["dialogs"], serde_json::json!([]));
    assert_eq!(result["pageErrors"], serde_json::json!([]));
}
