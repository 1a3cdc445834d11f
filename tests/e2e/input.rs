//! Bad input, as an attacker sends it: a table of requests, each with the status and registry
//! error code it must get. None may panic, hang, answer HTML or plain text, or reach an
//! upstream when the proxy refuses it. Run by `tests/run.sh`.

use crate::common::*;
use std::cell::RefCell;
use std::process::Command;

const ACCEPT: &str = "Accept: application/vnd.oci.image.index.v1+json";
const FORM: [&str; 2] = ["-H", "Content-Type: application/x-www-form-urlencoded"];
const OPEN: &str = "open.example.test";
const DOCKER: &str = "docker.example.test";
const PATH_HOST: &str = "proxy.example.test";

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
    /// Whether `marker` is in its request (path or curl arguments), in any case.
    fn carries(&self, marker: &str) -> bool {
        let marker = marker.to_lowercase();
        std::iter::once(&self.path)
            .chain(&self.args)
            .any(|s| s.to_lowercase().contains(&marker))
    }
}

/// The words the table's requests carry, one for each case that carries one: `refused()` for
/// what the proxy must answer itself (the word must reach no upstream), `sent()` for what goes
/// upstream by design (the word must reach one: proof that the logs are read). A word of its
/// own per case, so that an upstream's log line says which case reached it.
struct Marks {
    base: String,
    refused: RefCell<Vec<String>>,
    sent: RefCell<Vec<String>>,
}

impl Marks {
    fn new() -> Marks {
        Marks {
            base: unique("bad").to_lowercase(),
            refused: RefCell::default(),
            sent: RefCell::default(),
        }
    }
    fn next(&self, kind: &RefCell<Vec<String>>) -> String {
        let n = self.refused.borrow().len() + self.sent.borrow().len();
        assert!(n < 100, "two digits a case");
        let m = format!("{}n{n:02}", self.base);
        kind.borrow_mut().push(m.clone());
        m
    }
    fn refused(&self) -> String {
        self.next(&self.refused)
    }
    fn sent(&self) -> String {
        self.next(&self.sent)
    }
}

// The tables stay one case a line or two (rustfmt would spread each over six).

#[rustfmt::skip]
fn host_cases(k: &Marks) -> Vec<Case> {
    vec![
        case("unknown host", "GET", "unknown.example.test", format!("/v2/{m}/manifests/x", m = k.refused()))
            .is(404, "NAME_UNKNOWN"),
        case("IPv4 literal", "GET", "127.0.0.1", format!("/v2/{m}/manifests/x", m = k.refused()))
            .is(404, "NAME_UNKNOWN"),
        case("IPv6 literal", "GET", "[::1]:8443", format!("/v2/{m}/manifests/x", m = k.refused()))
            .is(404, "NAME_UNKNOWN"),
        case("a routed host's name inside another", "GET", "open.example.test.evil.test", format!("/v2/{m}/manifests/x", m = k.refused()))
            .is(404, "NAME_UNKNOWN"),
        case("trailing dot", "GET", "open.example.test.", "/v2/".into()).ok(200),
        case("upper case", "GET", "OPEN.Example.TEST", "/v2/".into()).ok(200),
        case("another port", "GET", "open.example.test:1234", "/v2/".into()).ok(200),
    ]
}

/// Paths: dot segments are resolved as URLs are, then checked.
#[rustfmt::skip]
fn path_cases(k: &Marks) -> Vec<Case> {
    vec![
        // (the word is resolved away with its segment: the upstream gets the hello index)
        case("dot segments resolve", "GET", OPEN, format!("/v2/{m}/../library/hello/manifests/latest", m = k.refused()))
            .ok(200)
            .with(&["-H", ACCEPT]),
        case("dot segments leave the API", "GET", OPEN, format!("/v2/library/../../etc/passwd?{m}", m = k.refused()))
            .is(404, "UNSUPPORTED"),
        case("encoded dot segments", "GET", OPEN, format!("/v2/library/%2e%2e/%2E%2E/etc/passwd?{m}", m = k.refused()))
            .is(404, "UNSUPPORTED"),
        case("dot segments cannot leave the table", "GET", PATH_HOST, format!("/v2/hub.registry.test/../evil.registry.test/{m}/manifests/x", m = k.refused()))
            .is(404, "NAME_UNKNOWN"),
        case("empty segment", "GET", OPEN, format!("/v2//{m}/manifests/latest", m = k.refused())).is(400, "NAME_INVALID"),
        case("encoded slash", "GET", OPEN, format!("/v2/library%2F{m}/manifests/latest", m = k.refused()))
            .is(400, "NAME_INVALID"),
        case("NUL", "GET", OPEN, format!("/v2/{m}%00/manifests/latest", m = k.refused())).is(400, "NAME_INVALID"),
        case("control character", "GET", OPEN, format!("/v2/{m}%0a/manifests/latest", m = k.refused()))
            .is(400, "NAME_INVALID"),
        case("invalid UTF-8", "GET", OPEN, format!("/v2/{m}%ff/manifests/latest", m = k.refused()))
            .is(400, "NAME_INVALID"),
        case("upper-case name", "GET", OPEN, format!("/v2/{}/manifests/latest", k.refused().to_uppercase()))
            .is(400, "NAME_INVALID"),
        case("name over 255 bytes", "GET", OPEN, format!("/v2/{m}{}/manifests/latest", "a".repeat(256), m = k.refused()))
            .is(400, "NAME_INVALID"),
        case("path of 8 KiB", "GET", OPEN, format!("/v2/{m}{}/manifests/latest", "/a".repeat(4096), m = k.refused()))
            .is(400, "NAME_INVALID"),
        case("not the API", "GET", OPEN, format!("/v2/{m}", m = k.refused())).is(404, "UNSUPPORTED"),
        case("not the API either", "GET", OPEN, format!("/v2/{m}/app/files/x", m = k.refused())).is(404, "UNSUPPORTED"),
        case("outside /v2/", "GET", OPEN, format!("/{m}", m = k.refused())).is(404, "UNSUPPORTED"),
    ]
}

/// References against the distribution grammar.
#[rustfmt::skip]
fn reference_cases(k: &Marks) -> Vec<Case> {
    let hex = |n: usize| "0123456789abcdef".repeat(8)[..n].to_string();
    vec![
        case("empty tag", "GET", OPEN, format!("/v2/{m}/manifests/", m = k.refused())).is(400, "MANIFEST_INVALID"),
        case("tag of 129 characters", "GET", OPEN, format!("/v2/{m}/manifests/{}", "t".repeat(129), m = k.refused()))
            .is(400, "MANIFEST_INVALID"),
        case("tag starting with '-'", "GET", OPEN, format!("/v2/{m}/manifests/-x", m = k.refused()))
            .is(400, "MANIFEST_INVALID"),
        case("tag with a space", "GET", OPEN, format!("/v2/{m}/manifests/a%20b", m = k.refused()))
            .is(400, "MANIFEST_INVALID"),
        case("short sha256", "GET", OPEN, format!("/v2/{m}/blobs/sha256:{}", hex(63), m = k.refused()))
            .is(400, "DIGEST_INVALID"),
        case("long sha256", "GET", OPEN, format!("/v2/{m}/blobs/sha256:{}", hex(65), m = k.refused()))
            .is(400, "DIGEST_INVALID"),
        case("upper-case sha256", "GET", OPEN, format!("/v2/{m}/blobs/sha256:{}", hex(64).to_uppercase(), m = k.refused()))
            .is(400, "DIGEST_INVALID"),
        case("sha512 of sha256's length", "GET", OPEN, format!("/v2/{m}/blobs/sha512:{}", hex(64), m = k.refused()))
            .is(400, "DIGEST_INVALID"),
        case("manifest by a bad digest", "GET", OPEN, format!("/v2/{m}/manifests/sha256:{}", hex(12), m = k.refused()))
            .is(400, "DIGEST_INVALID"),
        case("blob by a tag", "GET", OPEN, format!("/v2/{m}/blobs/latest", m = k.refused())).is(400, "DIGEST_INVALID"),
        case("referrers by a tag", "GET", OPEN, format!("/v2/{m}/referrers/latest", m = k.refused()))
            .is(400, "DIGEST_INVALID"),
    ]
}

/// Methods the API does not have, and bodies on methods that take none (not sent on).
#[rustfmt::skip]
fn method_cases(k: &Marks) -> Vec<Case> {
    let hex = "0123456789abcdef".repeat(4);
    vec![
        case("TRACE", "TRACE", OPEN, format!("/v2/?{m}", m = k.refused())).is(405, "UNSUPPORTED"),
        case("OPTIONS", "OPTIONS", OPEN, format!("/v2/{m}/manifests/latest", m = k.refused())).is(405, "UNSUPPORTED"),
        case("PATCH a manifest", "PATCH", OPEN, format!("/v2/{m}/manifests/latest", m = k.refused()))
            .is(405, "UNSUPPORTED"),
        case("PROPFIND a blob", "PROPFIND", OPEN, format!("/v2/{m}/blobs/sha256:{hex}", m = k.refused()))
            .is(405, "UNSUPPORTED"),
        case("PUT a tag list", "PUT", OPEN, format!("/v2/{m}/tags/list", m = k.refused())).is(405, "UNSUPPORTED"),
        case("POST the version check", "POST", OPEN, format!("/v2/?{m}", m = k.refused())).is(405, "UNSUPPORTED"),
        case("DELETE the token endpoint", "DELETE", DOCKER, format!("/v2/auth?client_id={m}", m = k.refused()))
            .is(405, "UNSUPPORTED"),
        case("POST the root", "POST", OPEN, format!("/?{m}", m = k.refused())).is(404, "UNSUPPORTED"),
        case("GET with a body", "GET", OPEN, "/v2/".into())
            .ok(200)
            .with(&["--data-binary", "ignored", "-X", "GET"]),
        case("GET a manifest with a body", "GET", OPEN, "/v2/library/hello/manifests/latest".into())
            .ok(200)
            .with(&["-H", ACCEPT, "--data-binary", "ignored", "-X", "GET"]),
    ]
}

/// The token endpoint: what it sends the token service, and the forms it must refuse itself
/// (the harness's token service answers a form without a grant type with the same `400
/// UNSUPPORTED`: only its log tells the two apart).
#[rustfmt::skip]
fn token_cases(k: &Marks) -> Vec<Case> {
    // (the file is named for its word too, so that a failure names its case)
    let m = k.refused();
    let not_utf8 = tempdir("form").join(format!("{m}.form"));
    let mut form = b"client_id=\xff\xfe".to_vec();
    form.extend(m.as_bytes());
    form.extend(b"&scope=repository%3Aa%3Apull");
    std::fs::write(&not_utf8, form).unwrap();
    vec![
        case("empty scope", "GET", DOCKER, format!("/v2/auth?scope=&client_id={u}", u = k.sent())).ok(200),
        case("duplicated scopes", "GET", DOCKER, format!("/v2/auth?scope=repository:library/hello:pull&scope=repository:library/hello:pull&client_id={u}", u = k.sent())).ok(200),
        case("query of 20 KiB", "GET", DOCKER, format!("/v2/auth?client_id={m}&scope={}", "repository:a:pull%20".repeat(1000), m = k.refused()))
            .is(400, "UNSUPPORTED"),
        case("two registries in one token request", "GET", PATH_HOST, format!("/v2/auth?scope=repository:hub.registry.test/{m}:pull&scope=repository:open.registry.test/{m}:pull", m = k.refused()))
            .is(400, "UNSUPPORTED"),
        case("unknown grant type: the token service's own answer", "POST", DOCKER, "/v2/auth".into())
            .with(&FORM)
            .with(&["--data", &format!("grant_type=magic&service=x&client_id={u}", u = k.sent())])
            .is(400, "UNSUPPORTED"),
        case("form over 16 KiB by its length", "POST", DOCKER, "/v2/auth".into())
            .with(&FORM)
            .with(&["--data", &format!("client_id={m}&scope={}", "a".repeat(20_000), m = k.refused())])
            .is(400, "UNSUPPORTED"),
        case("form over 16 KiB, chunked", "POST", DOCKER, "/v2/auth".into())
            .with(&FORM)
            .with(&["-H", "Transfer-Encoding: chunked", "--data", &format!("client_id={m}&scope={}", "a".repeat(20_000), m = k.refused())])
            .is(400, "UNSUPPORTED"),
        case("form that is not UTF-8", "POST", DOCKER, "/v2/auth".into())
            .with(&FORM)
            .with(&["--data-binary", &format!("@{}", not_utf8.display())])
            .is(400, "UNSUPPORTED"),
    ]
}

/// What upstreams send: challenges and Locations (the first request goes upstream).
#[rustfmt::skip]
fn upstream_cases(k: &Marks) -> Vec<Case> {
    let faults = "faults.example.test";
    vec![
        case("no challenge", "GET", "bare.example.test", format!("/v2/{u}/manifests/latest", u = k.sent()))
            .is(502, "UNAVAILABLE"),
        case("malformed challenge", "GET", "broken.example.test", format!("/v2/{u}/manifests/latest", u = k.sent()))
            .is(502, "UNAVAILABLE"),
        case("Basic challenge: the upstream's own 401", "GET", faults, format!("/v2/challenge-basic/{u}/manifests/latest", u = k.sent()))
            .is(401, "UNAUTHORIZED"),
        // (only the version check goes upstream, for the realm: the scope goes nowhere)
        case("realm that is no http(s) URL", "GET", "tokenfile.example.test", format!("/v2/auth?scope=repository:{m}:pull", m = k.refused()))
            .is(502, "UNAVAILABLE"),
        case("relative Location", "GET", faults, format!("/v2/redirect-relative/{u}/manifests/v1", u = k.sent()))
            .ok(200),
        case("malformed Location", "GET", faults, format!("/v2/redirect-bad/{u}/manifests/v1", u = k.sent()))
            .is(502, "UNAVAILABLE"),
        case("looping Location", "GET", faults, format!("/v2/redirect-loop/{u}/manifests/v1", u = k.sent()))
            .is(502, "UNAVAILABLE"),
        case("ftp Location", "GET", faults, format!("/v2/redirect-ftp/{u}/manifests/v1", u = k.sent()))
            .is(502, "UNAVAILABLE"),
        case("javascript Location", "GET", faults, format!("/v2/redirect-script/{u}/manifests/v1", u = k.sent()))
            .is(502, "UNAVAILABLE"),
    ]
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

/// What is wrong with the answer to `c` (nothing: empty): its status, its time, its body's
/// registry error, its content type, a 405's `Allow`.
fn answer_faults(c: &Case) -> Vec<String> {
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
    bad
}

/// The cases whose word the upstreams' logs (every one the harness runs, token services
/// included, each caught up) hold though the proxy was to refuse them, and those whose word
/// they lack though they went upstream by design.
fn upstream_faults(cases: &[Case], k: &Marks) -> Vec<String> {
    let logs = upstream_logs_text().to_lowercase();
    let what = |m: &str| cases.iter().find(|c| c.carries(m)).map_or("?", |c| c.what);
    let mut faults = Vec::new();
    for m in k.refused.borrow().iter() {
        if logs.contains(m.as_str()) {
            faults.push(format!("{} (marked {m}): reached an upstream", what(m)));
        }
    }
    for m in k.sent.borrow().iter() {
        if !logs.contains(m.as_str()) {
            let what = what(m);
            faults.push(format!(
                "{what} (marked {m}): sent upstream, in no upstream's log"
            ));
        }
    }
    faults
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn bad_input_gets_the_registry_s_error_and_never_an_upstream_request() {
    let k = Marks::new();
    let cases: Vec<Case> = [
        host_cases(&k),
        path_cases(&k),
        reference_cases(&k),
        method_cases(&k),
        token_cases(&k),
        upstream_cases(&k),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let bad = answer_faults(c);
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
    // what the proxy refused never reached an upstream
    failures.extend(upstream_faults(&cases, &k));
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
