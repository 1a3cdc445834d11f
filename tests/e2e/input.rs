//! Bad input, as an attacker sends it: a table of requests, each with the status and registry
//! error code it must get. None may panic, hang, answer HTML or plain text, or reach an
//! upstream when the proxy refuses it. Run by `tests/run.sh`.

use crate::common::*;
use std::process::Command;

const ACCEPT: &str = "Accept: application/vnd.oci.image.index.v1+json";

struct Case {
    what: &'static str,
    method: &'static str,
    /// `Host` header (the request goes to workerd's HTTPS port on 127.0.0.1).
    host: String,
    path: String,
    args: Vec<String>,
    status: u16,
    /// The registry error code; `None` for a success.
    code: Option<&'static str>,
}

fn case(what: &'static str, method: &'static str, host: &str, path: String) -> Case {
    Case {
        what,
        method,
        host: host.to_string(),
        path,
        args: vec![],
        status: 400,
        code: None,
    }
}

impl Case {
    fn is(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = Some(code);
        self
    }
    fn ok(mut self, status: u16) -> Self {
        self.status = status;
        self.code = None;
        self
    }
    fn with(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }
}

/// The answer: (status, headers, body), asking workerd at 127.0.0.1 with `Host` as given.
fn send(c: &Case) -> (u16, String, Vec<u8>) {
    let dir = tempdir("input");
    let (h, b) = (dir.join("h"), dir.join("b"));
    let url = format!("https://127.0.0.1:{}{}", var("WORKER_HTTPS_PORT"), c.path);
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--path-as-is", "--max-time", "20"])
        .args([
            "--cacert",
            &var("CA_FILE"),
            "-H",
            &format!("Host: {}", c.host),
        ])
        .arg("-D")
        .arg(&h)
        .arg("-o")
        .arg(&b)
        .args(["-w", "%{http_code}"]);
    match c.method {
        "HEAD" => {
            cmd.arg("-I");
        }
        "GET" => {}
        m => {
            cmd.args(["-X", m]);
        }
    }
    let out = cmd.args(&c.args).arg(&url).output().unwrap();
    let status = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    let headers = std::fs::read_to_string(&h).unwrap_or_default();
    let body = std::fs::read(&b).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    (status, headers.to_ascii_lowercase(), body)
}

fn upstream_logs() -> String {
    let dir = var("E2E_DIR");
    ["logs/open.out", "logs/hub.out", "faults.log", "fake.log"]
        .iter()
        .map(|f| std::fs::read_to_string(format!("{dir}/{f}")).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
        .to_lowercase()
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn bad_input_gets_the_registry_s_error_and_never_an_upstream_request() {
    // `m` marks what the proxy must refuse itself, `u` what goes upstream by design
    let m = unique("bad").to_lowercase();
    let u = unique("up").to_lowercase();
    let open = "open.example.test";
    let docker = "docker.example.test";
    let path_host = "proxy.example.test";
    let hex = |n: usize| "0123456789abcdef".repeat(8)[..n].to_string();
    let form = ["-H", "Content-Type: application/x-www-form-urlencoded"];
    let not_utf8 = tempdir("form").join("form");
    std::fs::write(&not_utf8, b"client_id=\xff\xfe&scope=repository%3Aa%3Apull").unwrap();
    let cases = vec![
        // hosts
        case("unknown host", "GET", "unknown.example.test", format!("/v2/{m}/manifests/x"))
            .is(404, "NAME_UNKNOWN"),
        case("IPv4 literal", "GET", "127.0.0.1", format!("/v2/{m}/manifests/x"))
            .is(404, "NAME_UNKNOWN"),
        case("IPv6 literal", "GET", "[::1]:8443", format!("/v2/{m}/manifests/x"))
            .is(404, "NAME_UNKNOWN"),
        case("a routed host's name inside another", "GET", "open.example.test.evil.test", format!("/v2/{m}/manifests/x"))
            .is(404, "NAME_UNKNOWN"),
        case("trailing dot", "GET", "open.example.test.", "/v2/".into()).ok(200),
        case("upper case", "GET", "OPEN.Example.TEST", "/v2/".into()).ok(200),
        case("another port", "GET", "open.example.test:1234", "/v2/".into()).ok(200),
        // paths: dot segments are resolved as URLs are, then checked
        case("dot segments resolve", "GET", open, format!("/v2/{m}/../library/hello/manifests/latest"))
            .ok(200)
            .with(&["-H", ACCEPT]),
        case("dot segments leave the API", "GET", open, "/v2/library/../../etc/passwd".into())
            .is(404, "UNSUPPORTED"),
        case("encoded dot segments", "GET", open, "/v2/library/%2e%2e/%2E%2E/etc/passwd".into())
            .is(404, "UNSUPPORTED"),
        case("dot segments cannot leave the table", "GET", path_host, format!("/v2/hub.registry.test/../evil.registry.test/{m}/manifests/x"))
            .is(404, "NAME_UNKNOWN"),
        case("empty segment", "GET", open, format!("/v2//{m}/manifests/latest")).is(400, "NAME_INVALID"),
        case("encoded slash", "GET", open, format!("/v2/library%2F{m}/manifests/latest"))
            .is(400, "NAME_INVALID"),
        case("NUL", "GET", open, format!("/v2/{m}%00/manifests/latest")).is(400, "NAME_INVALID"),
        case("control character", "GET", open, format!("/v2/{m}%0a/manifests/latest"))
            .is(400, "NAME_INVALID"),
        case("invalid UTF-8", "GET", open, format!("/v2/{m}%ff/manifests/latest"))
            .is(400, "NAME_INVALID"),
        case("upper-case name", "GET", open, format!("/v2/{}/manifests/latest", m.to_uppercase()))
            .is(400, "NAME_INVALID"),
        case("name over 255 bytes", "GET", open, format!("/v2/{m}{}/manifests/latest", "a".repeat(256)))
            .is(400, "NAME_INVALID"),
        case("path of 8 KiB", "GET", open, format!("/v2/{m}{}/manifests/latest", "/a".repeat(4096)))
            .is(400, "NAME_INVALID"),
        case("not the API", "GET", open, format!("/v2/{m}")).is(404, "UNSUPPORTED"),
        case("not the API either", "GET", open, format!("/v2/{m}/app/files/x")).is(404, "UNSUPPORTED"),
        case("outside /v2/", "GET", open, format!("/{m}")).is(404, "UNSUPPORTED"),
        // references against the distribution grammar
        case("empty tag", "GET", open, format!("/v2/{m}/manifests/")).is(400, "MANIFEST_INVALID"),
        case("tag of 129 characters", "GET", open, format!("/v2/{m}/manifests/{}", "t".repeat(129)))
            .is(400, "MANIFEST_INVALID"),
        case("tag starting with '-'", "GET", open, format!("/v2/{m}/manifests/-x"))
            .is(400, "MANIFEST_INVALID"),
        case("tag with a space", "GET", open, format!("/v2/{m}/manifests/a%20b"))
            .is(400, "MANIFEST_INVALID"),
        case("short sha256", "GET", open, format!("/v2/{m}/blobs/sha256:{}", hex(63)))
            .is(400, "DIGEST_INVALID"),
        case("long sha256", "GET", open, format!("/v2/{m}/blobs/sha256:{}", hex(65)))
            .is(400, "DIGEST_INVALID"),
        case("upper-case sha256", "GET", open, format!("/v2/{m}/blobs/sha256:{}", hex(64).to_uppercase()))
            .is(400, "DIGEST_INVALID"),
        case("sha512 of sha256's length", "GET", open, format!("/v2/{m}/blobs/sha512:{}", hex(64)))
            .is(400, "DIGEST_INVALID"),
        case("manifest by a bad digest", "GET", open, format!("/v2/{m}/manifests/sha256:{}", hex(12)))
            .is(400, "DIGEST_INVALID"),
        case("blob by a tag", "GET", open, format!("/v2/{m}/blobs/latest")).is(400, "DIGEST_INVALID"),
        case("referrers by a tag", "GET", open, format!("/v2/{m}/referrers/latest"))
            .is(400, "DIGEST_INVALID"),
        // methods the API does not have
        case("TRACE", "TRACE", open, "/v2/".into()).is(405, "UNSUPPORTED"),
        case("OPTIONS", "OPTIONS", open, format!("/v2/{m}/manifests/latest")).is(405, "UNSUPPORTED"),
        case("PATCH a manifest", "PATCH", open, format!("/v2/{m}/manifests/latest"))
            .is(405, "UNSUPPORTED"),
        case("PROPFIND a blob", "PROPFIND", open, format!("/v2/{m}/blobs/sha256:{}", hex(64)))
            .is(405, "UNSUPPORTED"),
        case("PUT a tag list", "PUT", open, format!("/v2/{m}/tags/list")).is(405, "UNSUPPORTED"),
        case("POST the version check", "POST", open, "/v2/".into()).is(405, "UNSUPPORTED"),
        case("DELETE the token endpoint", "DELETE", docker, "/v2/auth".into()).is(405, "UNSUPPORTED"),
        case("POST the root", "POST", open, "/".into()).is(404, "UNSUPPORTED"),
        // bodies on methods that take none: not sent on
        case("GET with a body", "GET", open, "/v2/".into())
            .ok(200)
            .with(&["--data-binary", "ignored", "-X", "GET"]),
        case("GET a manifest with a body", "GET", open, "/v2/library/hello/manifests/latest".into())
            .ok(200)
            .with(&["-H", ACCEPT, "--data-binary", "ignored", "-X", "GET"]),
        // the token endpoint
        case("empty scope", "GET", docker, format!("/v2/auth?scope=&client_id={m}")).ok(200),
        case("duplicated scopes", "GET", docker, format!("/v2/auth?scope=repository:library/hello:pull&scope=repository:library/hello:pull&client_id={m}")).ok(200),
        case("query of 20 KiB", "GET", docker, format!("/v2/auth?client_id={m}&scope={}", "repository:a:pull%20".repeat(1000)))
            .is(400, "UNSUPPORTED"),
        case("two registries in one token request", "GET", path_host, format!("/v2/auth?scope=repository:hub.registry.test/{m}:pull&scope=repository:open.registry.test/{m}:pull"))
            .is(400, "UNSUPPORTED"),
        case("unknown grant type: the token service's own answer", "POST", docker, "/v2/auth".into())
            .with(&form)
            .with(&["--data", &format!("grant_type=magic&service=x&client_id={m}")])
            .is(400, "UNSUPPORTED"),
        case("form over 16 KiB by its length", "POST", docker, "/v2/auth".into())
            .with(&form)
            .with(&["--data", &format!("client_id={m}&scope={}", "a".repeat(20_000))])
            .is(400, "UNSUPPORTED"),
        case("form over 16 KiB, chunked", "POST", docker, "/v2/auth".into())
            .with(&form)
            .with(&["-H", "Transfer-Encoding: chunked", "--data", &format!("client_id={m}&scope={}", "a".repeat(20_000))])
            .is(400, "UNSUPPORTED"),
        case("form that is not UTF-8", "POST", docker, "/v2/auth".into())
            .with(&form)
            .with(&["--data-binary", &format!("@{}", not_utf8.display())])
            .is(400, "UNSUPPORTED"),
        // what upstreams send: challenges and Locations
        case("no challenge", "GET", "bare.example.test", format!("/v2/{u}/manifests/latest"))
            .is(502, "UNAVAILABLE"),
        case("malformed challenge", "GET", "broken.example.test", format!("/v2/{u}/manifests/latest"))
            .is(502, "UNAVAILABLE"),
        case("Basic challenge: the upstream's own 401", "GET", "faults.example.test", format!("/v2/challenge-basic/{u}/manifests/latest"))
            .is(401, "UNAUTHORIZED"),
        case("realm that is no http(s) URL", "GET", "tokenfile.example.test", format!("/v2/auth?scope=repository:{u}:pull"))
            .is(502, "UNAVAILABLE"),
        case("relative Location", "GET", "faults.example.test", format!("/v2/redirect-relative/{u}/manifests/v1"))
            .ok(200),
        case("malformed Location", "GET", "faults.example.test", format!("/v2/redirect-bad/{u}/manifests/v1"))
            .is(502, "UNAVAILABLE"),
        case("looping Location", "GET", "faults.example.test", format!("/v2/redirect-loop/{u}/manifests/v1"))
            .is(502, "UNAVAILABLE"),
        case("ftp Location", "GET", "faults.example.test", format!("/v2/redirect-ftp/{u}/manifests/v1"))
            .is(502, "UNAVAILABLE"),
        case("javascript Location", "GET", "faults.example.test", format!("/v2/redirect-script/{u}/manifests/v1"))
            .is(502, "UNAVAILABLE"),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let t0 = std::time::Instant::now();
        let (status, headers, body) = send(c);
        let took = t0.elapsed();
        let mut bad = Vec::new();
        if status != c.status {
            bad.push(format!("status {status}, not {}", c.status));
        }
        if took.as_secs() >= 10 {
            bad.push(format!("took {took:?}"));
        }
        if let Some(code) = c.code {
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(v) if v["errors"][0]["code"] == code => {}
                _ => bad.push(format!(
                    "body {:?}, not a {code} error",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                )),
            }
            if !headers.contains("content-type: application/json") {
                bad.push("not application/json".into());
            }
        }
        if status == 405 && !headers.contains("\nallow: ") {
            bad.push("405 without Allow".into());
        }
        if !bad.is_empty() {
            failures.push(format!(
                "{} ({} {} {}): {}",
                c.what,
                c.method,
                c.host,
                c.path.chars().take(80).collect::<String>(),
                bad.join("; ")
            ));
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    // what the proxy refused never reached an upstream
    if upstream_logs().contains(&m) {
        failures.push(format!("a request marked {m} reached an upstream"));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
