//! Riding through an upstream that fails (issue 24), under Miniflare: the hub behind a relay
//! that plays Docker Hub limiting an address (`recorder.py --limit`: 429 with Docker Hub's body
//! and headers after a number of manifest requests, or no answer at all), the mirror registry
//! (its own token service, key and service name; the hub's public images only) behind a
//! recorder of its own as the fallback; a fallback gone bad (`fault_upstream.py --mode wrong`);
//! the fault server's connection reset once. Run by `tests/run.sh`.

use crate::common::*;
use serde_json::json;

/// A Miniflare instance whose `docker.example.test` is the hub through a limiting relay, with
/// the mirror as its fallback.
struct Limited {
    mf: Miniflare,
    hub: Recorder,
    mirror: Recorder,
    /// When it started (s since the epoch): the mirror's token service's lines since are its.
    since: f64,
}

impl Limited {
    fn start(extra: serde_json::Value) -> Limited {
        let hub = Recorder::limiting(&var("HUB_URL"));
        let mirror = Recorder::start(&var("MIRROR_URL"));
        let mut routes = routes_via("docker.example.test", &hub.url());
        routes["docker.example.test"]["fallback"] = json!([mirror.url()]);
        let mut bindings = json!({ "ROUTES": routes });
        for (k, v) in extra.as_object().unwrap() {
            bindings[k] = v.clone();
        }
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let mf = Miniflare::start(bindings);
        Limited {
            mf,
            hub,
            mirror,
            since,
        }
    }

    fn reference(&self, image: &str) -> String {
        format!("{}/{image}", self.mf.host("docker.example.test"))
    }

    /// The paths the mirror was asked, in order.
    fn mirror_paths(&self) -> Vec<String> {
        self.mirror
            .lines()
            .iter()
            .map(|l| l["path"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// That nothing but the mirror's own anonymous tokens reached the mirror: no credential of
    /// the client's, of the hub's, or of the proxy's.
    fn mirror_saw_no_credentials(&self) {
        for auth in self.mirror.authorizations() {
            let token = auth
                .strip_prefix("Bearer ")
                .unwrap_or_else(|| panic!("{auth}"));
            let payload = token.split('.').nth(1).unwrap_or("");
            let claims = registry_proxy::digest::base64_decode(payload, true)
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .unwrap_or_else(|| panic!("not a JWT: {auth}"));
            assert_eq!(claims["iss"], var("MIRROR_ISSUER_NAME"), "{claims}");
            assert_eq!(claims["sub"], "", "an anonymous token: {claims}");
        }
        let lines = log_lines("MIRROR_ISSUER_LOG");
        for line in lines
            .iter()
            .filter(|l| l["time"].as_f64() >= Some(self.since))
        {
            assert_eq!(
                line["user"], "",
                "the mirror's token service was asked anonymously: {line}"
            );
        }
    }
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn the_hub_serves_until_its_limit_then_the_mirror_does_and_says_so() {
    let l = Limited::start(json!({}));
    // the challenge's GET and the first pull's: the hub's; then its limit
    l.hub.limit("after=2");
    let tag =
        l.mf.url("docker.example.test", "/v2/library/hello/manifests/latest");
    let accept = "Accept: application/vnd.oci.image.index.v1+json";
    let first = curl(&tag, &["-H", accept]);
    assert_eq!(first.status, 401, "{}", first.text());
    let token =
        l.mf.token("docker.example.test", "repository:library/hello:pull", None);
    let auth = format!("Authorization: Bearer {token}");
    let primary = curl(&tag, &["-H", accept, "-H", &auth]);
    assert_eq!(primary.status, 200);
    assert_eq!(primary.header("x-proxy-upstream"), None);
    // the hub's limit is reached: the mirror answers, by the digest its body hashes to
    let fallback = curl(&tag, &["-H", accept, "-H", &auth]);
    assert_eq!(fallback.status, 200, "{}", fallback.text());
    let mirror = l.mirror.url();
    assert_eq!(fallback.header("x-proxy-upstream"), Some(mirror.as_str()));
    let digest = var("DIGEST_HELLO_LATEST");
    assert_eq!(
        fallback.header("docker-content-digest"),
        Some(digest.as_str())
    );
    assert_eq!(format!("sha256:{}", sha256_hex(&fallback.body)), digest);
    assert!(l.hub.lines().iter().any(|x| x["limited"] == true));
    // the line says which upstream served, and the hub's limit
    l.mf.caught_up();
    let line =
        l.mf.log_lines()
            .into_iter()
            .rfind(|x| x["path"] == "/v2/library/hello/manifests/latest" && x["status"] == 200)
            .unwrap();
    assert_eq!(line["fallback"], mirror.as_str(), "{line}");
    assert_eq!(line["ratelimit_remaining"], 0, "{line}");
    // the hub cannot be reached at all: a blob by digest (kept or not), a tag list
    let blob = |digest: &str| {
        let path = format!("/v2/library/hello/blobs/{digest}");
        curl(&l.mf.url("docker.example.test", &path), &["-H", &auth])
    };
    let layer = var("BLOB_HELLO_AMD64_LAYER");
    assert_eq!(blob(&layer).header("x-proxy-upstream"), None, "the hub's");
    l.hub.limit("down=1");
    // (the layer is kept now, and the hub's yes of a moment ago stands for it)
    {
        let digest = var("BLOB_HELLO_AMD64_CONFIG");
        let b = blob(&digest);
        assert_eq!(
            (b.status, b.header("x-proxy-upstream")),
            (200, Some(mirror.as_str()))
        );
        assert_eq!(format!("sha256:{}", sha256_hex(&b.body)), digest);
    }
    let tags = curl(
        &l.mf
            .url("docker.example.test", "/v2/library/hello/tags/list"),
        &["-H", &auth],
    );
    assert_eq!(
        (tags.status, tags.header("x-proxy-upstream")),
        (200, Some(mirror.as_str()))
    );
    l.mirror_saw_no_credentials();
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn skopeo_and_podman_pull_through_the_mirror_while_the_hub_limits() {
    let l = Limited::start(json!({}));
    l.hub.limit("after=0");
    for (image, key) in [
        // skopeo copies an index's own platform's image
        ("library/hello:latest", "DIGEST_HELLO_AMD64"),
        ("library/multi:latest", "DIGEST_MULTI"),
    ] {
        assert_eq!(skopeo_pull(&l.reference(image), None), var(key), "{image}");
    }
    let pulled = podman_pull(&tempdir("podman"), &l.reference("library/hello:v2s2"));
    assert!(pulled.contains(&var("DIGEST_HELLO_V2S2")), "{pulled}");
    // the hub's limit is on manifests: the mirror gave those, the hub its blobs
    let asked = l.mirror_paths();
    assert!(asked.iter().any(|p| p.contains("/manifests/")), "{asked:?}");
    // a manifest the mirror gave is kept like the hub's, and its store line says whose it was
    let kept = l.mf.store_lines(&var("DIGEST_MULTI"), 1);
    assert_eq!(kept[0]["stored"], true, "{kept:?}");
    assert_eq!(kept[0]["fallback"], l.mirror.url().as_str(), "{kept:?}");
    l.mirror_saw_no_credentials();
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn docker_and_containerd_pull_through_the_mirror_while_the_hub_is_down() {
    daemons();
    let l = Limited::start(json!({}));
    l.hub.limit("down=1");
    let reference = l.reference("library/multi:latest");
    let pulled = docker_pull(&tempdir("docker"), &reference);
    assert!(pulled.contains(&var("DIGEST_MULTI")), "{pulled}");
    let ns = unique("fallback");
    let reference = l.reference("library/hello:latest");
    assert!(ctr_pull_lists(
        &ns,
        &[],
        &reference,
        &var("DIGEST_HELLO_LATEST")
    ));
    let _ = ctr(&ns).args(["images", "rm", &reference]).output();
    l.mirror_saw_no_credentials();
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn logged_in_clients_and_images_the_mirror_lacks_get_the_hub_s_answer() {
    let l = Limited::start(json!({}));
    l.hub.limit("after=0");
    // a client's token from the proxy's /v2/auth (as `creds`), then the tag's manifest (curl:
    // skopeo would back off its 429s for seconds)
    let pull = |repo: &str, creds: Option<&str>| {
        let scope = format!("repository:{repo}:pull");
        let token = l.mf.token("docker.example.test", &scope, creds);
        let path = format!("/v2/{repo}/manifests/latest");
        let auth = format!("Authorization: Bearer {token}");
        curl(&l.mf.url("docker.example.test", &path), &["-H", &auth])
    };
    // alice's login is hers and the hub's: her pull never goes to the mirror
    let r = pull("library/hello", Some(&alice()));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (429, "TOOMANYREQUESTS")
    );
    assert!(l.mirror_paths().is_empty(), "{:?}", l.mirror_paths());
    // a private image, and a public one the mirror does not hold: the hub's 429, not the
    // mirror's refusal
    let unmirrored = format!("library/{}", unique("unmirrored"));
    push_unique(&var("HUB_URL"), &alice(), &unmirrored, 0);
    let private = format!("{}{}", var("PRIVATE_PREFIX"), unique("nomirror"));
    push_unique(&var("HUB_URL"), &alice(), &private, 0);
    for repo in [&unmirrored, &private] {
        let r = pull(repo, None);
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (429, "TOOMANYREQUESTS"),
            "{repo}"
        );
        assert_eq!(r.header("x-proxy-upstream"), None);
        let path = format!("/v2/{repo}/manifests/latest");
        let asked = l.mirror.lines();
        let answered = asked.iter().filter(|x| x["path"] == path.as_str()).count();
        assert!(answered > 0, "the mirror was asked for {repo}");
    }
    l.mirror_saw_no_credentials();
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn a_fallback_serving_wrong_bytes_fails_the_transfer_and_keeps_nothing() {
    // the primary cannot be reached; the only fallback serves wrong bytes
    let mut routes = routes_via("docker.example.test", &var("HUB_URL"));
    routes["down.example.test"] = json!({
        "upstream": format!("http://127.0.0.1:{}", var("DOWN_PORT")),
        "fallback": [var("WRONG_URL")],
    });
    let mf = Miniflare::start(json!({ "ROUTES": routes, "CACHE_VERIFY_MAX_BYTES": "33554432" }));
    let digest = format!("sha256:{}", "5e".repeat(32));
    // 3 MiB (a streamed keep: not of a fallback's), 100 kB (read whole and hashed to be kept)
    for (repo, hex) in [("app", "5e"), ("small", "5f")] {
        let digest = format!("sha256:{}", hex.repeat(32));
        let blob = mf.url("down.example.test", &format!("/v2/{repo}/blobs/{digest}"));
        let reason = wrong_blob_fails_twice_and_is_not_kept(&mf, &blob, repo, &digest);
        let why = if repo == "app" {
            "fallback"
        } else {
            "not sha256:5f"
        };
        assert!(reason.contains(why), "{repo}: {reason}");
    }
    // a manifest asked by digest that the fallback's body is not: the primary's error
    let by_digest = mf.url("down.example.test", &format!("/v2/app/manifests/{digest}"));
    let r = curl(&by_digest, &[]);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (502, "UNAVAILABLE"),
        "{}",
        r.text()
    );
    // a tag: served with the digest its body hashes to
    let r = curl(&mf.url("down.example.test", "/v2/app/manifests/v1"), &[]);
    assert_eq!(r.status, 200);
    let named = format!("sha256:{}", sha256_hex(&r.body));
    assert_eq!(r.header("docker-content-digest"), Some(named.as_str()));
}

/// That a wrong blob's transfer fails, each time, and is not kept: the store line's reason.
fn wrong_blob_fails_twice_and_is_not_kept(
    mf: &Miniflare,
    blob: &str,
    repo: &str,
    digest: &str,
) -> String {
    for _ in 0..2 {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "30",
                "--cacert",
                &var("CA_FILE"),
                "-o",
                "/dev/null",
            ])
            .arg(blob)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "a wrong blob reached the client whole"
        );
    }
    // nothing was kept: each transfer went to the fallback again
    let gets = log_lines("FAULT_LOG")
        .into_iter()
        .filter(|l| l["mode"] == "wrong" && l["method"] == "GET")
        .filter(|l| l["path"] == format!("/v2/{repo}/blobs/{digest}").as_str())
        .count();
    assert!(gets >= 2, "{gets} GETs of the wrong blob");
    let lines: Vec<_> = mf
        .store_lines(digest, 1)
        .into_iter()
        .filter(|l| {
            l["path"]
                .as_str()
                .is_some_and(|p| p.contains(&format!("/{repo}/")))
        })
        .collect();
    assert!(
        !lines.is_empty() && lines.iter().all(|l| l["stored"] == false),
        "{lines:?}"
    );
    lines[0]["reason"].as_str().unwrap_or("").to_string()
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn a_connection_that_fails_before_any_answer_is_tried_once_more() {
    let path = format!("/v2/reset-once/{}/manifests/v1", unique("retry"));
    let r = curl(&proxy_url("faults.example.test", &path), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let line = wait_for(&format!("the Worker's line for {path}"), || {
        worker_log_lines(&var("WORKERD_LOG"))
            .into_iter()
            .find(|l| l["path"] == path.as_str())
    });
    assert_eq!(line["retries"], 1, "{line}");
    // never a write: its reset is the client's 502
    let put = format!("/v2/reset-once/{}/manifests/v1", unique("noretry"));
    let r = curl(
        &proxy_url("faults.example.test", &put),
        &["-X", "PUT", "-d", "{}"],
    );
    assert_eq!(r.status, 502, "{}", r.text());
    let asked = log_lines("FAULT_LOG")
        .into_iter()
        .filter(|l| l["path"] == put.as_str())
        .count();
    assert_eq!(asked, 1);
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn a_new_isolate_serves_kept_public_images_to_anonymous_clients_while_the_hub_is_down() {
    let hub = Recorder::limiting(&var("HUB_URL"));
    let bindings = json!({
        "ROUTES": routes_via("docker.example.test", &hub.url()),
        "CACHE_STALE_SECONDS": "3600",
    });
    let store = tempdir("stale-store");
    let port = next_port();
    let dir = ["--cache-dir", store.to_str().unwrap()];
    let start = || Miniflare::start_at(port, bindings.clone(), &dir);
    let public = format!("library/{}", unique("stale"));
    let (layout, digest) = push_unique(&var("HUB_URL"), &alice(), &public, 0);
    let private = format!("{}{}", var("PRIVATE_PREFIX"), unique("stale"));
    let (private_layout, private_digest) = push_unique(&var("HUB_URL"), &alice(), &private, 0);
    {
        let mf = start();
        let reference = |repo: &str| format!("{}/{repo}:latest", mf.host("docker.example.test"));
        assert_eq!(skopeo_pull(&reference(&public), None), digest);
        assert_eq!(
            skopeo_pull(&reference(&private), Some(&alice())),
            private_digest
        );
        mf.kept(&layout, &digest);
        mf.kept(&private_layout, &private_digest);
        mf.store_lines(&digest, 1);
        mf.store_lines(&private_digest, 1);
    }
    // the hub and its token service cannot be reached; a new isolate with the same store
    hub.limit("down=1");
    let mf = start();
    let reference = |repo: &str| format!("{}/{repo}:latest", mf.host("docker.example.test"));
    assert_eq!(skopeo_pull(&reference(&public), None), digest);
    mf.caught_up();
    let stale = mf
        .log_lines()
        .into_iter()
        .filter(|l| l["cache"] == "STALE")
        .count();
    assert!(
        stale >= 2,
        "the manifest and blobs came from the store as STALE"
    );
    // a repository anonymous clients could not read is refused to them, kept or not
    refused(
        inspect(&reference(&private), None),
        &["502", "unavailable", "UNAVAILABLE"],
    );
    // and a logged-in client of the public one gets no stale answer from memory it never made
    refused(
        inspect(&reference(&public), Some(&alice())),
        &["502", "unavailable", "UNAVAILABLE"],
    );
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn by_default_only_a_small_fallback_blob_is_hashed_in_the_worker_and_none_wrong_is_kept() {
    let mut routes = routes_via("docker.example.test", &var("HUB_URL"));
    routes["down.example.test"] = json!({
        "upstream": format!("http://127.0.0.1:{}", var("DOWN_PORT")),
        "fallback": [var("WRONG_URL")],
    });
    let mf = Miniflare::start(json!({ "ROUTES": routes }));
    // 3 MiB, over CACHE_VERIFY_MAX_BYTES: it passes untouched (hashing it would cost the
    // Worker more CPU than the free plan allows); the client's own digest check refuses it
    let digest = format!("sha256:{}", "6e".repeat(32));
    let r = curl(
        &mf.url("down.example.test", &format!("/v2/app/blobs/{digest}")),
        &[],
    );
    assert_eq!((r.status, r.body.len()), (200, 3 << 20));
    assert_ne!(format!("sha256:{}", sha256_hex(&r.body)), digest);
    assert_eq!(
        r.header("x-proxy-upstream"),
        Some(var("WRONG_URL").as_str())
    );
    let line = &mf.store_lines(&digest, 1)[0];
    assert_eq!(line["stored"], false, "{line}");
    assert!(
        line["reason"]
            .as_str()
            .is_some_and(|r| r.contains("CACHE_VERIFY_MAX_BYTES")),
        "{line}"
    );
    // 100 kB: hashed on its way, the transfer fails
    let small = format!("sha256:{}", "6f".repeat(32));
    let blob = mf.url("down.example.test", &format!("/v2/small/blobs/{small}"));
    let reason = wrong_blob_fails_twice_and_is_not_kept(&mf, &blob, "small", &small);
    assert!(reason.contains("not sha256:6f"), "{reason}");
}
