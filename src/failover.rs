//! When an upstream fails: one more try of a connection that failed before any answer, and
//! the fallback upstreams (`fallback` in `ROUTES`, `FALLBACKS`) an anonymous read is asked of
//! instead, and what their answers are checked for.

use crate::classify::{Access, Resource};
use crate::credentials::mark;
use crate::plan::{Forward, Reference};
use crate::routes::Upstream;

/// Whether a request whose connection failed before any response (refused, reset, a TLS
/// failure: not a timeout, which would double the wait) is sent once more. Only a `GET` or
/// `HEAD` without a body: nothing of it can have been done upstream, and nothing of the answer
/// has reached the client.
pub fn retried(method: &str, has_body: bool) -> bool {
    !has_body && matches!(method, "GET" | "HEAD")
}

/// Whether the primary's answer lets a fallback be asked: `None` is no answer at all
/// (unreachable, timed out), `429` its rate limit, `5xx` its trouble. A `401`, `403` or `404`
/// is the primary's word on the repository and stands.
pub fn primary_failed(status: Option<u16>) -> bool {
    status.is_none_or(|s| s == 429 || (500..600).contains(&s))
}

/// Whether the proxy answers for an upstream that failed (`primary_failed`) an anonymous
/// client's version check (the proxy's challenge, `challenge::stand_in`) and token request
/// (`stand_in_token`), so that the client goes on to the reads that can still be served: only
/// where some can, a route with fallbacks or stale answers on (`stale`).
pub fn stands_in(upstream: &Upstream, stale: bool, status: Option<u16>) -> bool {
    primary_failed(status) && (stale || !upstream.fallbacks.is_empty())
}

/// The token answer `/v2/auth` gives an anonymous client while the upstream or its token
/// service cannot: the anonymous mark alone, so that nothing goes upstream with it.
pub fn stand_in_token() -> String {
    let t = mark("");
    format!(r#"{{"token":"{t}","access_token":"{t}","expires_in":60}}"#)
}

/// Whether a forward may be asked of the route's fallbacks once its primary failed: a read
/// (`GET`/`HEAD` of a manifest or blob, a tag list) by a client that brought no credentials of
/// its own (`anonymous`: credentials.rs), and only for digests the proxy can check.
pub fn may_fall_back(f: &Forward<'_>, anonymous: bool) -> bool {
    if f.route.upstream.fallbacks.is_empty()
        || !anonymous
        || f.access != Access::Read
        || f.body
        || !matches!(f.method.as_str(), "GET" | "HEAD")
    {
        return false;
    }
    let Some(repo) = &f.repository else {
        return false;
    };
    match (repo.resource, &repo.reference) {
        (Resource::Tags, _) | (Resource::Manifest, Some(Reference::Tag(_))) => true,
        (Resource::Manifest | Resource::Blob, Some(Reference::Digest(d))) => checkable(d),
        _ => false,
    }
}

/// A digest the proxy can check a body against: sha256, 64 lower-case hex digits.
fn checkable(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// What a fallback's answer must be before it reaches the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Its body hashes to this digest (a blob, a manifest asked by digest); a body that does
    /// not fails the client's transfer.
    Digest(String),
    /// A tag's manifest: served with the digest its body hashes to, whatever the fallback says.
    Tag,
    /// Nothing to check (a tag list, a blob's `HEAD`).
    None,
}

/// What is asked of one fallback for a forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// The forward's path and query on the fallback.
    pub url: String,
    /// A manifest is always fetched whole (a `HEAD` too): its digest is the proxy's to tell.
    pub method: &'static str,
    /// The client's `HEAD` gets the answer without its body.
    pub head: bool,
    /// Blob bodies are checked whole: a client's `Range` is not sent (the whole blob is an
    /// answer HTTP allows to a range request).
    pub whole: bool,
    pub check: Check,
    /// The token scope asked of the fallback's token service, anonymously.
    pub scope: String,
    /// The memo key of the fallback's anonymous token for it.
    pub token_key: String,
}

/// What to ask `fallback` (an origin) for `f`, which `may_fall_back`.
pub fn ask(f: &Forward<'_>, fallback: &str) -> Ask {
    let path = f
        .url
        .strip_prefix(f.route.upstream.base.as_str())
        .unwrap_or(&f.url);
    let head = f.method == "HEAD";
    let (resource, reference, name) = match &f.repository {
        Some(r) => (Some(r.resource), r.reference.as_ref(), r.name.as_str()),
        None => (None, None, ""),
    };
    let (method, check) = match (resource, reference) {
        (Some(Resource::Manifest), Some(Reference::Digest(d))) => ("GET", Check::Digest(d.clone())),
        (Some(Resource::Manifest), _) => ("GET", Check::Tag),
        (Some(Resource::Blob), Some(Reference::Digest(d))) if !head => {
            ("GET", Check::Digest(d.clone()))
        }
        _ if head => ("HEAD", Check::None),
        _ => ("GET", Check::None),
    };
    let scope = format!("repository:{name}:pull");
    Ask {
        url: format!("{fallback}{path}"),
        method,
        head,
        whole: resource == Some(Resource::Blob),
        token_key: format!("{fallback} {scope} fallback"),
        scope,
        check,
    }
}

/// Whether the Worker hashes a fallback's blob on its way to the client: only up to
/// `verify_max` bytes (`CACHE_VERIFY_MAX_BYTES`, what the operator lets a request spend on
/// hashing: 20 MiB through the check cost 0.6-0.75 s of CPU with small chunks, 0.75 ms per
/// MiB at best, where the free plan allows 10 ms a request). A larger blob, or one of unknown
/// length, passes untouched: every client checks a blob's digest itself and fails the pull,
/// and the proxy keeps only what a store or its own hash has checked.
pub fn checks_blob(length: Option<u64>, verify_max: u64) -> bool {
    length.is_some_and(|n| n <= verify_max)
}

/// Whether a fallback's answer is served: only a `200`. Anything else (its own `401` after
/// the anonymous token, a `404` for a repository it does not hold, its trouble) sends the
/// request to the next fallback, and after the last the client gets the primary's answer.
pub fn serves(status: u16) -> bool {
    status == 200
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{plan, Plan};
    use url::Url;

    const D: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn config() -> &'static crate::config::Config {
        let routes = r#"{"docker.example.test": {"upstream": "https://registry-1.docker.io",
            "fallback": ["https://mirror.gcr.io", "https://mirror.example:8443"]},
            "quay.example.test": "https://quay.io"}"#;
        Box::leak(Box::new(crate::testing::config(&[("ROUTES", routes)])))
    }

    fn forward(method: &str, url: &str) -> Forward<'static> {
        let url = Url::parse(url).unwrap();
        match plan(config(), method, &url, false).unwrap() {
            Plan::Upstream(f) => f,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn a_failed_connection_is_tried_again_only_for_reads_without_a_body() {
        assert!(retried("GET", false));
        assert!(retried("HEAD", false));
        for method in ["PUT", "POST", "PATCH", "DELETE"] {
            assert!(!retried(method, false), "{method}");
            assert!(!retried(method, true), "{method}");
        }
        assert!(!retried("GET", true));
    }

    #[test]
    fn only_no_answer_a_rate_limit_or_trouble_lets_a_fallback_be_asked() {
        for failed in [None, Some(429), Some(500), Some(502), Some(503), Some(504)] {
            assert!(primary_failed(failed), "{failed:?}");
        }
        for stands in [200, 206, 304, 307, 400, 401, 403, 404, 416] {
            assert!(!primary_failed(Some(stands)), "{stands}");
        }
    }

    #[test]
    fn anonymous_reads_of_manifests_blobs_and_tags_may_fall_back() {
        let hub = "https://docker.example.test/v2/library/busybox";
        for (method, url) in [
            ("GET", format!("{hub}/manifests/latest")),
            ("HEAD", format!("{hub}/manifests/latest")),
            ("GET", format!("{hub}/manifests/{D}")),
            ("GET", format!("{hub}/blobs/{D}")),
            ("HEAD", format!("{hub}/blobs/{D}")),
            ("GET", format!("{hub}/tags/list?n=10")),
        ] {
            let f = forward(method, &url);
            assert!(may_fall_back(&f, true), "{method} {url}");
            // a client with credentials of its own never does
            assert!(!may_fall_back(&f, false), "{method} {url}");
        }
        for (method, url) in [
            ("PUT", format!("{hub}/manifests/latest")),
            ("DELETE", format!("{hub}/blobs/{D}")),
            ("POST", format!("{hub}/blobs/uploads/")),
            ("GET", "https://docker.example.test/v2/".to_string()),
            ("GET", "https://docker.example.test/v2/_catalog".to_string()),
            // a digest the proxy cannot check
            ("GET", format!("{hub}/blobs/sha512:{}", "a".repeat(128))),
            ("GET", format!("{hub}/referrers/{D}")),
        ] {
            let f = forward(method, &url);
            assert!(!may_fall_back(&f, true), "{method} {url}");
        }
        // a route without fallbacks
        let quay = forward("GET", "https://quay.example.test/v2/org/app/manifests/1");
        assert!(!may_fall_back(&quay, true));
    }

    #[test]
    fn a_fallback_is_asked_the_same_path_whole_and_checked() {
        let hub = "https://docker.example.test/v2/library/busybox";
        let tag = ask(
            &forward("HEAD", &format!("{hub}/manifests/latest")),
            "https://mirror.gcr.io",
        );
        assert_eq!(
            tag.url,
            "https://mirror.gcr.io/v2/library/busybox/manifests/latest"
        );
        assert_eq!((tag.method, tag.head, tag.whole), ("GET", true, false));
        assert_eq!(tag.check, Check::Tag);
        assert_eq!(tag.scope, "repository:library/busybox:pull");
        assert!(tag.token_key.starts_with("https://mirror.gcr.io "));

        let by_digest = ask(
            &forward("GET", &format!("{hub}/manifests/{D}")),
            "https://mirror.gcr.io",
        );
        assert_eq!(by_digest.check, Check::Digest(D.into()));

        let blob = ask(
            &forward("GET", &format!("{hub}/blobs/{D}")),
            "https://mirror.example:8443",
        );
        assert_eq!(
            blob.url,
            format!("https://mirror.example:8443/v2/library/busybox/blobs/{D}")
        );
        assert_eq!((blob.method, blob.whole), ("GET", true));
        assert_eq!(blob.check, Check::Digest(D.into()));

        let blob_head = ask(
            &forward("HEAD", &format!("{hub}/blobs/{D}")),
            "https://mirror.gcr.io",
        );
        assert_eq!((blob_head.method, blob_head.check), ("HEAD", Check::None));

        let tags = ask(
            &forward("GET", &format!("{hub}/tags/list?n=10")),
            "https://mirror.gcr.io",
        );
        assert_eq!(
            tags.url,
            "https://mirror.gcr.io/v2/library/busybox/tags/list?n=10"
        );
        assert_eq!(tags.check, Check::None);
        // the two fallbacks' tokens are remembered apart
        assert_ne!(tag.token_key, blob.token_key);
    }

    #[test]
    fn the_proxy_stands_in_only_for_a_failed_upstream_with_something_to_serve() {
        let hub = &config().routes.get("docker.example.test").unwrap().clone();
        let quay = &config().routes.get("quay.example.test").unwrap().clone();
        for failed in [None, Some(429), Some(503)] {
            assert!(stands_in(hub, false, failed));
            assert!(stands_in(quay, true, failed));
            assert!(!stands_in(quay, false, failed));
        }
        for answered in [Some(200), Some(401), Some(404)] {
            assert!(!stands_in(hub, true, answered));
        }
        let token: serde_json::Value = serde_json::from_str(&stand_in_token()).unwrap();
        for field in ["token", "access_token"] {
            let t = token[field].as_str().unwrap();
            let auth = format!("Bearer {t}");
            // marked anonymous, and nothing of it goes upstream
            assert_eq!(
                crate::credentials::Presented::of(Some(&auth)),
                crate::credentials::Presented::Anonymous(None)
            );
        }
    }

    #[test]
    fn a_fallback_s_blob_is_hashed_in_the_worker_only_within_the_verify_limit() {
        let max = 512 << 10;
        assert!(checks_blob(Some(0), max));
        assert!(checks_blob(Some(max), max));
        assert!(!checks_blob(Some(max + 1), max));
        assert!(!checks_blob(None, max));
        assert!(checks_blob(Some(3 << 20), 32 << 20));
        assert!(!checks_blob(Some(1), 0));
    }

    #[test]
    fn only_a_200_of_a_fallback_is_served() {
        assert!(serves(200));
        for status in [206, 301, 401, 403, 404, 429, 500, 503] {
            assert!(!serves(status), "{status}");
        }
    }
}
