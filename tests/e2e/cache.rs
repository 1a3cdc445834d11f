//! The edge cache (issue 12) in the real runtime with a real Cache API: the release build under
//! Miniflare, one instance (and so one empty cache) per test, in front of the harness's
//! registries. What the upstream was asked is read from the registries' own access logs, for a
//! repository no other test uses, holding an image no client has pulled before.

use crate::common::*;
use serde_json::json;
use std::process::Command;

/// The upstream requests for `repository` in `log` after the first `before`.
fn asked_since(log: &str, repository: &str, before: usize) -> Vec<RegistryRequest> {
    registry_requests(log, repository)[before..].to_vec()
}

fn assert_only_heads(asked: &[RegistryRequest], what: &str) {
    assert!(!asked.is_empty(), "{what}: the upstream was not even asked");
    let other: Vec<_> = asked.iter().filter(|r| r.method != "HEAD").collect();
    assert!(
        other.is_empty(),
        "{what}: more than HEADs upstream: {other:?}"
    );
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn a_warm_pull_asks_the_upstream_only_heads_and_ranges_come_from_the_store() {
    let repo = format!("library/{}", unique("warm"));
    // a 20 MiB layer, kept in the Cache API as on the paid plan (hashed by the Worker)
    let (layout, digest) = push_unique(&var("HUB_URL"), &alice(), &repo, 20);
    let mf = Miniflare::start(paid_plan());
    let reference = format!("{}/{repo}:latest", mf.host("docker.example.test"));
    let digests = blob_digests(&layout, &digest);
    // the blob storage's requests for this image's own blobs (other tests pull at the same
    // time, and the first layer is in every image push_unique makes)
    let cdn = || {
        caught_up("BLOBS_LOG");
        log_lines("BLOBS_LOG")
            .into_iter()
            .filter(|l| {
                let path = l["path"].as_str().unwrap_or("");
                [&digests[0], &digests[2], &digests[3]]
                    .iter()
                    .any(|d| path.contains(d.trim_start_matches("sha256:")))
            })
            .count()
    };

    let before = registry_requests("HUB_LOG", &repo).len();
    assert_eq!(skopeo_pull(&reference, None), digest);
    let cold = asked_since("HUB_LOG", &repo, before);
    assert!(cold.iter().any(|r| r.method == "GET"), "{cold:?}");
    // every blob is kept after its answer (in waitUntil)
    for d in &digests {
        mf.store_lines(d, 1);
    }
    let cdn_cold = cdn();
    assert!(
        cdn_cold >= 2,
        "the cold pull fetched no blobs from the blob storage"
    );

    let before = registry_requests("HUB_LOG", &repo).len();
    assert_eq!(skopeo_pull(&reference, None), digest);
    assert_only_heads(&asked_since("HUB_LOG", &repo, before), "skopeo's warm pull");
    assert_eq!(
        cdn(),
        cdn_cold,
        "the warm pull fetched blobs from the blob storage"
    );

    // every blob was kept, and is served with the upstream's say
    let lines = mf.log_lines();
    let stored: Vec<_> = lines
        .iter()
        .filter(|l| l["event"] == "store" && l["stored"] == true)
        .collect();
    for d in &digests {
        assert!(
            stored.iter().any(|l| l["digest"] == d.as_str()),
            "{d} not kept: {lines:?}"
        );
    }
    let hits = lines.iter().filter(|l| l["cache"] == "HIT").count();
    // the manifest and every blob
    assert!(hits > digests.len(), "{lines:?}");
    // and the lines say what the upstream sent: nothing for a hit, the answer for a miss
    for l in lines.iter().filter(|l| l["cache"] == "HIT") {
        assert_eq!(l["upstream_bytes"], 0, "{l}");
    }
    let big_miss = lines
        .iter()
        .any(|l| l["cache"] == "MISS" && l["upstream_bytes"].as_u64() > Some(20 << 20));
    assert!(
        big_miss,
        "no MISS line with the 20 MiB layer's bytes: {lines:?}"
    );

    // a Range of a kept blob: the right bytes, 206, from the store
    let big = digests.last().unwrap();
    let data = std::fs::read(
        layout
            .join("blobs/sha256")
            .join(big.trim_start_matches("sha256:")),
    )
    .unwrap();
    let bearer = format!(
        "Authorization: Bearer {}",
        mf.token(
            "docker.example.test",
            &format!("repository:{repo}:pull"),
            None
        )
    );
    let url = mf.url("docker.example.test", &format!("/v2/{repo}/blobs/{big}"));
    let r = curl(&url, &["-H", &bearer, "-H", "Range: bytes=1000-1999"]);
    assert_eq!(r.status, 206, "{:?}", r.headers);
    assert_eq!(r.body, &data[1000..2000]);
    assert_eq!(r.header("x-proxy-cache"), Some("HIT"));
    let past = format!("Range: bytes={}-", data.len() + 10);
    let r = curl(&url, &["-H", &bearer, "-H", &past]);
    assert_eq!(r.status, 416, "{:?}", r.headers);
    let r = curl(&url, &["-H", &bearer]);
    assert_eq!(r.status, 200);
    assert_eq!(format!("sha256:{}", sha256_hex(&r.body)), *big);
    assert_eq!(
        r.header("content-length"),
        Some(data.len().to_string().as_str())
    );
}

/// An unseen image, pulled once with skopeo through a fresh instance, then by `client`
/// (`pull(reference, digest)`, a client with no state of its own): that pull asks the
/// upstream only `HEAD`s.
fn warm_pull_by(client: &str, pull: impl FnOnce(&str, &str)) {
    let repo = format!("library/{}", unique(client));
    let (layout, digest) = push_unique(&var("HUB_URL"), &alice(), &repo, 0);
    let mf = Miniflare::start(json!({}));
    let reference = format!("{}/{repo}:latest", mf.host("docker.example.test"));
    assert_eq!(skopeo_pull(&reference, None), digest);
    mf.kept(&layout, &digest);
    let before = registry_requests("HUB_LOG", &repo).len();
    pull(&reference, &digest);
    let what = format!("{client}'s warm pull");
    assert_only_heads(&asked_since("HUB_LOG", &repo, before), &what);
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn podman_s_warm_pull_asks_the_upstream_only_heads() {
    warm_pull_by("podman", |reference, digest| {
        let pulled = podman_pull(&tempdir("podman"), reference);
        assert!(pulled.contains(digest), "{pulled}");
    });
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn containerd_s_warm_pull_asks_the_upstream_only_heads() {
    daemons();
    warm_pull_by("ctr", |reference, digest| {
        let ns = unique("cache");
        assert!(ctr_pull_lists(&ns, &[], reference, digest));
        let _ = ctr(&ns).args(["images", "rm", reference]).output();
    });
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn docker_s_warm_pull_asks_the_upstream_only_heads() {
    daemons();
    warm_pull_by("docker", |reference, digest| {
        let pulled = docker_pull(&tempdir("docker"), reference);
        assert!(pulled.contains(digest), "{pulled}");
    });
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn a_kept_private_image_is_refused_to_everyone_the_upstream_refuses() {
    let private = var("PRIVATE_PREFIX");
    let repo = format!("{private}{}", unique("priv"));
    let (layout, digest) = push_unique(&var("HUB_URL"), &alice(), &repo, 0);
    let mf = Miniflare::start(json!({}));
    let host = "docker.example.test";
    let reference = format!("{}/{repo}:latest", mf.host(host));
    // alice's pull keeps it
    assert_eq!(skopeo_pull(&reference, Some(&alice())), digest);
    mf.kept(&layout, &digest);
    // the config and the layer that carries the seed are in no other image (the first layer is
    // the same in every image push_unique makes)
    let all = blob_digests(&layout, &digest);
    let blobs = [all[0].clone(), all[2].clone()];
    // an anonymous client is refused, tag and digests alike, with the upstream's challenge
    refused(inspect(&reference, None), &["unauthorized", "denied"]);
    let anonymous = format!(
        "Authorization: Bearer {}",
        mf.token(host, &format!("repository:{repo}:pull"), None)
    );
    for path in [
        format!("/v2/{repo}/manifests/{digest}"),
        format!("/v2/{repo}/blobs/{}", blobs[0]),
        format!("/v2/{repo}/blobs/{}", blobs[1]),
    ] {
        for auth in [None, Some(anonymous.as_str())] {
            let mut args = vec![];
            if let Some(a) = auth {
                args.extend(["-H", a]);
            }
            let r = curl(&mf.url(host, &path), &args);
            assert!(
                matches!(r.status, 401 | 403 | 404),
                "{path} {auth:?}: {}",
                r.status
            );
            assert_ne!(r.header("x-proxy-cache"), Some("HIT"), "{path}");
        }
    }
    // a client of a public repository cannot reach the private digest through its own path
    let public = format!("library/{}", unique("pub"));
    push_unique(&var("HUB_URL"), &alice(), &public, 0);
    let theirs = format!(
        "Authorization: Bearer {}",
        mf.token(host, &format!("repository:{public}:pull"), None)
    );
    // the upstream has just said yes to this client for its repository (which the proxy
    // remembers for a while): that is no yes to a digest it never showed to be there
    let own = curl(
        &mf.url(host, &format!("/v2/{public}/manifests/latest")),
        &[
            "-I",
            "-H",
            &theirs,
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ],
    );
    assert_eq!(own.status, 200);
    for d in [&digest, &blobs[0], &blobs[1]] {
        let kind = if d == &digest { "manifests" } else { "blobs" };
        let r = curl(
            &mf.url(host, &format!("/v2/{public}/{kind}/{d}")),
            &["-H", &theirs],
        );
        assert_eq!(r.status, 404, "{kind}/{d}: {}", r.text());
        assert_ne!(format!("sha256:{}", sha256_hex(&r.body)), *d);
    }
    // and alice still reads it, from the store
    let before = registry_requests("HUB_LOG", &repo).len();
    assert_eq!(skopeo_pull(&reference, Some(&alice())), digest);
    assert_only_heads(&asked_since("HUB_LOG", &repo, before), "alice's warm pull");

    // the team registry's private image: bob's pull keeps it; alice's hub login and anonymous
    // clients are refused it through the store as they are upstream
    let team_repo = format!("{private}{}", unique("team"));
    let bob = bob();
    let (team_layout, team_digest) = push_unique(&var("TEAM_URL"), &bob, &team_repo, 0);
    let team_ref = format!("{}/{team_repo}:latest", mf.host("team.example.test"));
    assert_eq!(skopeo_pull(&team_ref, Some(&bob)), team_digest);
    mf.kept(&team_layout, &team_digest);
    let before = registry_requests("TEAM_LOG", &team_repo).len();
    assert_eq!(skopeo_pull(&team_ref, Some(&bob)), team_digest);
    assert_only_heads(
        &asked_since("TEAM_LOG", &team_repo, before),
        "bob's warm pull",
    );
    // (as the team registry says it: no access for anonymous clients, no account for her)
    for (creds, says) in [
        (None, "denied: requested access to the resource is denied"),
        (Some(alice()), "unauthorized: invalid username or password"),
    ] {
        refused(inspect(&team_ref, creds.as_deref()), &[says]);
    }
}

/// GET of a blob through `mf` with curl: its status and bytes, or `None` if the transfer
/// failed (a body cut short).
fn get_blob(mf: &Miniflare, path: &str) -> Option<(u16, Vec<u8>, String)> {
    let dir = tempdir("blob");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "--cacert", &var("CA_FILE")])
        .args(["-o", dir.join("b").to_str().unwrap()])
        .args(["-w", "%{http_code} %header{x-proxy-cache}"])
        .arg(mf.url("faults.example.test", path))
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let w = String::from_utf8_lossy(&out.stdout).to_string();
    let (status, cache) = w.split_once(' ').unwrap_or((&w, ""));
    Some((
        status.parse().unwrap(),
        std::fs::read(dir.join("b")).unwrap(),
        cache.to_string(),
    ))
}

/// The Cache API keeping 20 MiB blobs too (the paid plan's setting: the Worker hashes them).
fn paid_plan() -> serde_json::Value {
    json!({"CACHE_VERIFY_MAX_BYTES": (32u64 << 20).to_string()})
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn a_wrong_or_cut_body_is_never_kept_and_the_next_pull_is_right() {
    wrong_or_cut_bodies_are_never_kept(&Miniflare::start(paid_plan()), "cache");
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn a_wrong_or_cut_body_is_never_kept_in_the_bucket() {
    let dir = tempdir("r2");
    let every_blob = json!({"CACHE_BUCKET_MIN_BYTES": "0"});
    wrong_or_cut_bodies_are_never_kept(&Miniflare::start_with_bucket(every_blob, &dir), "bucket");
}

/// A blob of the fault server (`/v2/flaky/<seed>/<how>/blobs/<digest>`): `seed` repeated,
/// 1000 bytes or 20 MiB for a seed that starts with "big".
fn flaky(seed: &str) -> (Vec<u8>, String) {
    let size = if seed.starts_with("big") {
        20 << 20
    } else {
        1000
    };
    let good: Vec<u8> = seed.as_bytes().iter().copied().cycle().take(size).collect();
    let digest = format!("sha256:{}", sha256_hex(&good));
    (good, digest)
}

/// Through `mf`, whose store keeps blobs in `place` (`cache` or `bucket`), the fault server's
/// flaky blobs: other bytes, then cut short, then right. The proxy's second GET of each gets
/// what the client got.
fn wrong_or_cut_bodies_are_never_kept(mf: &Miniflare, place: &str) {
    // small and 20 MiB (several chunks of the Cache API's hashing loop)
    for seed in [unique("small"), unique("big")] {
        let (good, digest) = flaky(&seed);
        let path = |how: &str| format!("/v2/flaky/{seed}/{how}/blobs/{digest}");
        // 1: other bytes of the right length reach the client (it checks the digest), and
        // are not kept
        let (status, body, cache) = get_blob(mf, &path("wrong")).expect("first answer");
        assert_eq!((status, body.len()), (200, good.len()), "{seed}");
        assert_ne!(body, good);
        assert_eq!(cache, "MISS");
        let lines = mf.store_lines(&digest, 1);
        // 2: cut short: the client's transfer fails, nothing kept
        assert!(
            get_blob(mf, &path("cut")).is_none(),
            "{seed}: a cut body arrived whole"
        );
        let lines = [lines, mf.store_lines(&digest, 2)[1..].to_vec()].concat();
        // 3: the right bytes, kept; 4: from the store
        let (status, body, cache) = get_blob(mf, &path("right")).expect("third answer");
        assert_eq!((status, cache.as_str()), (200, "MISS"), "{seed}");
        assert_eq!(body, good);
        let lines = [lines, mf.store_lines(&digest, 3)[2..].to_vec()].concat();
        let (status, body, cache) = get_blob(mf, &path("right")).expect("fourth answer");
        assert_eq!((status, cache.as_str()), (200, "HIT"), "{seed}");
        assert_eq!(body, good);
        let reasons: Vec<_> = lines
            .iter()
            .map(|l| l["reason"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(lines.len(), 3, "{seed}: {lines:?}");
        assert!(lines[..2].iter().all(|l| l["stored"] == false), "{lines:?}");
        if place == "bucket" {
            // R2 checked the digest and took nothing of a cut stream
            assert!(
                reasons[..2].iter().all(|r| r.contains("R2 bucket refused")),
                "{reasons:?}"
            );
        } else {
            assert!(reasons[0].contains("not sha256:"), "{seed}: {reasons:?}");
            assert!(reasons[1].contains("cut short"), "{seed}: {reasons:?}");
        }
        assert_eq!(lines[2]["stored"], true, "{seed}: {lines:?}");
        assert_eq!(lines[2]["place"], place, "{seed}: {lines:?}");
    }
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn two_cold_pulls_of_one_layer_at_once_both_succeed_and_one_copy_is_kept() {
    for (mf, place) in [
        (Miniflare::start(paid_plan()), "cache"),
        (
            Miniflare::start_with_bucket(json!({}), &tempdir("r2")),
            "bucket",
        ),
    ] {
        // the upstream takes about 2 s for it: the two requests overlap
        let seed = unique("big");
        let (good, digest) = flaky(&seed);
        let path = format!("/v2/flaky/{seed}/slow/blobs/{digest}");
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| get_blob(&mf, &path));
            let b = s.spawn(|| get_blob(&mf, &path));
            (a.join().unwrap(), b.join().unwrap())
        });
        let mut verdicts = vec![];
        for got in [a, b] {
            let (status, body, cache) = got.expect("a transfer failed");
            assert_eq!(status, 200, "{place}");
            assert!(body == good, "{place}: other bytes");
            verdicts.push(cache);
        }
        // one is kept, the other passes as the upstream sent it
        verdicts.sort();
        assert_eq!(verdicts, ["BYPASS", "MISS"], "{place}");
        let lines = mf.store_lines(&digest, 2);
        let kept: Vec<_> = lines.iter().filter(|l| l["stored"] == true).collect();
        assert_eq!(kept.len(), 1, "{place}: {lines:?}");
        assert_eq!(kept[0]["place"], place, "{lines:?}");
        // the other request's line says why it kept nothing
        assert!(
            lines
                .iter()
                .any(|l| l["reason"] == "being kept by another request"),
            "{place}: {lines:?}"
        );
        let (status, body, cache) = get_blob(&mf, &path).expect("the third answer");
        assert_eq!((status, cache.as_str()), (200, "HIT"), "{place}");
        assert!(body == good);
    }
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn by_default_a_layer_the_worker_would_spend_too_much_cpu_on_passes_unkept() {
    let mf = Miniflare::start(json!({}));
    // 1000 bytes: kept
    let seed = unique("small");
    let (good, digest) = flaky(&seed);
    let path = format!("/v2/flaky/{seed}/right/blobs/{digest}");
    assert_eq!(get_blob(&mf, &path).unwrap().2, "MISS");
    assert_eq!(mf.store_lines(&digest, 1)[0]["stored"], true);
    let (_, body, cache) = get_blob(&mf, &path).unwrap();
    assert_eq!((body == good, cache.as_str()), (true, "HIT"));
    // 20 MiB: passed through, the store line saying what it would cost and what to set
    let seed = unique("big");
    let (good, digest) = flaky(&seed);
    let path = format!("/v2/flaky/{seed}/right/blobs/{digest}");
    for _ in 0..2 {
        let (status, body, cache) = get_blob(&mf, &path).unwrap();
        assert_eq!((status, cache.as_str()), (200, "BYPASS"));
        assert!(body == good);
    }
    let lines = mf.store_lines(&digest, 2);
    let reason = lines[0]["reason"].as_str().unwrap_or("");
    assert_eq!(lines[0]["stored"], false, "{lines:?}");
    for needle in ["20.0 MiB", "CACHE_VERIFY_MAX_BYTES", "CACHE_BUCKET"] {
        assert!(reason.contains(needle), "{needle}: {reason}");
    }
    let line = mf
        .log_lines()
        .into_iter()
        .find(|l| l["path"] == path.as_str() && l.get("event").is_none())
        .unwrap();
    assert_eq!(line["cache"], "BYPASS", "{line}");
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn with_the_cache_off_every_pull_goes_upstream() {
    let repo = format!("library/{}", unique("off"));
    let (_, digest) = push_unique(&var("HUB_URL"), &alice(), &repo, 0);
    let mf = Miniflare::start(json!({"CACHE": "off"}));
    let reference = format!("{}/{repo}:latest", mf.host("docker.example.test"));
    assert_eq!(skopeo_pull(&reference, None), digest);
    let before = registry_requests("HUB_LOG", &repo).len();
    assert_eq!(skopeo_pull(&reference, None), digest);
    let asked = asked_since("HUB_LOG", &repo, before);
    assert!(
        asked.iter().filter(|r| r.method == "GET").count() >= 4,
        "{asked:?}"
    );
    assert!(mf
        .log_lines()
        .iter()
        .all(|l| l.get("cache").is_none() && l["event"] != "store"));
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn anonymous_tokens_and_the_challenge_are_remembered_and_nothing_with_credentials() {
    let mf = Miniflare::start(json!({}));
    let host = "docker.example.test";
    let repo = format!("library/{}", unique("memo"));
    let scope = format!("repository:{repo}:pull");
    let issued = || {
        log_lines("ISSUER_LOG")
            .into_iter()
            .filter(|l| l["query"]["scope"].to_string().contains(&repo))
            .count()
    };
    // the first anonymous token request goes to the token service, the next is remembered
    let first = mf.token(host, &scope, None);
    assert_eq!(issued(), 1);
    assert_eq!(mf.token(host, &scope, None), first);
    assert_eq!(
        issued(),
        1,
        "a second anonymous token request reached the issuer"
    );
    // with credentials, every request is the token service's
    mf.token(host, &scope, Some(&alice()));
    mf.token(host, &scope, Some(&alice()));
    assert_eq!(issued(), 3);
    // another scope is another request, for the token service
    let other = mf.token(host, &format!("repository:{repo}x:pull"), None);
    assert_eq!(issued(), 4, "another scope got the first scope's token");
    assert_ne!(other, first);
    // an anonymous /v2/ gets the challenge the token service's realm came from, without an
    // upstream request; one with credentials goes upstream
    let r = curl(&mf.url(host, "/v2/"), &[]);
    assert_eq!(r.status, 401);
    let www = r.header("www-authenticate").unwrap_or("");
    assert!(www.contains(&mf.url(host, "/v2/auth")), "{www}");
    assert_eq!(r.error_code(), "UNAUTHORIZED");
    let bearer = format!("Authorization: Bearer {first}");
    assert_eq!(curl(&mf.url(host, "/v2/"), &["-H", &bearer]).status, 200);
    let lines: Vec<_> = mf
        .log_lines()
        .into_iter()
        .filter(|l| l["path"] == "/v2/")
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].get("upstream_status").is_none() && lines[0]["cache"] == "HIT",
        "{lines:?}"
    );
    assert_eq!(lines[1]["upstream_status"], 200, "{lines:?}");
}

/// Pulls an unseen image twice through a fresh instance whose hub is behind a relay, takes the
/// hub away, and pulls again: whether that pull worked.
fn pull_while_the_upstream_is_down(stale: Option<&str>) -> (bool, Miniflare) {
    let repo = format!("library/{}", unique("stale"));
    let (layout, digest) = push_unique(&var("HUB_URL"), &alice(), &repo, 0);
    // the hub registry behind a relay the test can take away (connections refused after)
    let relay_port = next_port();
    let hub = format!("127.0.0.1:{}", var("HUB_PORT"));
    let mut relay = Helper::start(
        "tcp_forward.py",
        &["--listen", &relay_port.to_string(), "--target", &hub],
    );
    let routes = json!({"docker.example.test": {
        "upstream": format!("http://127.0.0.1:{relay_port}"), "docker_hub": true,
        "registry": "hub.registry.test"}});
    let mut bindings = json!({ "ROUTES": routes });
    if let Some(s) = stale {
        bindings["CACHE_STALE_SECONDS"] = json!(s);
    }
    let mf = Miniflare::start(bindings);
    let reference = format!("{}/{repo}:latest", mf.host("docker.example.test"));
    assert_eq!(skopeo_pull(&reference, None), digest);
    assert_eq!(skopeo_pull(&reference, None), digest);
    // what the stale answers are made of: the tag's manifest and every blob, kept
    mf.kept(&layout, &digest);
    mf.store_lines(&digest, 1);
    relay.stop();
    let dir = tempdir("stale").join("oci");
    let ok = skopeo()
        .args(["copy", "--quiet", "--retry-times", "0"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}", dir.display()))
        .status()
        .unwrap()
        .success();
    if ok {
        assert_eq!(oci_layout_digest(&dir), digest);
        // someone the upstream never said yes to gets nothing while it cannot
        let mut c = skopeo();
        c.args([
            "inspect",
            "--raw",
            "--retry-times",
            "0",
            "--creds",
            &alice(),
        ]);
        // (the token service is out of reach too: the proxy's 502)
        run_fails(
            c.arg(format!("docker://{reference}")),
            &["received unexpected HTTP status: 502 Bad Gateway"],
        );
    }
    (ok, mf)
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn a_kept_tag_is_served_while_the_upstream_is_down_only_when_stale_answers_are_allowed() {
    let (ok, mf) = pull_while_the_upstream_is_down(Some("600"));
    assert!(
        ok,
        "the pull failed with CACHE_STALE_SECONDS: {}",
        mf.log_text()
    );
    let stale: Vec<_> = mf
        .log_lines()
        .into_iter()
        .filter(|l| l["cache"] == "STALE")
        .collect();
    assert!(
        stale.iter().any(|l| l["path"]
            .as_str()
            .unwrap_or("")
            .contains("/manifests/latest")),
        "no stale tag in {stale:?}"
    );
    let (ok, _) = pull_while_the_upstream_is_down(None);
    assert!(
        !ok,
        "a pull worked with the upstream down and stale answers off"
    );
}

/// A GET of `path` through `mf` as `auth` (an `Authorization` header), with more curl `args`.
fn get(mf: &Miniflare, path: &str, auth: &str, args: &[&str]) -> Resp {
    let mut all = vec!["-H", auth];
    all.extend(args);
    curl(&mf.url("docker.example.test", path), &all)
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn a_layer_kept_in_the_bucket_serves_every_data_center_and_only_whom_the_upstream_lets_in() {
    // two instances, each with a Cache API of its own (two data centers), sharing one R2
    // bucket; layers of 1 MiB and more go to the bucket
    let r2 = tempdir("r2");
    let vars = json!({"CACHE_BUCKET_MIN_BYTES": "1048576"});
    let repo = format!("{}{}", var("PRIVATE_PREFIX"), unique("r2"));
    let (layout, digest) = push_unique(&var("HUB_URL"), &alice(), &repo, 20);
    let digests = blob_digests(&layout, &digest);
    let big = digests.last().unwrap().clone();
    let hex = big.trim_start_matches("sha256:").to_string();
    let data = std::fs::read(layout.join("blobs/sha256").join(&hex)).unwrap();
    let fetched = || {
        caught_up("BLOBS_LOG");
        log_lines("BLOBS_LOG")
            .iter()
            .filter(|l| l["path"].as_str().unwrap_or("").contains(&hex))
            .count()
    };

    let first = Miniflare::start_with_bucket(vars.clone(), &r2);
    let reference = format!("{}/{repo}:latest", first.host("docker.example.test"));
    assert_eq!(skopeo_pull(&reference, Some(&alice())), digest);
    let kept: Vec<_> = [&big, &digests[0]]
        .iter()
        .flat_map(|d| first.store_lines(d, 1))
        .filter(|l| l["stored"] == true)
        .collect();
    let place = |d: &str| {
        kept.iter()
            .find(|l| l["digest"] == d)
            .map(|l| l["place"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(place(&big).as_deref(), Some("bucket"), "{kept:?}");
    assert_eq!(place(&digests[0]).as_deref(), Some("cache"), "{kept:?}");
    let fetched_cold = fetched();
    assert!(
        fetched_cold >= 1,
        "the layer never came from the blob storage"
    );
    drop(first);

    let second = Miniflare::start_with_bucket(vars, &r2);
    let path = format!("/v2/{repo}/blobs/{big}");
    // strangers get nothing of it: no credentials, an anonymous token, and a client of a
    // public repository asking through its own
    let scope = format!("repository:{repo}:pull");
    let anonymous = format!(
        "Authorization: Bearer {}",
        second.token("docker.example.test", &scope, None)
    );
    for auth in ["X-None: 1", anonymous.as_str()] {
        let r = get(&second, &path, auth, &[]);
        assert!(matches!(r.status, 401 | 403 | 404), "{auth}: {}", r.status);
        assert_ne!(r.header("x-proxy-cache"), Some("HIT"));
    }
    let public = format!("library/{}", unique("r2pub"));
    push_unique(&var("HUB_URL"), &alice(), &public, 0);
    let theirs = format!(
        "Authorization: Bearer {}",
        second.token(
            "docker.example.test",
            &format!("repository:{public}:pull"),
            None
        )
    );
    let r = get(&second, &format!("/v2/{public}/blobs/{big}"), &theirs, &[]);
    assert_eq!(r.status, 404, "{}", r.text());
    assert_ne!(r.body, data);
    // the upstream's own answer, said to be so
    assert_eq!(r.header("x-proxy-cache"), Some("BYPASS"), "{:?}", r.headers);

    // alice's pull through the other data center: the layer comes from the bucket
    let reference = format!("{}/{repo}:latest", second.host("docker.example.test"));
    let before = registry_requests("HUB_LOG", &repo).len();
    assert_eq!(skopeo_pull(&reference, Some(&alice())), digest);
    assert_eq!(
        fetched(),
        fetched_cold,
        "the layer was fetched upstream again"
    );
    let asked = asked_since("HUB_LOG", &repo, before);
    let layer_gets: Vec<_> = asked
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains(&hex))
        .collect();
    assert!(layer_gets.is_empty(), "{layer_gets:?}");
    let hit = second
        .log_lines()
        .into_iter()
        .any(|l| l["cache"] == "HIT" && l["upstream_bytes"] == 0 && l["path"] == path.as_str());
    assert!(hit, "{:?}", second.log_lines());

    // ranges of it, from the bucket
    let alice_s = format!(
        "Authorization: Bearer {}",
        second.token("docker.example.test", &scope, Some(&alice()))
    );
    let r = get(&second, &path, &alice_s, &["-H", "Range: bytes=1000-1999"]);
    assert_eq!(r.status, 206, "{:?}", r.headers);
    assert_eq!(r.body, &data[1000..2000]);
    let n = data.len();
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 1000-1999/{n}").as_str())
    );
    assert_eq!(r.header("x-proxy-cache"), Some("HIT"));
    let r = get(&second, &path, &alice_s, &["-H", "Range: bytes=-100"]);
    assert_eq!(r.status, 206, "{:?}", r.headers);
    assert_eq!(r.body, &data[n - 100..]);
    let r = get(&second, &path, &alice_s, &["-H", "Range: bytes=5000-"]);
    assert_eq!((r.status, r.body.len()), (206, n - 5000));
    assert_eq!(r.body, &data[5000..]);
    let past = format!("Range: bytes={}-", n + 10);
    let r = get(&second, &path, &alice_s, &["-H", &past]);
    assert_eq!(r.status, 416, "{:?}", r.headers);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{n}").as_str())
    );
    // more than one range: the whole blob, as a server may answer
    let r = get(&second, &path, &alice_s, &["-H", "Range: bytes=0-9,20-29"]);
    assert_eq!(r.status, 200, "{:?}", r.headers);
    assert_eq!(r.body, data);
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn a_var_named_cache_bucket_is_a_configuration_error() {
    let mf = Miniflare::start(json!({"CACHE_BUCKET": "my-bucket"}));
    let r = curl(&mf.url("docker.example.test", "/v2/"), &[]);
    assert_eq!(r.status, 500, "{}", r.text());
    let e = &r.json()["errors"][0];
    assert_eq!(e["code"], "UNKNOWN", "{}", r.text());
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("CACHE_BUCKET") && message.contains("r2_buckets"),
        "{message}"
    );
}
