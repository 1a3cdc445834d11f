//! Smoke test: the same release build under `wrangler dev` (Miniflare), as a user runs it
//! locally. Run by `tests/run.sh`.

use crate::common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        // wrangler leaves workerd children behind unless its whole process group goes
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-s", "TERM", "--", &group])
            .status();
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .status();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn wrangler_dev_serves_the_release_build() {
    use std::os::unix::process::CommandExt;
    let repo = var("REPO");
    let dir = tempdir("wrangler");
    let port = 18787;
    std::fs::write(
        dir.join("wrangler.toml"),
        format!(
            r#"name = "registry-proxy-smoke"
main = "{repo}/build/worker/shim.mjs"
compatibility_date = "2026-04-01"
[vars]
ROUTES = {{ "open.example.test" = "{open}", "docker.example.test" = {{ upstream = "{hub}", docker_hub = true }} }}
"#,
            open = var("OPEN_URL"),
            hub = var("HUB_URL"),
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("wrangler.log")).unwrap();
    let child = Command::new(format!("{repo}/node_modules/.bin/wrangler"))
        .args([
            "dev",
            "--ip",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--config",
        ])
        .arg(dir.join("wrangler.toml"))
        .current_dir(&dir)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("CI", "true")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("wrangler");
    let _guard = Killed(child);
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-H",
                "Host: open.example.test",
                &url("/v2/"),
            ])
            .status()
            .unwrap()
            .success();
        if up {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "wrangler dev did not come up:\n{}",
            std::fs::read_to_string(dir.join("wrangler.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let r = curl(
        &url("/v2/library/hello/manifests/latest"),
        &[
            "-H",
            "Host: open.example.test",
            "-H",
            "Accept: application/vnd.oci.image.index.v1+json",
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("docker-content-digest"),
        Some(var("DIGEST_HELLO_LATEST").as_str())
    );
    // a TOML table in [vars] arrives as an object and is understood
    let r = curl(&url("/v2/"), &["-H", "Host: docker.example.test"]);
    assert_eq!(r.status, 401);
    let www = r.header("www-authenticate").unwrap();
    assert!(
        www.contains("docker.example.test") && www.contains("/v2/auth\""),
        "{www}"
    );
    let r = curl(
        &url("/v2/hello/manifests/latest"),
        &["-H", "Host: docker.example.test"],
    );
    assert_eq!(r.status, 301);
}
