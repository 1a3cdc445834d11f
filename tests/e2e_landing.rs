//! The landing page: browsers get a self-contained page with recipes for the very host they
//! reached; registry clients at `/` are sent to `/v2/`. Run by `tests/run.sh`.

mod common;
use common::*;
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

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn landing_page_in_headless_chromium() {
    let repo = var("REPO");
    let out_dir = std::path::PathBuf::from(&repo).join("test-artifacts");
    let origin = format!("https://{}", proxy("docker.example.test"));
    let out = run(Command::new("node")
        .arg(format!("{repo}/tests/browser/landing.mjs"))
        .arg(format!("{origin}/"))
        .arg(&out_dir)
        .current_dir(&repo));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("browser output not JSON ({e}): {stdout}"));

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
}
