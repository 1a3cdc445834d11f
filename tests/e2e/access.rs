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

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn proxy_users_log_in_and_pull_strangers_and_forgeries_get_a_challenge_and_pull_only_cannot_push() {
    // the project's own command makes the entries, as the README says
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
    let mf = Miniflare::start(json!({
        "PROXY_USERS": users.to_string(),
        "PROXY_TOKEN_SECRET": SECRET,
    }));
    let repo = format!("library/{}", unique("users"));
    let (_, digest) = push_unique(&var("HUB_URL"), &alice(), &repo, 0);
    let host = mf.host("docker.example.test");
    let reference = format!("{host}/{repo}:latest");

    // strangers: the proxy's challenge, never the image
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

    // a user: logged in, pulled, the upstream reached with the proxy's own token
    assert_eq!(
        inspect(&reference, Some(&format!("carol:{key}"))),
        Ok(digest.clone())
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
    let r = curl(
        &mf.url("docker.example.test", &path),
        &["-H", &bearer, "-H", "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"],
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
        &key,
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
    let out = docker_login(&config, &host, "carol", &key);
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
    assert!(pulled.contains(&digest), "{pulled}");
    // a token for another repository, a tampered one, one signed with another secret
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
    // signed with the right secret but expired: refused; the same re-signed unexpired passes
    let resign = |expiry_from_now: i64| {
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
            &token,
            SECRET,
            &expiry_from_now.to_string(),
        ]));
        format!(
            "Authorization: Bearer {}",
            String::from_utf8(out.stdout).unwrap().trim()
        )
    };
    let manifest = |auth: &str| {
        curl(&mf.url("docker.example.test", &path), &["-H", auth, "-H", "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"])
    };
    assert_eq!(manifest(&resign(120)).status, 200);
    let expired = manifest(&resign(-5));
    assert_eq!(
        (expired.status, expired.error_code()),
        (401, "UNAUTHORIZED".into())
    );
    // the user's key never went upstream
    let hub_log = std::fs::read_to_string(var("HUB_LOG")).unwrap_or_default();
    assert!(!hub_log.contains(&key));
    assert!(!mf.log_text().contains(&key));

    // a pull-only user pulls, and no push of his reaches the upstream
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
}

/// The token issuer's log lines since line `from` (one JSON object each).
fn issuer_lines(key: &str, from: usize) -> Vec<serde_json::Value> {
    log_lines(key).into_iter().skip(from).collect()
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn upstream_credentials_read_as_the_operator_s_account_and_nothing_of_them_leaves_for_anyone_else()
{
    let password = var("TEST_PASSWORD");
    let basic = base64(&alice());
    let accounts =
        json!({"hub.registry.test": {"username": var("TEST_USER"), "password": password}})
            .to_string();
    // refused to start while anyone could read as the account
    let open = Miniflare::start(json!({"UPSTREAM_CREDENTIALS": accounts}));
    let r = curl(&open.url("docker.example.test", "/v2/"), &[]);
    assert_eq!((r.status, r.error_code()), (500, "UNKNOWN".into()));
    let message = r.text();
    assert!(
        message.contains("UPSTREAM_CREDENTIALS") && message.contains("PUBLIC_UPSTREAM_CREDENTIALS"),
        "{message}"
    );
    assert!(!message.contains(&password) && !message.contains(&basic));
    drop(open);

    let repo = format!("private/{}", unique("account"));
    let (_, digest) = push_unique(&var("HUB_URL"), &alice(), &repo, 0);
    // without an account, an anonymous client cannot read a private repository
    let reference = |host: &str| format!("{host}/{repo}:latest");
    refused(
        inspect(&reference(&proxy("docker.example.test")), None),
        &["unauthorized: authentication required"],
    );

    let mf = Miniflare::start(json!({
        "UPSTREAM_CREDENTIALS": accounts,
        "PUBLIC_UPSTREAM_CREDENTIALS": "true",
    }));
    let host = mf.host("docker.example.test");
    let hub_from = log_lines("ISSUER_LOG").len();
    // an anonymous client reads as the account: the hub's issuer saw it, with its password
    assert_eq!(inspect(&reference(&host), None), Ok(digest.clone()));
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
        assert!(
            !seen.contains(&password) && !seen.contains(&basic),
            "{seen}"
        );
    }
    // another registry never gets the hub's account: the team's image is read anonymously
    let team_repo = format!("team/{}", unique("account"));
    push_unique(&var("TEAM_URL"), &bob(), &team_repo, 0);
    let team_from = log_lines("TEAM_ISSUER_LOG").len();
    assert!(inspect(
        &format!("{}/{team_repo}:latest", mf.host("team.example.test")),
        None
    )
    .is_ok());
    // (exactly its scope: other tests' pushes to the team registry may ask to mount from it)
    let team_scope = json!([format!("repository:{team_repo}:pull")]);
    let team: Vec<_> = issuer_lines("TEAM_ISSUER_LOG", team_from)
        .into_iter()
        .filter(|l| l["query"]["scope"] == team_scope)
        .collect();
    assert!(!team.is_empty());
    assert!(team.iter().all(|l| l["authorization"] == false), "{team:?}");
    // nor is a private team repository readable through it
    let team_private = format!("{}/private/app:latest", mf.host("team.example.test"));
    refused(
        inspect(&team_private, None),
        &["unauthorized: authentication required"],
    );

    // a client with its own credentials keeps them: a wrong password is the client's failure
    refused(
        inspect(&reference(&host), Some(&format!("alice:{password}x"))),
        &["unauthorized: invalid username or password"],
    );
    let own = issuer_lines("ISSUER_LOG", hub_from);
    assert!(
        own.iter()
            .any(|l| l["status"] == 401 && l["query"]["scope"][0] == scope.as_str()),
        "{own:?}"
    );
    // pushing as the account takes more than an anonymous client: no write reaches the hub
    push_refused(
        None,
        &format!("docker://{host}/{repo}:pushed"),
        &repo,
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

    // proxy users read as the account too: the proxy's own token request carries it
    let key = "rpk_e2e-account-user-key-of-some-length-0123456789";
    let users = json!({"erin": {"sha256": sha256_hex(key.as_bytes()), "pull_only": true}});
    let mu = Miniflare::start(json!({
        "UPSTREAM_CREDENTIALS": accounts,
        "PROXY_USERS": users.to_string(),
        "PROXY_TOKEN_SECRET": "e2e-token-secret-of-forty-characters-yy",
    }));
    let from = log_lines("ISSUER_LOG").len();
    let users_ref = reference(&mu.host("docker.example.test"));
    refused(inspect(&users_ref, None), &[PROXY_REFUSED]);
    assert_eq!(
        inspect(&users_ref, Some(&format!("erin:{key}"))),
        Ok(digest)
    );
    let asked = issuer_lines("ISSUER_LOG", from);
    assert!(
        asked
            .iter()
            .any(|l| l["user"] == "alice" && l["query"]["scope"][0] == scope.as_str()),
        "{asked:?}"
    );

    // the Workers' logs and the blob store never saw the password or its Basic form
    for (name, text) in [
        ("worker", mf.log_text()),
        ("users' worker", mu.log_text()),
        (
            "blobs",
            std::fs::read_to_string(format!("{}/blobs.log", var("E2E_DIR"))).unwrap_or_default(),
        ),
        (
            "hub",
            std::fs::read_to_string(var("HUB_LOG")).unwrap_or_default(),
        ),
    ] {
        assert!(!text.contains(&basic), "{name}");
        assert!(!text.contains(&format!(":{password}")), "{name}");
    }
}
