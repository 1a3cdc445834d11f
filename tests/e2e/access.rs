//! Who may use the proxy (issue 13): the operator's policy vars in the real runtime (the
//! release build under Miniflare, over HTTPS with the test CA), with real clients, and what
//! reached the upstream read from the registry's own access log.

use crate::common::*;
use serde_json::json;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// skopeo's words for the proxy's own 401 to a login at `/v2/auth` (the proxy users'), which
/// has no message (a token service's refusal goes on with its own: "…: invalid username or
/// password").
const PROXY_REFUSED: &str = "invalid username/password: unauthorized\"";

/// The proxy users test's `PROXY_TOKEN_SECRET`.
const SECRET: &str = "e2e-token-secret-of-forty-characters-xx";

/// skopeo's push of a test image to `target` as `creds` (none: anonymous), which must fail
/// saying one of `any_of`: its error, after checking that no write for `repo` reached the hub
/// registry (its log).
fn push_refused(creds: Option<&str>, target: &str, repo: &str, any_of: &[&str]) -> String {
    let before = registry_requests("HUB_LOG", repo).len();
    let src = format!("oci:{}/multi:latest", var("IMAGES_DIR"));
    let mut copy = skopeo();
    copy.arg("copy");
    if let Some(creds) = creds {
        copy.args(["--dest-creds", creds]);
    }
    let err = run_fails(copy.args([&src, target]), any_of);
    let writes: Vec<_> = registry_requests("HUB_LOG", repo)[before..]
        .iter()
        .filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD"))
        .cloned()
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    err
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn repositories_outside_the_allow_list_or_on_the_deny_list_never_reach_the_upstream() {
    let ok = format!("library/{}", unique("allowed"));
    let denied = format!("library/{}", unique("denied"));
    let unlisted = format!("someone/{}", unique("other"));
    let hub = var("HUB_URL");
    let (_, ok_digest) = push_unique(&hub, &alice(), &ok, 0);
    push_unique(&hub, &alice(), &denied, 0);
    push_unique(&hub, &alice(), &unlisted, 0);
    let mf = Miniflare::start(json!({
        "ALLOW_REPOSITORIES": {"hub.registry.test": ["library/*"]},
        "DENY_REPOSITORIES": {"*": [denied.clone()]},
    }));
    let host = mf.host("docker.example.test");
    // manifest requests: every pull starts with one. (Blob HEADs of a repository come from
    // other tests' pushes too: skopeo probes where a layer it pushes could be mounted from.)
    let before = |repo: &str| {
        registry_requests("HUB_LOG", repo)
            .iter()
            .filter(|r| r.path.contains("/manifests/"))
            .count()
    };
    let (denied_before, unlisted_before) = (before(&denied), before(&unlisted));

    // an allowed one pulls, by its full name and by Docker Hub's short one
    assert_eq!(
        inspect(&format!("{host}/{ok}:latest"), None),
        Ok(ok_digest.clone())
    );
    let short = ok.trim_start_matches("library/");
    assert_eq!(
        inspect(&format!("{host}/{short}:latest"), None),
        Ok(ok_digest)
    );
    // the others are refused as a registry refuses, and the upstream never hears of them
    for repo in [&denied, &unlisted] {
        for creds in [None, Some(alice())] {
            // skopeo says the body's "denied" or, for a token request, only the status
            let reference = format!("{host}/{repo}:latest");
            refused(inspect(&reference, creds.as_deref()), &["denied", "403"]);
        }
        let r = curl(
            &mf.url(
                "docker.example.test",
                &format!("/v2/{repo}/manifests/latest"),
            ),
            &[],
        );
        assert_eq!(
            (r.status, r.error_code()),
            (403, "DENIED".into()),
            "{}",
            r.text()
        );
        let scope = format!("/v2/auth?scope=repository:{repo}:pull&service=x");
        let r = curl(&mf.url("docker.example.test", &scope), &["-u", &alice()]);
        assert_eq!(
            (r.status, r.error_code()),
            (403, "DENIED".into()),
            "{}",
            r.text()
        );
    }
    // docker and containerd are refused too
    daemons();
    let reference = format!("{host}/{denied}:latest");
    run_fails(
        docker(&tempdir("docker")).args(["pull", &reference]),
        &["manifests/latest\": denied"],
    );
    run_fails(
        ctr(&unique("acl")).args(["images", "pull", &reference]),
        &["[manifests latest]: 403 Forbidden"],
    );
    assert_eq!(
        before(&denied),
        denied_before,
        "the upstream was asked for {denied}"
    );
    assert_eq!(
        before(&unlisted),
        unlisted_before,
        "the upstream was asked for {unlisted}"
    );
    // a registry with no list of its own gets nothing
    let team = mf.url("team.example.test", "/v2/private/app/manifests/latest");
    let r = curl(&team, &[]);
    assert_eq!(
        (r.status, r.error_code()),
        (403, "DENIED".into()),
        "{}",
        r.text()
    );
    // and the landing page tells a stranger nothing of the lists
    let page = curl(
        &mf.url("docker.example.test", "/"),
        &["-H", "Accept: text/html"],
    );
    assert_eq!(page.status, 200);
    assert!(!page.text().contains("library/*") && !page.text().contains(&denied));
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn read_only_refuses_every_push_and_still_pulls() {
    let repo = format!("library/{}", unique("ro"));
    let (_, digest) = push_unique(&var("HUB_URL"), &alice(), &repo, 0);
    let mf = Miniflare::start(json!({"READ_ONLY": "true"}));
    let host = mf.host("docker.example.test");
    push_refused(
        Some(&alice()),
        &format!("docker://{host}/{repo}:pushed"),
        &repo,
        &["unsupported: this proxy is read-only"],
    );
    // every writing method of the API, answered in the registry's form
    for (method, path) in [
        ("POST", format!("/v2/{repo}/blobs/uploads/")),
        ("PUT", format!("/v2/{repo}/manifests/x")),
        ("DELETE", format!("/v2/{repo}/manifests/{digest}")),
        ("PATCH", format!("/v2/{repo}/blobs/uploads/some-id")),
    ] {
        let r = curl(
            &mf.url("docker.example.test", &path),
            &["-X", method, "-u", &alice()],
        );
        assert_eq!(
            (r.status, r.error_code()),
            (405, "UNSUPPORTED".into()),
            "{method} {path}"
        );
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method}");
    }
    // a login (the token endpoint) and pulls go on
    let scope = format!("/v2/auth?scope=repository:{repo}:pull,push&service=x");
    let r = curl(&mf.url("docker.example.test", &scope), &["-u", &alice()]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        inspect(&format!("{host}/{repo}:latest"), Some(&alice())),
        Ok(digest)
    );
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn addresses_outside_the_allowed_ranges_get_nothing() {
    let mf = Miniflare::start(json!({"ALLOW_IPS": "198.51.100.0/24, 2001:db8::/32"}));
    let url = mf.url("docker.example.test", "/v2/");
    for ip in ["198.51.100.7", "2001:db8:5::1"] {
        let r = curl(&url, &["-H", &format!("CF-Connecting-IP: {ip}")]);
        assert_eq!(r.status, 401, "{ip}: {}", r.text());
    }
    for ip in [
        "203.0.113.1",
        "198.51.101.7",
        "2001:db9::1",
        "not-an-address",
    ] {
        let r = curl(&url, &["-H", &format!("CF-Connecting-IP: {ip}")]);
        assert_eq!((r.status, r.error_code()), (403, "DENIED".into()), "{ip}");
    }
    // a client with no address Cloudflare's edge vouches for (none here) is refused too
    let r = curl(&url, &[]);
    assert_eq!(
        (r.status, r.error_code()),
        (403, "DENIED".into()),
        "{}",
        r.text()
    );
    let reference = format!("{}/library/alpine:latest", mf.host("docker.example.test"));
    refused(inspect(&reference, None), &["denied", "403"]);
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn a_blocked_user_agent_is_answered_as_an_unknown_host() {
    let mf = Miniflare::start(json!({"BLOCK_USER_AGENTS": "zgrab, Nuclei"}));
    let unknown = curl(&mf.url("unknown.example.test", "/v2/"), &[]);
    assert_eq!(unknown.status, 404);
    for agent in ["Mozilla/5.0 zgrab/0.x", "Nuclei - Open-source project"] {
        for path in ["/", "/v2/", "/v2/library/alpine/manifests/latest"] {
            let r = curl(&mf.url("docker.example.test", path), &["-A", agent]);
            assert_eq!(r.status, 404, "{agent} {path}");
            assert_eq!(
                r.text()
                    .replace("docker.example.test", "unknown.example.test"),
                unknown.text(),
                "{agent} {path}"
            );
        }
    }
    // real clients go on
    let repo = format!("library/{}", unique("ua"));
    let (_, digest) = push_unique(&var("HUB_URL"), &alice(), &repo, 0);
    let host = mf.host("docker.example.test");
    assert_eq!(inspect(&format!("{host}/{repo}:latest"), None), Ok(digest));
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn the_rate_limit_answers_429_with_retry_after_per_client_address() {
    let limits = json!({"RATE_LIMITER": {"simple": {"limit": 5, "period": 60}}}).to_string();
    let mf = Miniflare::start_with(json!({}), &["--ratelimits", &limits]);
    let url = mf.url("docker.example.test", "/v2/");
    let from = |ip: &str| curl(&url, &["-H", &format!("CF-Connecting-IP: {ip}")]);
    // Miniflare's limiter counts per minute of the clock: these requests (a second or two)
    // within one
    let in_minute = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if in_minute >= 55 {
        std::thread::sleep(Duration::from_secs(61 - in_minute));
    }
    // five pass, every one after them is refused (a limit of 6 or 8 would show)
    let statuses: Vec<u16> = (0..8).map(|_| from("192.0.2.10").status).collect();
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
    let r = from("192.0.2.10");
    assert_eq!(
        (r.status, r.error_code()),
        (429, "TOOMANYREQUESTS".into()),
        "{}",
        r.text()
    );
    assert_eq!(r.header("retry-after"), Some("60"));
    // another address has its own count; the same address spelled as IPv6 has not
    assert_eq!(from("192.0.2.11").status, 401);
    assert_eq!(from("::ffff:192.0.2.10").status, 429);
    // (skopeo, told 429 with Retry-After, waits and tries again: seen taking the 60 s)
}

/// Carol and dave (pull only), made by the project's own command as the README says: the
/// `PROXY_USERS` entries, carol's key, dave's key.
fn proxy_users() -> (serde_json::Value, String, String) {
    let file = tempdir("users").join("proxy-users.json");
    let add = |args: &[&str]| {
        let out = run(Command::new("node")
            .arg(format!("{}/scripts/proxy-user.mjs", var("REPO")))
            .arg("add")
            .args(args)
            .arg("--file")
            .arg(&file));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let key = add(&["carol"]);
    let dave_key = add(&["dave", "--pull-only"]);
    assert!(key.starts_with("rpk_") && key.len() > 40 && key != dave_key);
    let users: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(users["carol"]["sha256"], sha256_hex(key.as_bytes()));
    (users, key, dave_key)
}

/// An Accept of the manifests the test images are.
const MANIFESTS: &str =
    "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json";

/// Strangers (no login, a wrong key, an upstream's account) get the proxy's challenge, never
/// the image.
fn strangers_get_the_proxy_s_challenge(mf: &Miniflare, repo: &str, key: &str) {
    let host = mf.host("docker.example.test");
    let reference = format!("{host}/{repo}:latest");
    refused(inspect(&reference, None), &[PROXY_REFUSED]);
    refused(
        inspect(&reference, Some(&format!("carol:{key}x"))),
        &[PROXY_REFUSED],
    );
    refused(inspect(&reference, Some(&alice())), &[PROXY_REFUSED]);
    let r = curl(&mf.url("docker.example.test", "/v2/"), &[]);
    assert_eq!((r.status, r.error_code()), (401, "UNAUTHORIZED".into()));
    let www = r.header("www-authenticate").unwrap_or("").to_string();
    assert!(
        www.contains(&format!("realm=\"https://{host}/v2/auth\"")),
        "{www}"
    );
    let path = format!("/v2/{repo}/manifests/latest");
    let r = curl(&mf.url("docker.example.test", &path), &[]);
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap_or("")
            .contains(&format!("repository:{repo}:pull")),
        "{:?}",
        r.headers
    );
}

/// Carol logs in and pulls `digest` with skopeo, curl, podman, ctr (refused without her name
/// and key) and docker (refused before `docker login`, and with a wrong key): the proxy's token
/// curl was given.
fn a_user_logs_in_and_pulls_with_every_client(
    mf: &Miniflare,
    repo: &str,
    key: &str,
    digest: &str,
) -> String {
    let host = mf.host("docker.example.test");
    let reference = format!("{host}/{repo}:latest");
    assert_eq!(
        inspect(&reference, Some(&format!("carol:{key}"))),
        Ok(digest.to_string())
    );
    let login = curl(
        &mf.url(
            "docker.example.test",
            &format!("/v2/auth?service=x&scope=repository:{repo}:pull"),
        ),
        &["-u", &format!("carol:{key}")],
    );
    assert_eq!(login.status, 200, "{}", login.text());
    let token = login.json()["token"].as_str().unwrap().to_string();
    let bearer = format!("Authorization: Bearer {token}");
    let path = format!("/v2/{repo}/manifests/latest");
    let r = curl(
        &mf.url("docker.example.test", &path),
        &["-H", &bearer, "-H", MANIFESTS],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // podman's login and pull, and containerd's ctr with the user's name and key
    let root = tempdir("podman-users");
    let authfile = root.join("auth.json");
    let authfile = authfile.to_str().unwrap();
    run(podman(&root).args([
        "login",
        "--authfile",
        authfile,
        "-u",
        "carol",
        "-p",
        key,
        &host,
    ]));
    run(podman(&root).args(["pull", "-q", "--authfile", authfile, &reference]));
    let out = run(podman(&root).args(["image", "inspect", "--format", "{{.Digest}}", &reference]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), digest);
    daemons();
    let ns = unique("users");
    run_fails(
        ctr(&ns).args(["images", "pull", &reference]),
        &["failed to fetch anonymous token: unexpected status: 401 Unauthorized"],
    );
    run(ctr(&ns).args([
        "images",
        "pull",
        "--user",
        &format!("carol:{key}"),
        &reference,
    ]));
    // docker: a pull without a login is refused, `docker login` then pull works
    let config = tempdir("docker-users");
    run_fails(
        docker(&config).args(["pull", "-q", &reference]),
        &["manifests/latest\": unauthorized"],
    );
    let out = docker_login(&config, &host, "carol", key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wrong = docker_login(&tempdir("docker-wrong"), &host, "carol", "rpk_wrong");
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        !wrong.status.success() && err.contains("/v2/\": unauthorized"),
        "{err}"
    );
    let pulled = docker_pull(&config, &reference);
    assert!(pulled.contains(digest), "{pulled}");
    token
}

/// The proxy's `token` re-signed with `SECRET` to expire `expiry_from_now` seconds from now:
/// an `Authorization` header.
fn resigned(token: &str, expiry_from_now: i64) -> String {
    let script = r#"
import base64, hmac, hashlib, json, sys, time
token, secret, delta = sys.argv[1], sys.argv[2], int(sys.argv[3])
payload = token.split(".")[1]
claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
claims["x"] = int(time.time()) + delta
body = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).rstrip(b"=")
mac = base64.urlsafe_b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).rstrip(b"=")
print("rp1." + body.decode() + "." + mac.decode())
"#;
    let out = run(Command::new("python3").args([
        "-c",
        script,
        token,
        SECRET,
        &expiry_from_now.to_string(),
    ]));
    format!(
        "Authorization: Bearer {}",
        String::from_utf8(out.stdout).unwrap().trim()
    )
}

/// Carol's `token` for another repository, tampered with, forged, expired: refused; the same
/// re-signed unexpired passes.
fn other_tampered_forged_and_expired_tokens_are_refused(mf: &Miniflare, repo: &str, token: &str) {
    let bearer = format!("Authorization: Bearer {token}");
    let path = format!("/v2/{repo}/manifests/latest");
    let other = format!("/v2/library/{}/manifests/latest", unique("else"));
    assert_eq!(
        curl(&mf.url("docker.example.test", &other), &["-H", &bearer]).status,
        401
    );
    let (head, mac) = token.rsplit_once('.').unwrap();
    let flipped = if mac.starts_with('A') { "B" } else { "A" };
    let tampered = format!("Authorization: Bearer {head}.{flipped}{}", &mac[1..]);
    assert_eq!(
        curl(&mf.url("docker.example.test", &path), &["-H", &tampered]).status,
        401
    );
    let forged = format!("Authorization: Bearer {head}.{}", "A".repeat(43));
    assert_eq!(
        curl(&mf.url("docker.example.test", &path), &["-H", &forged]).status,
        401
    );
    let manifest = |auth: &str| {
        curl(
            &mf.url("docker.example.test", &path),
            &["-H", auth, "-H", MANIFESTS],
        )
    };
    assert_eq!(manifest(&resigned(token, 120)).status, 200);
    let expired = manifest(&resigned(token, -5));
    assert_eq!(
        (expired.status, expired.error_code()),
        (401, "UNAUTHORIZED".into())
    );
}

/// That what `hub` (the recorder in front of the hub registry) passed on had an Authorization,
/// and that each was a token of the hub's token service (a JWT), no proxy's token, no Basic.
fn the_registry_got_its_token_service_s_tokens_only(hub: &Recorder) {
    let sent = hub.authorizations();
    assert!(!sent.is_empty(), "the recorder saw no Authorization");
    assert!(
        sent.iter().all(|a| a.starts_with("Bearer ey")),
        "the hub registry got more than its token service's tokens: {sent:?}"
    );
}

/// That nothing of the users' logins (`keys`, or the proxy's tokens made of them) went upstream
/// while `mf` served `repo` with the hub behind `hub`: the hub's token service (its log since
/// line `issuer_from`) was asked for `repo` anonymously, and by no user of the proxy; the hub
/// registry got the token service's tokens only; and the Worker's own log holds no key.
fn no_login_of_the_users_went_upstream(
    mf: &Miniflare,
    hub: &Recorder,
    repo: &str,
    issuer_from: usize,
    keys: &[&str],
) {
    let asked = issuer_lines("ISSUER_LOG", issuer_from);
    // the proxy's own requests (other tests' pushes may ask to mount from `repo` too, with
    // a scope of their own first)
    let own = json!([format!("repository:{repo}:pull")]);
    let for_repo: Vec<_> = asked
        .iter()
        .filter(|l| l["query"]["scope"] == own)
        .collect();
    assert!(!for_repo.is_empty(), "the proxy got no token for {repo}");
    assert!(
        for_repo.iter().all(|l| l["authorization"] == false),
        "the proxy's token requests carried credentials: {for_repo:?}"
    );
    let by_users: Vec<_> = asked
        .iter()
        .filter(|l| ["carol", "dave"].contains(&l["user"].as_str().unwrap_or("")))
        .collect();
    assert!(by_users.is_empty(), "{by_users:?}");
    the_registry_got_its_token_service_s_tokens_only(hub);
    mf.caught_up();
    let issuer_text = std::fs::read_to_string(var("ISSUER_LOG")).unwrap_or_default();
    for key in keys {
        for (name, text) in [
            ("the hub's token service", &issuer_text),
            ("the hub registry", &hub.text()),
            ("the Worker's log", &mf.log_text()),
        ] {
            assert!(!text.contains(key), "{name} saw a user's key");
        }
    }
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn proxy_users_log_in_and_pull_strangers_and_forgeries_get_a_challenge_and_pull_only_cannot_push() {
    let (users, key, dave_key) = proxy_users();
    // the hub behind a recorder: what the registry was sent, headers and all
    let hub = Recorder::start(&var("HUB_URL"));
    let mf = Miniflare::start(json!({
        "PROXY_USERS": users.to_string(),
        "PROXY_TOKEN_SECRET": SECRET,
        "ROUTES": routes_via("docker.example.test", &hub.url()),
    }));
    let repo = format!("library/{}", unique("users"));
    let (_, digest) = push_unique(&var("HUB_URL"), &alice(), &repo, 0);
    let issuer_from = log_lines("ISSUER_LOG").len();
    strangers_get_the_proxy_s_challenge(&mf, &repo, &key);
    // a user: logged in, pulled, the upstream reached with the proxy's own token
    let token = a_user_logs_in_and_pulls_with_every_client(&mf, &repo, &key, &digest);
    other_tampered_forged_and_expired_tokens_are_refused(&mf, &repo, &token);

    // a pull-only user pulls, and no push of his reaches the upstream
    let host = mf.host("docker.example.test");
    let reference = format!("{host}/{repo}:latest");
    assert_eq!(
        inspect(&reference, Some(&format!("dave:{dave_key}"))),
        Ok(digest)
    );
    let target = format!("docker://{host}/{repo}:pushed");
    // the proxy's own 403 for a pull-only user's upload
    let denied = format!("blobs/uploads/ in {host}: denied");
    push_refused(
        Some(&format!("dave:{dave_key}")),
        &target,
        &repo,
        &[&denied],
    );
    // the users' keys never went upstream
    no_login_of_the_users_went_upstream(&mf, &hub, &repo, issuer_from, &[&key, &dave_key]);
}

/// The token issuer's log lines since line `from` (one JSON object each).
fn issuer_lines(key: &str, from: usize) -> Vec<serde_json::Value> {
    log_lines(key).into_iter().skip(from).collect()
}

/// The hub's account for `UPSTREAM_CREDENTIALS` (alice's).
fn hub_account() -> String {
    json!({"hub.registry.test": {"username": var("TEST_USER"), "password": var("TEST_PASSWORD")}})
        .to_string()
}

/// Whether `text` holds the hub account's password or its Basic form.
fn shows_the_password(text: &str) -> bool {
    text.contains(&base64(&alice())) || text.contains(&format!(":{}", var("TEST_PASSWORD")))
}

/// The proxy refuses to start while anyone could read as the account, saying so, not showing it.
fn refused_while_anyone_could_read_as_the_account() {
    let open = Miniflare::start(json!({"UPSTREAM_CREDENTIALS": hub_account()}));
    let r = curl(&open.url("docker.example.test", "/v2/"), &[]);
    assert_eq!((r.status, r.error_code()), (500, "UNKNOWN".into()));
    let message = r.text();
    assert!(
        message.contains("UPSTREAM_CREDENTIALS") && message.contains("PUBLIC_UPSTREAM_CREDENTIALS"),
        "{message}"
    );
    assert!(!message.contains(&var("TEST_PASSWORD")) && !shows_the_password(&message));
}

/// An anonymous client reads `repo` (private, `layout` and `digest` its image) through `mf` as
/// the account: the hub's token service (its log since line `hub_from`) saw the account's
/// Basic, for pulls only; the client got a token and nothing of the account; the blob storage
/// was asked for the image's blobs without credentials.
fn an_anonymous_client_reads_as_the_account(
    mf: &Miniflare,
    repo: &str,
    layout: &std::path::Path,
    digest: &str,
    hub_from: usize,
) {
    let reference = format!("{}/{repo}:latest", mf.host("docker.example.test"));
    assert_eq!(inspect(&reference, None), Ok(digest.to_string()));
    let scope = format!("repository:{repo}:pull");
    let issued: Vec<_> = issuer_lines("ISSUER_LOG", hub_from)
        .into_iter()
        .filter(|l| l["query"]["scope"][0] == scope.as_str())
        .collect();
    assert!(!issued.is_empty(), "no token request for {scope}");
    for l in &issued {
        assert_eq!(
            (
                l["user"].as_str(),
                l["authorization_scheme"].as_str(),
                l["status"].as_u64()
            ),
            (Some("alice"), Some("Basic"), Some(200)),
            "{l}"
        );
        assert_eq!(l["access"][0]["actions"], json!(["pull"]), "{l}");
    }
    // what the client sees of the token endpoint: a token, nothing of the account
    let token_path = format!("/v2/auth?service=x&scope={scope}");
    let r = curl(&mf.url("docker.example.test", &token_path), &["-i"]);
    assert_eq!(r.status, 200, "{}", r.text());
    for seen in [r.text(), format!("{:?}", r.headers)] {
        assert!(!shows_the_password(&seen), "{seen}");
    }
    // the whole image, its blobs from the blob storage (a redirect away): asked without any
    // credential
    let out = tempdir("account-pull").join("oci");
    run(skopeo()
        .args(["copy", "--quiet", &format!("docker://{reference}")])
        .arg(format!("oci:{}", out.display())));
    assert_eq!(oci_layout_digest(&out), digest);
    caught_up("BLOBS_LOG");
    let hexes: Vec<_> = blob_digests(layout, digest)
        .into_iter()
        .map(|d| d.trim_start_matches("sha256:").to_string())
        .collect();
    let fetched: Vec<_> = log_lines("BLOBS_LOG")
        .into_iter()
        .filter(|l| {
            let path = l["path"].as_str().unwrap_or("");
            hexes.iter().any(|h| path.contains(h.as_str()))
        })
        .collect();
    assert!(
        !fetched.is_empty(),
        "no blob of {repo} from the blob storage"
    );
    assert!(
        fetched.iter().all(|l| l["authorization"] == false),
        "{fetched:?}"
    );
}

/// Another registry never gets the hub's account: the team's image is read anonymously, and
/// a private team repository is not readable through it.
fn another_registry_never_gets_the_account(mf: &Miniflare) {
    let team_repo = format!("team/{}", unique("account"));
    push_unique(&var("TEAM_URL"), &bob(), &team_repo, 0);
    let team_from = log_lines("TEAM_ISSUER_LOG").len();
    assert!(inspect(
        &format!("{}/{team_repo}:latest", mf.host("team.example.test")),
        None
    )
    .is_ok());
    // (exactly its scope: other tests' pushes to the team registry may ask to mount from it)
    let scope = json!([format!("repository:{team_repo}:pull")]);
    let team: Vec<_> = issuer_lines("TEAM_ISSUER_LOG", team_from)
        .into_iter()
        .filter(|l| l["query"]["scope"] == scope)
        .collect();
    assert!(!team.is_empty());
    assert!(team.iter().all(|l| l["authorization"] == false), "{team:?}");
    let team_private = format!("{}/private/app:latest", mf.host("team.example.test"));
    refused(
        inspect(&team_private, None),
        &["unauthorized: authentication required"],
    );
}

/// A client with its own credentials keeps them (a wrong password is the client's failure),
/// and pushing as the account takes more than an anonymous client: no write reaches the hub,
/// no push token was asked for with credentials.
fn a_client_s_own_credentials_stay_its_own(mf: &Miniflare, repo: &str, hub_from: usize) {
    let host = mf.host("docker.example.test");
    let password = var("TEST_PASSWORD");
    refused(
        inspect(
            &format!("{host}/{repo}:latest"),
            Some(&format!("alice:{password}x")),
        ),
        &["unauthorized: invalid username or password"],
    );
    let scope = format!("repository:{repo}:pull");
    let own = issuer_lines("ISSUER_LOG", hub_from);
    assert!(
        own.iter()
            .any(|l| l["status"] == 401 && l["query"]["scope"][0] == scope.as_str()),
        "{own:?}"
    );
    push_refused(
        None,
        &format!("docker://{host}/{repo}:pushed"),
        repo,
        &["denied: requested access to the resource is denied"],
    );
    let pushes: Vec<_> = issuer_lines("ISSUER_LOG", hub_from)
        .into_iter()
        .filter(|l| {
            // (not other tests' pushes that ask to mount from it: only to pull it)
            let scopes = l["query"]["scope"].as_array().cloned().unwrap_or_default();
            scopes.iter().any(|s| {
                let s = s.as_str().unwrap_or("");
                s.strip_prefix(&format!("repository:{repo}:"))
                    .is_some_and(|actions| actions.contains("push"))
            })
        })
        .collect();
    assert!(
        pushes.iter().all(|l| l["authorization"] == false),
        "{pushes:?}"
    );
}

/// Proxy users read as the account too (`mu`, erin with `key`): the proxy's own token request
/// carries it.
fn proxy_users_read_as_the_account(mu: &Miniflare, repo: &str, key: &str, digest: &str) {
    let from = log_lines("ISSUER_LOG").len();
    let users_ref = format!("{}/{repo}:latest", mu.host("docker.example.test"));
    refused(inspect(&users_ref, None), &[PROXY_REFUSED]);
    assert_eq!(
        inspect(&users_ref, Some(&format!("erin:{key}"))),
        Ok(digest.to_string())
    );
    let scope = format!("repository:{repo}:pull");
    let asked = issuer_lines("ISSUER_LOG", from);
    assert!(
        asked
            .iter()
            .any(|l| l["user"] == "alice" && l["query"]["scope"][0] == scope.as_str()),
        "{asked:?}"
    );
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn upstream_credentials_read_as_the_operator_s_account_and_nothing_of_them_leaves_for_anyone_else()
{
    refused_while_anyone_could_read_as_the_account();
    let repo = format!("private/{}", unique("account"));
    let (layout, digest) = push_unique(&var("HUB_URL"), &alice(), &repo, 0);
    // without an account, an anonymous client cannot read a private repository
    refused(
        inspect(
            &format!("{}/{repo}:latest", proxy("docker.example.test")),
            None,
        ),
        &["unauthorized: authentication required"],
    );
    // the hub behind a recorder: what the registry was sent, headers and all
    let hub = Recorder::start(&var("HUB_URL"));
    let routes = routes_via("docker.example.test", &hub.url());
    let mf = Miniflare::start(json!({
        "UPSTREAM_CREDENTIALS": hub_account(),
        "PUBLIC_UPSTREAM_CREDENTIALS": "true",
        "ROUTES": routes,
    }));
    let hub_from = log_lines("ISSUER_LOG").len();
    an_anonymous_client_reads_as_the_account(&mf, &repo, &layout, &digest, hub_from);
    another_registry_never_gets_the_account(&mf);
    a_client_s_own_credentials_stay_its_own(&mf, &repo, hub_from);

    let key = "rpk_e2e-account-user-key-of-some-length-0123456789";
    let users = json!({"erin": {"sha256": sha256_hex(key.as_bytes()), "pull_only": true}});
    let mu = Miniflare::start(json!({
        "UPSTREAM_CREDENTIALS": hub_account(),
        "PROXY_USERS": users.to_string(),
        "PROXY_TOKEN_SECRET": "e2e-token-secret-of-forty-characters-yy",
        "ROUTES": routes,
    }));
    proxy_users_read_as_the_account(&mu, &repo, key, &digest);

    // the password went to the hub's token service only: the hub registry got its tokens
    // (the recorder's log, which has every header), and the Workers' logs hold none of it
    the_registry_got_its_token_service_s_tokens_only(&hub);
    mf.caught_up();
    mu.caught_up();
    for (name, text) in [
        ("worker", mf.log_text()),
        ("users' worker", mu.log_text()),
        ("hub registry", hub.text()),
    ] {
        assert!(!shows_the_password(&text), "{name}");
    }
}
