//! The cache phase's decisions: what may be kept, under which key, and when a kept answer may
//! be served. Content is kept by digest only (it never changes), and served for a repository
//! only after the upstream has accepted the client for that repository and digest in the same
//! request (a `HEAD` with the client's credentials): the upstream decides who may read, the
//! cache only saves the bytes. The reasoning and the threat model: docs/architecture.md.

use crate::classify::Resource;
use crate::config::Binding;
use crate::error::ProxyError;
use crate::plan::{Access, Forward, Reference};

/// The Cache API keeps no object over 512 MB (Cloudflare's limit per object).
pub const CACHE_API_MAX_BYTES: u64 = 512 * 1000 * 1000;

/// An answer at most this large is kept by reading it whole (hashed, then stored) while the
/// client gets it through a native `tee()`, which buffers for the slower branch at most this
/// much; a larger one is passed to the client and the store in lockstep (docs/architecture.md).
pub const WHOLE_MAX_BYTES: u64 = 16 << 20;

/// `CACHE`: where answers are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// Nothing is kept, every request goes upstream (as the original did).
    Off,
    /// The Cache API of the data center (`caches.default`): the default.
    Edge,
}

impl CacheMode {
    pub fn parse(raw: Option<&str>) -> Result<Self, ProxyError> {
        match raw.map(|r| r.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("on") | Some("edge") => Ok(CacheMode::Edge),
            Some("off") => Ok(CacheMode::Off),
            Some(_) => Err(ProxyError::Config {
                var: "CACHE",
                reason: format!(
                    "{:?} is neither \"on\" nor \"off\"",
                    raw.unwrap_or_default()
                ),
            }),
        }
    }
}

/// `CACHE_STALE_SECONDS`: how old a tag's last digest, and the upstream's last yes to a client,
/// may be to answer from the store while the upstream cannot (unset: never).
pub fn parse_stale(raw: Option<&str>) -> Result<Option<u32>, ProxyError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    match raw.parse::<u32>() {
        Ok(n) if n > 0 && n <= 30 * 24 * 3600 => Ok(Some(n)),
        _ => Err(ProxyError::Config {
            var: "CACHE_STALE_SECONDS",
            reason: format!("{raw:?} is not a whole number of seconds from 1 to 2592000 (30 days)"),
        }),
    }
}

/// Whether an upstream's answer to the confirming `HEAD` says it cannot answer now (and not
/// that the client may not read): only then may a stale answer stand in for it.
pub fn unavailable(status: u16) -> bool {
    status >= 500 || status == 429
}

/// A tag's record: the digest its manifest had and when the upstream last said so.
pub fn tag_record(digest: &str, at_ms: f64) -> String {
    format!("{digest} {}", at_ms.max(0.0) as u64)
}

/// The digest and time of a tag's record, if it is one.
pub fn parse_tag_record(record: &str) -> Option<(&str, f64)> {
    let (digest, at) = record.trim().split_once(' ')?;
    let at = at.parse::<u64>().ok()? as f64;
    keepable_digest(digest).then_some((digest, at))
}

/// What the cache phase does with a request, decided from its plan alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cacheable {
    /// A blob or manifest `GET` by a sha256 digest: served from the store once the upstream
    /// confirms it (`HEAD`), else fetched and kept.
    Digest { kind: Kind, digest: String },
    /// A manifest `GET` by tag: once the tag was seen, a `HEAD` learns its digest and the
    /// store answers by digest; the first time, the `GET` goes upstream and is kept.
    Tag { tag: String },
    /// The version check `/v2/`: an anonymous client may get the upstream's last challenge
    /// to anonymous clients, remembered by the isolate (memo.rs).
    VersionCheck,
    /// Nothing to keep: writes, `HEAD`s (the upstream's answer is the authorization), tag
    /// lists, `/v2/`, other digests than sha256, or the cache is off.
    Bypass,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Blob,
    Manifest,
}

impl Kind {
    fn segment(self) -> &'static str {
        match self {
            Kind::Blob => "blobs",
            Kind::Manifest => "manifests",
        }
    }
}

/// The digests whose bytes the proxy can check while they pass (workerd hashes sha256
/// natively), and so the only ones it keeps.
pub fn keepable_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The cache phase's decision for a forward.
pub fn cacheable(mode: CacheMode, f: &Forward<'_>) -> Cacheable {
    if mode == CacheMode::Off || f.access != Access::Read || f.method != "GET" {
        return Cacheable::Bypass;
    }
    let Some(repo) = &f.repository else {
        let version_check = f.url.strip_suffix("/v2/") == Some(f.route.upstream.base.as_str());
        return if version_check {
            Cacheable::VersionCheck
        } else {
            Cacheable::Bypass
        };
    };
    let kind = match repo.resource {
        Resource::Blob => Kind::Blob,
        Resource::Manifest => Kind::Manifest,
        _ => return Cacheable::Bypass,
    };
    match &repo.reference {
        Some(Reference::Digest(d)) if keepable_digest(d) => Cacheable::Digest {
            kind,
            digest: d.clone(),
        },
        Some(Reference::Tag(t)) if kind == Kind::Manifest => Cacheable::Tag { tag: t.clone() },
        _ => Cacheable::Bypass,
    }
}

/// The store's keys, per upstream: a URL on the proxy's own origin (the Cache API keeps
/// objects of the zone the Worker serves), under a path no registry request can have (the
/// API lives under `/v2/`).
pub struct Keys<'a> {
    pub origin: &'a str,
    /// The upstream's base URL (`https://registry-1.docker.io`).
    pub upstream: &'a str,
}

impl Keys<'_> {
    fn upstream_host(&self) -> &str {
        self.upstream
            .split_once("://")
            .map_or(self.upstream, |(_, rest)| rest)
    }

    fn prefix(&self) -> String {
        format!(
            "{}/.registry-proxy/cache/v1/{}",
            self.origin,
            self.upstream_host()
        )
    }

    /// The bytes of a digest, shared by every repository of the upstream: who may read them
    /// is the upstream's answer to each request, never the key.
    pub fn content(&self, kind: Kind, digest: &str) -> String {
        format!("{}/{}/{digest}", self.prefix(), kind.segment())
    }

    /// The name of a digest's bytes in the R2 bucket: per upstream, not per proxy origin (a
    /// bucket is shared by every host and data center of the deployment).
    pub fn object(&self, kind: Kind, digest: &str) -> String {
        format!(
            "registry-proxy/v1/{}/{}/{digest}",
            self.upstream_host(),
            kind.segment()
        )
    }

    /// The record that a tag of a repository was pulled through the proxy (its last digest):
    /// only then is a `HEAD` worth its round trip before the `GET`.
    pub fn tag(&self, repository: &str, tag: &str) -> String {
        format!("{}/tags/{repository}/{tag}", self.prefix())
    }
}

/// The upstream's answer to the confirming `HEAD`: whether the client may read the digest in
/// this repository. A redirect counts (registries redirect blobs to storage only after
/// checking the repository); anything else (401, 403, 404, 5xx, 429) is not a yes, and the
/// request goes upstream as if nothing were stored, for the upstream's own answer.
pub fn confirms(status: u16) -> bool {
    matches!(status, 200 | 301 | 302 | 303 | 307 | 308)
}

/// The digest a confirming `HEAD` of a tag names (`Docker-Content-Digest`), if the proxy can
/// keep it.
pub fn confirmed_digest(header: Option<&str>) -> Option<&str> {
    header.map(str::trim).filter(|d| keepable_digest(d))
}

/// The answer header and log field that say where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// From the store, after the upstream's `HEAD`.
    Hit,
    /// From the upstream, and being kept.
    Miss,
    /// From the upstream, not kept (see `Cacheable::Bypass`, `keep`).
    Bypass,
    /// From the store while the upstream could not answer (`CACHE_STALE_SECONDS`).
    Stale,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Hit => "HIT",
            Verdict::Miss => "MISS",
            Verdict::Bypass => "BYPASS",
            Verdict::Stale => "STALE",
        }
    }
}

/// Where a kept answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The Cache API of the data center.
    CacheApi,
    /// The operator's R2 bucket (`CACHE_BUCKET`): persistent, shared by every data center.
    Bucket,
}

impl Place {
    /// Its name in the store's log lines.
    pub fn name(self) -> &'static str {
        match self {
            Place::CacheApi => "cache",
            Place::Bucket => "bucket",
        }
    }
}

/// `CACHE_BUCKET_MIN_BYTES`: blobs of at least this many bytes go to the R2 bucket when one is
/// bound (unset: only those the Cache API cannot keep, over 512 MB; 0: every blob).
pub fn parse_bucket_min(raw: Option<&str>) -> Result<u64, ProxyError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(CACHE_API_MAX_BYTES + 1);
    };
    match raw.parse::<u64>() {
        Ok(n) if n <= CACHE_API_MAX_BYTES => Ok(n),
        _ => Err(ProxyError::Config {
            var: "CACHE_BUCKET_MIN_BYTES",
            reason: format!(
                "{raw:?} is not a whole number of bytes from 0 to {CACHE_API_MAX_BYTES} (the Cache API's limit)"
            ),
        }),
    }
}

/// Whether an R2 bucket is bound, or why the configuration is wrong.
pub fn bucket_bound(binding: Binding) -> Result<bool, ProxyError> {
    match binding {
        Binding::Absent => Ok(false),
        Binding::Bound => Ok(true),
        Binding::Text => Err(ProxyError::Config {
            var: "CACHE_BUCKET",
            reason: "is a var, not an R2 bucket: bind one under this name ([[r2_buckets]] binding = \"CACHE_BUCKET\")".into(),
        }),
    }
}

/// Whether an upstream answer of this status and length is kept, and where, or why not.
/// `bucket` is the size from which blobs go to the bound R2 bucket (`None`: none is bound).
pub fn keep(
    status: u16,
    length: Option<u64>,
    kind: Kind,
    bucket: Option<u64>,
) -> Result<Place, &'static str> {
    if status != 200 {
        return Err("not a 200");
    }
    let Some(n) = length else {
        return Err("no Content-Length");
    };
    match bucket {
        Some(min) if kind == Kind::Blob && n >= min.min(CACHE_API_MAX_BYTES + 1) => {
            Ok(Place::Bucket)
        }
        _ if n > CACHE_API_MAX_BYTES && kind == Kind::Blob => Err(
            "larger than the Cache API keeps (an R2 bucket bound as CACHE_BUCKET would keep it)",
        ),
        _ if n > CACHE_API_MAX_BYTES => Err("larger than the Cache API keeps"),
        _ => Ok(Place::CacheApi),
    }
}

/// The one byte range of a `Range` header the bucket is asked for; `None` for none, several
/// or one this proxy does not parse, which are answered with the whole blob (RFC 9110 lets a
/// server ignore `Range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// From `offset`, `length` bytes or to the end.
    From { offset: u64, length: Option<u64> },
    /// The last this many bytes.
    Suffix(u64),
}

pub fn byte_range(header: Option<&str>) -> Option<ByteRange> {
    let header = header?.trim();
    let (unit, spec) = header.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (first, last) {
        ("", n) => number(n).filter(|&n| n > 0).map(ByteRange::Suffix),
        (a, "") => number(a).map(|offset| ByteRange::From {
            offset,
            length: None,
        }),
        (a, b) => {
            let (a, b) = (number(a)?, number(b)?);
            (b >= a).then(|| ByteRange::From {
                offset: a,
                length: Some(b - a + 1),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::plan::{plan, Plan};
    use url::Url;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn config() -> Config {
        Config::from_vars(|name| match name {
            "ROUTES" => Some(r#"{"docker.example.com":{"upstream":"https://registry-1.docker.io","docker_hub":true}}"#.into()),
            _ => None,
        })
        .unwrap()
    }

    fn decide(mode: CacheMode, method: &str, path: &str) -> Cacheable {
        let config = config();
        let url = Url::parse(&format!("https://docker.example.com{path}")).unwrap();
        match plan(&config, method, &url, false).unwrap() {
            Plan::Upstream(f) => cacheable(mode, &f),
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn blobs_and_manifests_by_sha256_digest_are_kept() {
        let blob = format!("/v2/library/busybox/blobs/{D}");
        assert_eq!(
            decide(CacheMode::Edge, "GET", &blob),
            Cacheable::Digest {
                kind: Kind::Blob,
                digest: D.into()
            }
        );
        let manifest = format!("/v2/library/busybox/manifests/{D}");
        assert_eq!(
            decide(CacheMode::Edge, "GET", &manifest),
            Cacheable::Digest {
                kind: Kind::Manifest,
                digest: D.into()
            }
        );
    }

    #[test]
    fn a_manifest_by_tag_is_kept_by_its_digest() {
        assert_eq!(
            decide(CacheMode::Edge, "GET", "/v2/library/busybox/manifests/1.36"),
            Cacheable::Tag { tag: "1.36".into() }
        );
    }

    #[test]
    fn heads_writes_lists_other_digests_and_the_cache_off_bypass() {
        let blob = format!("/v2/library/busybox/blobs/{D}");
        let sha512 = format!("/v2/library/busybox/blobs/sha512:{}", "a".repeat(128));
        for (mode, method, path) in [
            (CacheMode::Edge, "HEAD", blob.as_str()),
            (CacheMode::Edge, "DELETE", blob.as_str()),
            (
                CacheMode::Edge,
                "HEAD",
                "/v2/library/busybox/manifests/latest",
            ),
            (
                CacheMode::Edge,
                "PUT",
                "/v2/library/busybox/manifests/latest",
            ),
            (CacheMode::Edge, "GET", "/v2/library/busybox/tags/list"),
            (CacheMode::Edge, "GET", "/v2/_catalog"),
            (CacheMode::Off, "GET", "/v2/"),
            (CacheMode::Edge, "GET", sha512.as_str()),
            (CacheMode::Off, "GET", blob.as_str()),
            (
                CacheMode::Off,
                "GET",
                "/v2/library/busybox/manifests/latest",
            ),
        ] {
            assert_eq!(
                decide(mode, method, path),
                Cacheable::Bypass,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn the_version_check_may_be_answered_from_memory() {
        assert_eq!(
            decide(CacheMode::Edge, "GET", "/v2/"),
            Cacheable::VersionCheck
        );
        // the version check is a GET upstream whatever the client's method
        assert_eq!(
            decide(CacheMode::Edge, "HEAD", "/v2/"),
            Cacheable::VersionCheck
        );
    }

    #[test]
    fn keys_are_per_upstream_and_kind_and_outside_the_api() {
        let keys = Keys {
            origin: "https://docker.example.com",
            upstream: "https://registry-1.docker.io",
        };
        assert_eq!(
            keys.content(Kind::Blob, D),
            format!("https://docker.example.com/.registry-proxy/cache/v1/registry-1.docker.io/blobs/{D}")
        );
        assert_ne!(keys.content(Kind::Blob, D), keys.content(Kind::Manifest, D));
        let other = Keys {
            origin: "https://docker.example.com",
            upstream: "http://127.0.0.1:5000",
        };
        assert_ne!(keys.content(Kind::Blob, D), other.content(Kind::Blob, D));
        assert!(other
            .content(Kind::Blob, D)
            .contains("/127.0.0.1:5000/blobs/"));
        assert_eq!(
            keys.object(Kind::Blob, D),
            format!("registry-proxy/v1/registry-1.docker.io/blobs/{D}")
        );
        assert_ne!(keys.object(Kind::Blob, D), other.object(Kind::Blob, D));
        assert_eq!(
            keys.tag("library/busybox", "latest"),
            "https://docker.example.com/.registry-proxy/cache/v1/registry-1.docker.io/tags/library/busybox/latest"
        );
    }

    #[test]
    fn only_a_yes_or_a_redirect_of_the_upstream_confirms() {
        for s in [200, 307, 302] {
            assert!(confirms(s), "{s}");
        }
        for s in [401, 403, 404, 429, 500, 502, 503, 206, 204] {
            assert!(!confirms(s), "{s}");
        }
    }

    #[test]
    fn a_tag_is_kept_only_by_a_digest_the_proxy_can_check() {
        assert_eq!(confirmed_digest(Some(D)), Some(D));
        assert_eq!(confirmed_digest(Some(&format!(" {D} "))), Some(D));
        assert_eq!(confirmed_digest(None), None);
        assert_eq!(confirmed_digest(Some("sha256:ABC")), None);
        assert_eq!(
            confirmed_digest(Some(&format!("sha512:{}", "a".repeat(128)))),
            None
        );
        assert!(!keepable_digest(&D.to_uppercase()));
        assert!(!keepable_digest(&D[..70]));
    }

    #[test]
    fn only_whole_200s_within_the_limit_are_kept() {
        let (b, m) = (Kind::Blob, Kind::Manifest);
        assert_eq!(keep(200, Some(10), b, None), Ok(Place::CacheApi));
        assert_eq!(
            keep(200, Some(CACHE_API_MAX_BYTES), b, None),
            Ok(Place::CacheApi)
        );
        let e = keep(200, Some(CACHE_API_MAX_BYTES + 1), b, None).unwrap_err();
        assert!(e.contains("CACHE_BUCKET"), "{e}");
        assert!(keep(200, Some(CACHE_API_MAX_BYTES + 1), m, None).is_err());
        assert!(keep(200, None, b, None).is_err());
        assert!(keep(206, Some(10), b, None).is_err());
        assert!(keep(404, Some(10), b, None).is_err());
    }

    #[test]
    fn blobs_from_the_bucket_size_go_to_the_bucket_and_manifests_never() {
        let (b, m) = (Kind::Blob, Kind::Manifest);
        // bound, the default size: what the Cache API cannot keep
        let default = Some(CACHE_API_MAX_BYTES + 1);
        assert_eq!(
            keep(200, Some(CACHE_API_MAX_BYTES), b, default),
            Ok(Place::CacheApi)
        );
        assert_eq!(keep(200, Some(1 << 30), b, default), Ok(Place::Bucket));
        assert_eq!(keep(200, Some(50 << 30), b, default), Ok(Place::Bucket));
        assert!(keep(200, Some(1 << 30), m, default).is_err());
        // a lower size moves smaller blobs there too
        assert_eq!(keep(200, Some(999), b, Some(1000)), Ok(Place::CacheApi));
        assert_eq!(keep(200, Some(1000), b, Some(1000)), Ok(Place::Bucket));
        assert_eq!(keep(200, Some(0), b, Some(0)), Ok(Place::Bucket));
        assert_eq!(keep(200, Some(1000), m, Some(0)), Ok(Place::CacheApi));
        // a size above the Cache API's limit still takes what the Cache API cannot
        assert_eq!(
            keep(200, Some(CACHE_API_MAX_BYTES + 1), b, Some(u64::MAX)),
            Ok(Place::Bucket)
        );
        assert!(keep(206, Some(1 << 30), b, default).is_err());
    }

    #[test]
    fn the_bucket_size_var_is_bytes_up_to_the_cache_api_limit() {
        assert_eq!(parse_bucket_min(None), Ok(CACHE_API_MAX_BYTES + 1));
        assert_eq!(parse_bucket_min(Some("")), Ok(CACHE_API_MAX_BYTES + 1));
        assert_eq!(parse_bucket_min(Some(" 0 ")), Ok(0));
        assert_eq!(parse_bucket_min(Some("104857600")), Ok(100 << 20));
        for bad in ["-1", "100MB", "512000001", "1e6"] {
            let e = parse_bucket_min(Some(bad)).unwrap_err().to_string();
            assert!(
                e.contains("CACHE_BUCKET_MIN_BYTES") && e.contains(bad),
                "{e}"
            );
        }
    }

    #[test]
    fn the_bucket_must_be_a_binding() {
        assert_eq!(bucket_bound(Binding::Absent), Ok(false));
        assert_eq!(bucket_bound(Binding::Bound), Ok(true));
        let e = bucket_bound(Binding::Text).unwrap_err().to_string();
        assert!(
            e.contains("CACHE_BUCKET") && e.contains("r2_buckets"),
            "{e}"
        );
    }

    #[test]
    fn one_byte_range_is_parsed_and_anything_else_is_the_whole() {
        let from = |offset, length| Some(ByteRange::From { offset, length });
        assert_eq!(byte_range(Some("bytes=0-99")), from(0, Some(100)));
        assert_eq!(byte_range(Some("bytes=5-5")), from(5, Some(1)));
        assert_eq!(byte_range(Some(" Bytes = 100- ")), from(100, None));
        assert_eq!(byte_range(Some("bytes=-500")), Some(ByteRange::Suffix(500)));
        for whole in [
            None,
            Some(""),
            Some("bytes=0-1,4-5"),
            Some("bytes=9-3"),
            Some("bytes=-0"),
            Some("bytes=-"),
            Some("items=0-5"),
            Some("bytes=a-5"),
            Some("bytes=+1-5"),
            Some("bytes=99999999999999999999-"),
            Some("bytes 0-5"),
        ] {
            assert_eq!(byte_range(whole), None, "{whole:?}");
        }
    }

    #[test]
    fn stale_answers_are_off_unless_given_an_age() {
        assert_eq!(parse_stale(None), Ok(None));
        assert_eq!(parse_stale(Some(" ")), Ok(None));
        assert_eq!(parse_stale(Some("3600")), Ok(Some(3600)));
        for bad in ["0", "-5", "1h", "99999999"] {
            let e = parse_stale(Some(bad)).unwrap_err().to_string();
            assert!(e.contains("CACHE_STALE_SECONDS") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn only_an_upstream_that_cannot_answer_lets_a_stale_answer_stand() {
        for s in [500, 502, 503, 504, 429] {
            assert!(unavailable(s), "{s}");
        }
        for s in [200, 307, 401, 403, 404] {
            assert!(!unavailable(s), "{s}");
        }
    }

    #[test]
    fn tag_records_carry_the_digest_and_its_time() {
        let r = tag_record(D, 1_700_000_000_123.0);
        assert_eq!(parse_tag_record(&r), Some((D, 1_700_000_000_123.0)));
        assert_eq!(parse_tag_record(D), None);
        assert_eq!(parse_tag_record("sha256:abc 5"), None);
        assert_eq!(parse_tag_record(&format!("{D} soon")), None);
    }

    #[test]
    fn the_cache_var_is_on_or_off() {
        assert_eq!(CacheMode::parse(None), Ok(CacheMode::Edge));
        assert_eq!(CacheMode::parse(Some(" ON ")), Ok(CacheMode::Edge));
        assert_eq!(CacheMode::parse(Some("off")), Ok(CacheMode::Off));
        let e = CacheMode::parse(Some("r2")).unwrap_err().to_string();
        assert!(e.contains("CACHE") && e.contains("\"r2\""), "{e}");
    }
}
