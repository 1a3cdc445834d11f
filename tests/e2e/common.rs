//! Shared plumbing of the end-to-end tests: the state `tests/harness/up.sh` wrote, HTTP through
//! curl, and the real clients. These tests need the harness; `tests/run.sh` starts it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

pub fn env() -> &'static HashMap<String, String> {
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = std::env::var("E2E_DIR").unwrap_or_else(|_| "/tmp/rp-e2e".into());
        let text = std::fs::read_to_string(format!("{dir}/env")).unwrap_or_else(|e| {
            panic!("{dir}/env: {e}; start the harness with tests/run.sh (or tests/harness/up.sh)")
        });
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').replace('\\', "")))
            .collect()
    })
}

pub fn var(key: &str) -> String {
    env()
        .get(key)
        .unwrap_or_else(|| panic!("{key} missing from the harness env file"))
        .clone()
}

/// `https://<host>:8443`: every test goes through a non-default port, which the original
/// Worker could not serve.
pub fn proxy(host: &str) -> String {
    format!("{host}:{}", var("WORKER_HTTPS_PORT"))
}

pub fn proxy_url(host: &str, path: &str) -> String {
    format!("https://{}{path}", proxy(host))
}

/// A port of its own for a server a test starts (Miniflare, a relay): 8450 and up, one suite
/// at a time (the harness's ports are fixed too).
pub fn next_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(8450);
    let port = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    assert!(port < 8600, "out of test ports");
    port
}

/// The hub's user, `user:password` (the team registry does not know her).
pub fn alice() -> String {
    format!("{}:{}", var("TEST_USER"), var("TEST_PASSWORD"))
}

/// The team registry's user, `user:password` (the hub does not know him).
pub fn bob() -> String {
    format!("{}:{}", var("TEAM_USER"), var("TEAM_PASSWORD"))
}

/// Standard base64 (a Basic `Authorization` header's), the crate's own.
pub fn base64(s: &str) -> String {
    registry_proxy::digest::base64(s.as_bytes())
}

/// A unique word for this test run, to find one's own lines in shared logs.
pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // short: podman refuses run roots longer than 50 characters
    format!("{prefix}{:x}{:x}{n}", std::process::id(), t % 0xff_ffff)
}

pub fn tempdir(name: &str) -> PathBuf {
    let d = PathBuf::from(var("E2E_DIR")).join("t").join(unique(name));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    /// The first registry error code of a `{"errors":[…]}` body.
    pub fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no registry error in {}", self.text()))
            .to_string()
    }
}

/// One request with curl (no redirects followed, the test CA trusted). `args` are extra curl
/// arguments before the URL.
pub fn curl(url: &str, args: &[&str]) -> Resp {
    let dir = tempdir("curl");
    let (h, b) = (dir.join("h"), dir.join("b"));
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "--cacert", &var("CA_FILE")])
        .arg("-D")
        .arg(&h)
        .arg("-o")
        .arg(&b)
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl {url} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = std::fs::read_to_string(&h).unwrap();
    // the last response block (curl writes one per 100-continue)
    let block = head.trim_end().rsplit("\r\n\r\n").next().unwrap();
    let mut lines = block.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    // with -I curl writes the headers where the body would go
    let body = if args.contains(&"-I") {
        Vec::new()
    } else {
        std::fs::read(&b).unwrap_or_default()
    };
    let _ = std::fs::remove_dir_all(&dir);
    Resp {
        status,
        headers,
        body,
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command expected to fail, and to say why: its combined output must hold one of
/// `any_of` (the status or error code meant, as that client words it). Returns the output.
pub fn run_fails(cmd: &mut Command, any_of: &[&str]) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{cmd:?} should have failed:\n{text}");
    refused(Err::<(), _>(text), any_of)
}

/// A client's failure (its error: `inspect`'s) that says one of `any_of`, the refusal meant
/// and no other: returns the error.
pub fn refused<T: std::fmt::Debug>(outcome: Result<T, String>, any_of: &[&str]) -> String {
    let err = match outcome {
        Ok(v) => panic!("should have been refused ({any_of:?}), got {v:?}"),
        Err(e) => e,
    };
    assert!(
        any_of.iter().any(|w| err.contains(w)),
        "refused, but not saying any of {any_of:?}:\n{err}"
    );
    err
}

/// Where the server that writes the harness log `log_key` answers (for `caught_up`).
fn log_origin(log_key: &str) -> String {
    let local = |port: &str| format!("http://127.0.0.1:{}", var(port));
    match log_key {
        "HUB_LOG" => var("HUB_URL"),
        "TEAM_LOG" => var("TEAM_URL"),
        "OPEN_LOG" => var("OPEN_URL"),
        "ISSUER_LOG" => local("ISSUER_PORT"),
        "TEAM_ISSUER_LOG" => local("TEAM_ISSUER_PORT"),
        "QUIRKY_ISSUER_LOG" => var("QUIRKY_ISSUER_REALM").replace("/token", ""),
        "BLOBS_LOG" => local("BLOBS_PORT"),
        "FAKE_LOG" => local("FAKE_BARE_PORT"),
        "FAULT_LOG" => local("FAULTS_PORT"),
        "SEARCH_LOG" => var("SEARCH_URL"),
        other => panic!("{other}: no server of the harness writes it"),
    }
}

/// The logs of every upstream the harness runs (registries, token services, blob storage,
/// fakes, search), by their env keys.
pub const UPSTREAM_LOGS: [&str; 10] = [
    "HUB_LOG",
    "TEAM_LOG",
    "OPEN_LOG",
    "ISSUER_LOG",
    "TEAM_ISSUER_LOG",
    "QUIRKY_ISSUER_LOG",
    "BLOBS_LOG",
    "FAKE_LOG",
    "FAULT_LOG",
    "SEARCH_LOG",
];

/// Waits until the server writing the log `log_key` has logged a request of this test's, sent
/// to it now: what it answered before is in its log then. (The registries and the blob storage
/// log a request once they have answered it, so their client may have the answer first.)
/// Before a check that a request is *not* there, and before counting requests.
pub fn caught_up(log_key: &str) {
    let marker = unique("caughtup");
    // a path no test looks for; the search stand-in's tests count requests for other paths
    let path = match log_key {
        "SEARCH_LOG" => format!("/v1/search?q={marker}"),
        _ => format!("/caught-up/{marker}"),
    };
    let url = format!("{}{path}", log_origin(log_key));
    let sent = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "10", &url])
        .status()
        .expect("curl");
    assert!(sent.success(), "{url}: curl failed ({sent})");
    wait_for(&format!("{log_key} to log {url}"), || {
        let text = std::fs::read_to_string(var(log_key)).unwrap_or_default();
        text.contains(&marker).then_some(())
    });
}

/// The text of the upstream logs (`UPSTREAM_LOGS`), each caught up first.
pub fn upstream_logs_text() -> String {
    UPSTREAM_LOGS
        .iter()
        .map(|key| {
            caught_up(key);
            std::fs::read_to_string(var(key)).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// JSON lines of a harness log.
pub fn log_lines(key: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(var(key))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The proxy's JSON log lines in a workerd log file (workerd may prefix console output).
pub fn worker_log_lines(path: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.find("{\"time\"").map(|i| &l[i..]))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The digest the upstream registry reports for a manifest (direct, not through the proxy).
pub fn upstream_digest(key: &str) -> String {
    let d = var(key);
    assert!(d.starts_with("sha256:") && d.len() == 71, "{key}={d}");
    d
}

/// Reads an OCI layout's index and returns the digest of the first manifest it holds.
pub fn oci_layout_digest(dir: &std::path::Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A second workerd serving the same build with other bindings (bad config, debug mode), on
/// a plain-http port of its own; stopped when dropped.
pub struct Workerd {
    pub port: u16,
    child: std::process::Child,
    dir: PathBuf,
}

impl Workerd {
    /// `bindings`: capnp binding entries, e.g. `(name = "MODE", text = "debug"),`.
    pub fn start(port: u16, bindings: &str) -> Workerd {
        let dir = tempdir("workerd");
        // workerd embeds files relative to its config: copy the build next to it
        let build = PathBuf::from(var("E2E_DIR")).join("worker");
        for f in ["index.js", "index_bg.wasm"] {
            std::fs::copy(build.join(f), dir.join(f)).unwrap();
        }
        let config = format!(
            r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .proxy),
               (name = "net", network = (allow = ["public", "private", "local"])) ],
  sockets = [ (name = "http", address = "127.0.0.1:{port}", http = (), service = "main") ],
);
const proxy :Workerd.Worker = (
  modules = [ (name = "index.js", esModule = embed "index.js"),
              (name = "index_bg.wasm", wasm = embed "index_bg.wasm") ],
  compatibilityDate = "2026-04-01",
  bindings = [ {bindings} ],
  globalOutbound = "net",
);
"#
        );
        std::fs::write(dir.join("w.capnp"), config).unwrap();
        let log = std::fs::File::create(dir.join("workerd.log")).unwrap();
        let child = Command::new(var("WORKERD_BIN"))
            .args(["serve", "--verbose"])
            .arg(dir.join("w.capnp"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("workerd");
        let w = Workerd { port, child, dir };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return w;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "workerd on :{port} did not start: {}",
            std::fs::read_to_string(w.dir.join("workerd.log")).unwrap_or_default()
        );
    }

    /// Its console output (the Worker's log lines).
    pub fn log(&self) -> PathBuf {
        self.dir.join("workerd.log")
    }

    /// A request to this workerd with the given Host header.
    pub fn get(&self, host: &str, path: &str, args: &[&str]) -> Resp {
        let h = format!("Host: {host}");
        let mut all = vec!["-H", h.as_str()];
        all.extend_from_slice(args);
        curl(&format!("http://127.0.0.1:{}{path}", self.port), &all)
    }
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- the real clients, each with its state under the harness directory ---------------------

pub fn skopeo() -> std::process::Command {
    std::process::Command::new("skopeo")
}

pub fn podman(root: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new("podman");
    c.args([
        "--storage-driver",
        "vfs",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
    ])
    .arg("--root")
    .arg(root.join("root"))
    .arg("--runroot")
    .arg(root.join("run"))
    .env("REGISTRIES_CONFIG_PATH", root.join("registries.conf"));
    // a test may have written its own
    if !root.join("registries.conf").exists() {
        std::fs::write(
            root.join("registries.conf"),
            "unqualified-search-registries = []\n",
        )
        .unwrap();
    }
    c
}

pub fn ctr(ns: &str) -> std::process::Command {
    let mut c = std::process::Command::new("ctr");
    c.args(["--address", &var("CONTAINERD_SOCK"), "--namespace", ns]);
    c
}

pub fn docker(config: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new("docker");
    c.env("DOCKER_HOST", var("DOCKER_HOST_URL"))
        .arg("--config")
        .arg(config);
    c
}

/// skopeo's `inspect --raw` of `reference` (as `creds`, if any): the manifest's digest, or
/// skopeo's error.
pub fn inspect(reference: &str, creds: Option<&str>) -> Result<String, String> {
    let mut c = skopeo();
    c.args(["inspect", "--raw"]);
    if let Some(creds) = creds {
        c.args(["--creds", creds]);
    }
    let out = c.arg(format!("docker://{reference}")).output().unwrap();
    if out.status.success() {
        Ok(format!("sha256:{}", sha256_hex(&out.stdout)))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// A pull with skopeo into a fresh OCI layout: the manifest digest it wrote.
pub fn skopeo_pull(reference: &str, creds: Option<&str>) -> String {
    let dir = tempdir("pull").join("oci");
    let mut c = skopeo();
    c.args(["copy", "--quiet"]);
    if let Some(creds) = creds {
        c.args(["--src-creds", creds]);
    }
    run(c
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}", dir.display())));
    oci_layout_digest(&dir)
}

/// `cmd` run with `input` on its stdin: its output, succeeded or not.
pub fn with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// `docker login host` as `user`, the password on stdin: its output, succeeded or not.
pub fn docker_login(config: &std::path::Path, host: &str, user: &str, password: &str) -> Output {
    with_stdin(
        docker(config).args(["login", host, "--username", user, "--password-stdin"]),
        password.as_bytes(),
    )
}

pub fn daemons() {
    assert_eq!(
        var("DAEMONS"),
        "1",
        "start the harness with E2E_DAEMONS=1 (tests/run.sh does)"
    );
}

/// `podman pull`, then the image's repository digests (`{{.RepoDigests}}`).
pub fn podman_pull(root: &std::path::Path, reference: &str) -> String {
    run(podman(root).args(["pull", "-q", reference]));
    let out = run(podman(root).args([
        "image",
        "inspect",
        "--format",
        "{{.RepoDigests}}",
        reference,
    ]));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `docker pull`, then the image's repository digests (`{{json .RepoDigests}}`); the image is
/// removed again, so that the next pull goes through the proxy too.
pub fn docker_pull(config: &std::path::Path, reference: &str) -> String {
    run(docker(config).args(["pull", "-q", reference]));
    let out = run(docker(config).args([
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        reference,
    ]));
    let _ = docker(config)
        .args(["image", "rm", "-f", reference])
        .output();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ctr images pull` (with `args` before the reference, e.g. `--hosts-dir`), then whether
/// `ctr images ls` lists the reference with `digest`.
pub fn ctr_pull_lists(ns: &str, args: &[&std::ffi::OsStr], reference: &str, digest: &str) -> bool {
    run(ctr(ns).args(["images", "pull"]).args(args).arg(reference));
    let out = run(ctr(ns).args(["images", "ls"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.starts_with(reference) && l.contains(digest))
}

/// The blob digests (config and layers) of the image in a layout.
pub fn blob_digests(layout: &std::path::Path, manifest: &str) -> Vec<String> {
    let hex = manifest.trim_start_matches("sha256:");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap())
            .unwrap();
    let mut all = vec![m["config"]["digest"].as_str().unwrap().to_string()];
    for l in m["layers"].as_array().unwrap() {
        all.push(l["digest"].as_str().unwrap().to_string());
    }
    all
}

/// The release build under Miniflare (`tests/harness/miniflare.mjs`): the harness's bindings
/// (and `extra` ones) over HTTPS with the test CA, with a real Cache API of its own, empty at
/// start; stopped (its workerd too) when dropped.
pub struct Miniflare {
    pub port: u16,
    child: std::process::Child,
    log: PathBuf,
}

impl Miniflare {
    pub fn start(extra: serde_json::Value) -> Miniflare {
        Miniflare::start_with(extra, &[])
    }

    /// With R2 buckets too: `CACHE_BUCKET` bound to a bucket kept in `dir`, so that a second
    /// instance given the same directory finds what the first kept (its Cache API empty).
    pub fn start_with_bucket(extra: serde_json::Value, dir: &std::path::Path) -> Miniflare {
        let dir = dir.to_str().unwrap();
        Miniflare::start_with(extra, &["--r2", "CACHE_BUCKET", "--r2-dir", dir])
    }

    /// With more arguments of tests/harness/miniflare.mjs (`--ratelimits JSON`, ...).
    pub fn start_with(extra: serde_json::Value, args: &[&str]) -> Miniflare {
        Miniflare::start_at(next_port(), extra, args)
    }

    /// On `port`: a second instance on the port of one stopped is the same origin to the store
    /// (its keys begin with the proxy's origin), as a redeploy is.
    pub fn start_at(port: u16, extra: serde_json::Value, args: &[&str]) -> Miniflare {
        let mut bindings: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(var("BINDINGS_FILE")).unwrap()).unwrap();
        // Miniflare's instances start and run side by side with the other tests': on a busy
        // machine an upstream's first byte can take more than the workerd harness's 2 s (a
        // 504 in CI once). Timeouts are tested on workerd; here the time only has to be ample.
        bindings["UPSTREAM_TIMEOUT_MS"] = serde_json::json!("15000");
        for (k, v) in extra.as_object().expect("bindings: a JSON object") {
            bindings[k] = v.clone();
        }
        let dir = tempdir("mf");
        let log = dir.join("miniflare.log");
        let out = std::fs::File::create(&log).unwrap();
        let repo = var("REPO");
        let child = Command::new("setsid")
            .arg("node")
            .arg(format!("{repo}/tests/harness/miniflare.mjs"))
            .args(["--port", &port.to_string()])
            .arg("--build")
            .arg(PathBuf::from(var("E2E_DIR")).join("worker"))
            .args(["--bindings", &bindings.to_string()])
            .args(["--cert", &var("SERVER_CERT"), "--key", &var("SERVER_KEY")])
            .args(args)
            .current_dir(&repo)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("node");
        let mf = Miniflare { port, child, log };
        for _ in 0..300 {
            if mf.log_text().contains("ready ") {
                return mf;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("miniflare on :{port} did not start: {}", mf.log_text());
    }

    /// `host:port` of this instance, for image references.
    pub fn host(&self, host: &str) -> String {
        format!("{host}:{}", self.port)
    }

    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{}{path}", self.host(host))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The Worker's JSON log lines (requests, and `"event": "store"` lines).
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        worker_log_lines(self.log.to_str().unwrap())
    }

    /// Waits until this Worker has logged a request of this test's, sent now: the lines of
    /// the requests it answered before are in its log then (Miniflare passes them on to the
    /// log file a little after the answer).
    pub fn caught_up(&self) {
        let path = format!("/v2/{}/tags/list", unique("caughtup"));
        curl(&self.url("docker.example.test", &path), &[]);
        wait_for(&format!("miniflare :{} to log {path}", self.port), || {
            let lines = self.log_lines();
            lines
                .iter()
                .any(|l| l["path"] == path.as_str())
                .then_some(())
        });
    }

    /// A token from this instance's `/v2/auth` for `scope` (as `creds`, if any).
    pub fn token(&self, host: &str, scope: &str, creds: Option<&str>) -> String {
        let url = self.url(host, &format!("/v2/auth?scope={scope}"));
        let mut args = vec![];
        if let Some(c) = creds {
            args.extend(["-u", c]);
        }
        let r = curl(&url, &args);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["token"].as_str().unwrap().to_string()
    }

    /// Waits until it has kept every blob of the image `digest` in `layout` (a keep ends after
    /// its answer, in `waitUntil`, and asks the upstream once more): a pull after this one is
    /// warm.
    pub fn kept(&self, layout: &std::path::Path, digest: &str) {
        for d in blob_digests(layout, digest) {
            self.store_lines(&d, 1);
        }
    }

    /// The store lines for `digest` once there are `n` of them (a keep ends after its
    /// response, in `waitUntil`): waits for them, up to 30 s, then fails saying what it saw.
    pub fn store_lines(&self, digest: &str, n: usize) -> Vec<serde_json::Value> {
        let lines = || -> Vec<serde_json::Value> {
            self.log_lines()
                .into_iter()
                .filter(|l| l["event"] == "store" && l["digest"] == digest)
                .collect()
        };
        wait_for(&format!("{n} store lines for {digest}"), || {
            let l = lines();
            (l.len() >= n).then_some(l)
        })
    }
}

/// Polls `ready` every 50 ms until it gives a value, for at most 30 s: for what happens after
/// a response (a keep in `waitUntil`, a log line), never a fixed sleep.
pub fn wait_for<T>(what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(v) = ready() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited 30 s for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

impl Drop for Miniflare {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // what the Worker said, for the failure that is unwinding
            let text = self.log_text();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "--- miniflare :{} log (last lines) ---\n{}",
                self.port,
                tail.join("\n")
            );
        }
        // the whole group (node and its workerd), with time for Miniflare to dispose
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// One of the harness's Python helpers, started by a test (`tests/harness/<script>`, which
/// prints "ready" once it listens); stopped when dropped.
pub struct Helper(std::process::Child);

impl Helper {
    pub fn start(script: &str, args: &[&str]) -> Helper {
        let mut child = Command::new("/usr/bin/python3")
            .arg("-B") // no __pycache__ for the serving.py it imports
            .arg(format!("{}/tests/harness/{script}", var("REPO")))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{script}: {e}"));
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready", "{script} did not start");
        Helper(child)
    }

    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An HTTP relay in front of an upstream that records every request it passes on, headers and
/// all (`tests/harness/recorder.py`): what a registry was sent, which its own log (no header)
/// does not say. Put in front of one by `routes_via`.
pub struct Recorder {
    pub port: u16,
    log: PathBuf,
    _relay: Helper,
}

impl Recorder {
    /// A relay to `target` (`http://host:port`).
    pub fn start(target: &str) -> Recorder {
        Recorder::start_with(target, &[])
    }

    /// A relay that also plays Docker Hub limiting an address (`--limit`, recorder.py): set
    /// what it does with `limit`.
    pub fn limiting(target: &str) -> Recorder {
        Recorder::start_with(target, &["--limit"])
    }

    fn start_with(target: &str, extra: &[&str]) -> Recorder {
        let port = next_port();
        let log = tempdir("recorder").join("requests.log");
        let port_arg = port.to_string();
        let mut args = vec![
            "--port",
            &port_arg,
            "--target",
            target,
            "--log",
            log.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let relay = Helper::start("recorder.py", &args);
        Recorder {
            port,
            log,
            _relay: relay,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A limiting relay's state: `after=N` (429 after N more manifest requests), `down=1`,
    /// `up=1`.
    pub fn limit(&self, query: &str) {
        let r = curl(&format!("{}/_limit?{query}", self.url()), &[]);
        assert_eq!(r.status, 200, "{}", r.text());
    }

    /// Its log's lines.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Its log (one JSON line a request: method, path, headers), written before each request
    /// is sent on.
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The `Authorization` values it passed on, in order.
    pub fn authorizations(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|l| {
                let headers = l["headers"].as_object()?.clone();
                headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                    .map(|(_, v)| v.as_str().unwrap_or("").to_string())
            })
            .collect()
    }
}

/// The harness's ROUTES (its bindings file's) with `host`'s upstream replaced by `upstream`, a
/// relay in front of it: bindings for `Miniflare::start`.
pub fn routes_via(host: &str, upstream: &str) -> serde_json::Value {
    let bindings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(var("BINDINGS_FILE")).unwrap()).unwrap();
    let mut routes = bindings["ROUTES"].clone();
    assert!(routes[host].is_object(), "{host} in {routes}");
    routes[host]["upstream"] = serde_json::json!(upstream);
    routes
}

/// One registry request in a `docker-registry` access log (`HUB_LOG`, `TEAM_LOG`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRequest {
    pub method: String,
    pub path: String,
    pub status: u16,
}

/// The requests a registry's access log holds for `repository` (`/v2/<repository>/…`), once
/// it has caught up (`caught_up`): every request the registry answered before this call.
pub fn registry_requests(log_key: &str, repository: &str) -> Vec<RegistryRequest> {
    caught_up(log_key);
    let prefix = format!("/v2/{repository}/");
    std::fs::read_to_string(var(log_key))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            // 127.0.0.1 - - [date] "GET /v2/… HTTP/1.1" 200 406 "" "agent"
            let (_, rest) = l.split_once("] \"")?;
            let (request, rest) = rest.split_once("\" ")?;
            let mut parts = request.split(' ');
            let (method, path) = (parts.next()?, parts.next()?);
            let status = rest.split(' ').next()?.parse().ok()?;
            path.starts_with(&prefix).then(|| RegistryRequest {
                method: method.to_string(),
                path: path.to_string(),
                status,
            })
        })
        .collect()
}

/// An image no one has pulled before, pushed to `registry_url` (`HUB_URL`, `TEAM_URL`) as
/// `repository:latest` with `creds`: its layout and manifest digest. `big_mib`: one layer of
/// that many MiB of random data.
pub fn push_unique(
    registry_url: &str,
    creds: &str,
    repository: &str,
    big_mib: u32,
) -> (PathBuf, String) {
    let dir = tempdir("img").join("layout");
    run(Command::new("/usr/bin/python3")
        .arg(format!("{}/tests/harness/make_images.py", var("REPO")))
        .args(["--unique", repository])
        .arg(&dir)
        .arg(big_mib.to_string()));
    let host = registry_url.trim_start_matches("http://");
    run(skopeo()
        .args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
        ])
        .arg(format!("oci:{}", dir.display()))
        .arg(format!("docker://{host}/{repository}:latest")));
    let digest = oci_layout_digest(&dir);
    (dir, digest)
}
