//! The cache phase's decisions: what may be kept, under which key, and when a kept answer may
//! be served. Content is kept by digest only (it never changes), and served for a repository
//! only after the upstream has accepted the client for that repository and digest in the same
//! request (a `HEAD` with the client's credentials): the upstream decides who may read, the
//! cache only saves the bytes. The reasoning and the threat model: docs/architecture.md.

use crate::cache_settings::{CacheMode, Limits, CACHE_API_MAX_BYTES, VERIFY_MAX_DEFAULT};
use crate::classify::{Access, Resource};
use crate::credentials::Credentials;
use crate::log::Verdict;
use crate::plan::{Forward, Reference};

/// The CPU the Worker spends on a MiB it keeps in the Cache API (its second `GET`, the hash,
/// the put), as measured in workerd (`npm run bench`): what a store line says a larger answer
/// would have cost.
pub const VERIFY_MS_PER_MIB: f64 = 2.0;

/// A manifest is kept by reading it whole from a native `tee()` of the client's copy, which
/// buffers at most its size for the slower branch: up to `CACHE_VERIFY_MAX_BYTES` and never
/// more than this, distribution's limit for a manifest.
pub const MANIFEST_MAX_BYTES: u64 = 4 << 20;

/// The header a kept answer carries its length in (the store's own `Content-Length` may
/// describe a body cut short; store.js writes it).
pub const KEPT_LENGTH: &str = "x-registry-proxy-length";

/// Whether an upstream's answer to the confirming `HEAD` says it cannot answer now (and not
/// that the client may not read): only then may a stale answer stand in for it.
pub fn unavailable(status: u16) -> bool {
    status >= 500 || status == 429
}

/// A tag's record: the digest its manifest had and when the upstream last said so.
pub fn tag_record(digest: &str, at_ms: f64) -> String {
    format!("{digest} {}", at_ms.max(0.0) as u64)
}

/// The record that anyone may read a repository (the upstream said yes to an anonymous
/// client), and when it last did: what lets any isolate serve its kept tags and blobs to
/// anonymous clients while the upstream cannot answer (`public_stands`).
pub fn public_record(at_ms: f64) -> String {
    format!("public {}", at_ms.max(0.0) as u64)
}

/// Whether a repository's public record lets a stale answer stand for an anonymous client:
/// stale answers are on and the upstream's yes to anonymous clients is no older than they
/// may be.
pub fn public_stands(record: Option<&str>, now: f64, stale_ms: f64) -> bool {
    let at = record
        .and_then(|r| r.trim().strip_prefix("public "))
        .and_then(|at| at.parse::<u64>().ok());
    match at {
        Some(at) => stale_ms > 0.0 && now - at as f64 <= stale_ms,
        None => false,
    }
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
        return if f.is_version_check() {
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

    /// The record that anyone may read a repository (`public_record`), beside its tags'.
    pub fn public(&self, repository: &str) -> String {
        format!("{}/public/{repository}", self.prefix())
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

/// What the upstream said to the confirming `HEAD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// It answered with this status.
    Status(u16),
    /// It could not be reached, or did not answer within the time to response headers.
    Unavailable,
    /// Any other failure of the request (a bad redirect, the proxy's own).
    Failed,
}

impl Heard {
    /// The upstream cannot answer now (unreachable, out of time, 5xx, 429), as opposed to
    /// refusing the client (401, 403, 404 are its answer): only then may a stale answer stand
    /// in for it.
    pub fn cannot_answer(self) -> bool {
        match self {
            Heard::Status(s) => unavailable(s),
            Heard::Unavailable => true,
            Heard::Failed => false,
        }
    }
}

/// What becomes of a request for a kept digest once the upstream was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// The kept answer, as `Hit` or `Stale`.
    Serve(Verdict),
    /// The upstream's 401, answered with the proxy's challenge (one upstream request less per
    /// client that asks before it has a token).
    Challenge,
    /// Upstream as if nothing were kept, for the upstream's own answer.
    Upstream,
    /// The upstream's failure, as the proxy's error.
    Fail,
}

/// A kept digest: served on the upstream's yes; while the upstream cannot answer, as stale if
/// `stale_stands` (see `stale_stands`); else the upstream's own answer.
pub fn for_digest(heard: Heard, stale_stands: bool) -> Then {
    match heard {
        Heard::Status(s) if confirms(s) => Then::Serve(Verdict::Hit),
        h if h.cannot_answer() && stale_stands => Then::Serve(Verdict::Stale),
        Heard::Status(401) => Then::Challenge,
        Heard::Status(_) => Then::Upstream,
        Heard::Unavailable | Heard::Failed => Then::Fail,
    }
}

/// What becomes of a tag pulled here before, once the upstream was asked (`HEAD` by tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForTag<'a> {
    /// The digest the upstream just named: its manifest from the store (HIT), else fetched and
    /// kept (MISS).
    ByDigest(&'a str),
    /// The record's digest, from the store as STALE (if it is not kept: `for_tag` again
    /// without it).
    Stale(&'a str),
    Challenge,
    Upstream,
    Fail,
}

/// A tag: `named` is the `Docker-Content-Digest` of the upstream's answer (if keepable),
/// `stale` the record's digest if it may stand in (`stale_tag`).
pub fn for_tag<'a>(heard: Heard, named: Option<&'a str>, stale: Option<&'a str>) -> ForTag<'a> {
    if let (true, Some(d)) = (heard.cannot_answer(), stale) {
        return ForTag::Stale(d);
    }
    match heard {
        Heard::Status(200) => named.map_or(ForTag::Upstream, ForTag::ByDigest),
        Heard::Status(401) => ForTag::Challenge,
        Heard::Status(_) => ForTag::Upstream,
        Heard::Unavailable | Heard::Failed => ForTag::Fail,
    }
}

/// `CACHE_STALE_SECONDS` in ms (0: stale answers are off).
pub fn stale_ms(stale_seconds: Option<u32>) -> f64 {
    stale_seconds.map_or(0.0, |s| f64::from(s) * 1000.0)
}

/// Whether a stale answer may stand in for the upstream's: the operator allows them
/// (`stale_ms` > 0) and `vouched(ms)` says the upstream's last yes to these credentials for the
/// repository, and to the digest being there, is no older than that.
pub fn stale_stands(stale_ms: f64, vouched: impl FnOnce(f64) -> bool) -> bool {
    stale_ms > 0.0 && vouched(stale_ms)
}

/// The digest of a tag's record that may stand in for the upstream's answer: the record is no
/// older than the stale age at `now`, and `stale_stands` for its digest.
pub fn stale_tag(
    record: &str,
    now: f64,
    stale_ms: f64,
    vouched: impl FnOnce(&str, f64) -> bool,
) -> Option<&str> {
    let (digest, at) = parse_tag_record(record)?;
    (now - at <= stale_ms && stale_stands(stale_ms, |ms| vouched(digest, ms))).then_some(digest)
}

/// Whose yes the upstream gave, the key of the isolate's memory of it: the `Authorization`
/// as it went upstream (none: anonymous), or the proxy itself for its users (their access was
/// decided by users.rs).
pub fn yes_of(credentials: Credentials, authorization: Option<&str>) -> Option<&str> {
    match credentials {
        Credentials::Proxy => Some("proxy"),
        c => authorization.filter(|a| c.keeps_authorization(a)),
    }
}

/// The length a kept answer goes to the client with, or `None` if it has none to trust (it is
/// then not served): the length it was kept with, or for a 206 its range's, which must be of
/// that length. A store may keep a body whose stream ended early as if it were complete, and
/// a short one must fail the client's transfer, not look whole.
pub fn served_length(kept: Option<&str>, content_range: Option<&str>) -> Option<u64> {
    let total = kept?.trim().parse::<u64>().ok()?;
    let Some(range) = content_range else {
        return Some(total);
    };
    // bytes FIRST-LAST/TOTAL
    let (span, of) = range.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let (first, last) = (first.parse::<u64>().ok()?, last.parse::<u64>().ok()?);
    (of.parse::<u64>().ok()? == total && last >= first && last < total).then(|| last - first + 1)
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

/// How an answer gets into the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Read whole from a native `tee()` of the client's copy, hashed, then put: manifests
    /// (Docker Hub counts every manifest `GET` as a pull, so one is never asked twice), at most
    /// `MANIFEST_MAX_BYTES`.
    Tee,
    /// A second `GET` of the answer's final URL (after the upstream's redirects, so the
    /// registry is not asked twice), started at once and run in `waitUntil` into the store:
    /// the client's copy is the upstream's body untouched, and no store paces it. Blobs into
    /// the bucket (native end to end: R2 checks the digest), and blobs of at most
    /// `HASH_BESIDE_MAX` into the Cache API (read whole, hashed, then put).
    Refetch,
    /// The same, started once the client's copy has ended: a blob the Worker hashes that is
    /// larger than `HASH_BESIDE_MAX` (streamed into the Cache API through a hash), so that
    /// hashing it never takes the isolate's thread from the client's copy (which is watched
    /// through a native pipe for it: ~0.3 ms per MiB, next to the hash's ~2).
    RefetchAfter,
}

/// The largest blob hashed while its client's copy runs, read whole (`Fill::Refetch`); a larger
/// one waits for it and is streamed.
pub const HASH_BESIDE_MAX: u64 = VERIFY_MAX_DEFAULT;

/// Where and how an answer is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keeping {
    pub place: Place,
    pub fill: Fill,
}

/// Why an answer is not kept: the store line's `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotKept {
    Status,
    NoLength,
    NoDigest,
    /// Over the Cache API's 512 MB, with no bucket to take it.
    OverCacheApi {
        kind: Kind,
    },
    /// Keeping it in the Cache API would cost the Worker more CPU than the operator allows:
    /// `bucket` says whether a bucket is bound (its `CACHE_BUCKET_MIN_BYTES` leaves a gap).
    Unverified {
        kind: Kind,
        bytes: u64,
        max: u64,
        bucket: bool,
    },
    /// A fallback's blob that only a streamed keep after its client copy could check: that copy
    /// is already checked on its way (failover.rs), and cannot also be watched for its end.
    FallbackStreamed,
    /// Being kept by another request of this isolate already.
    Twice,
    /// Too much being kept at once in this isolate.
    Busy,
    /// What the store or the second fetch said.
    Failed(String),
}

impl std::fmt::Display for NotKept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        match self {
            NotKept::Status => f.write_str("not a 200"),
            NotKept::NoLength => f.write_str("no Content-Length"),
            NotKept::NoDigest => f.write_str("no sha256 Docker-Content-Digest to check it by"),
            NotKept::OverCacheApi { kind: Kind::Blob } => f.write_str(
                "larger than the Cache API keeps (an R2 bucket bound as CACHE_BUCKET would keep it)",
            ),
            NotKept::OverCacheApi { kind: Kind::Manifest } => {
                f.write_str("larger than a manifest is kept")
            }
            NotKept::Unverified {
                kind,
                bytes,
                max,
                bucket,
            } => {
                write!(
                    f,
                    "{:.1} MiB: hashing it to keep it in the Cache API would cost the Worker about {:.0} ms of CPU, over CACHE_VERIFY_MAX_BYTES ({max}); ",
                    mib(*bytes),
                    mib(*bytes) * VERIFY_MS_PER_MIB,
                )?;
                match (kind, bucket) {
                    (Kind::Manifest, _) => f.write_str("raise it to keep such manifests"),
                    (Kind::Blob, true) => write!(f, "set CACHE_BUCKET_MIN_BYTES to at most {bytes} to keep it in the R2 bucket, which checks digests itself"),
                    (Kind::Blob, false) => f.write_str("bind an R2 bucket as CACHE_BUCKET (it checks digests itself), or raise CACHE_VERIFY_MAX_BYTES on the paid plan"),
                }
            }
            NotKept::FallbackStreamed => f.write_str(
                "a fallback's blob over CACHE_VERIFY_MAX_BYTES: kept from the route's own upstream only, or in an R2 bucket",
            ),
            NotKept::Twice => f.write_str("being kept by another request"),
            NotKept::Busy => f.write_str("too much being kept at once"),
            NotKept::Failed(why) => f.write_str(why),
        }
    }
}

/// How a fallback's answer is kept (`keep`'s decision for it): alike, but never by a streamed
/// second `GET` after the client's copy, which is checked on its way already.
pub fn keep_from_fallback(how: Result<Keeping, NotKept>) -> Result<Keeping, NotKept> {
    match how {
        Ok(Keeping {
            fill: Fill::RefetchAfter,
            ..
        }) => Err(NotKept::FallbackStreamed),
        how => how,
    }
}

/// Whether an upstream answer of this status and length is kept, where and how, or why not.
/// `bucket`: whether an R2 bucket is bound.
pub fn keep(
    status: u16,
    length: Option<u64>,
    kind: Kind,
    limits: Limits,
    bucket: bool,
) -> Result<Keeping, NotKept> {
    if status != 200 {
        return Err(NotKept::Status);
    }
    let n = length.ok_or(NotKept::NoLength)?;
    if kind == Kind::Manifest {
        return if n > MANIFEST_MAX_BYTES {
            Err(NotKept::OverCacheApi { kind })
        } else if n > limits.verify_max {
            Err(NotKept::Unverified {
                kind,
                bytes: n,
                max: limits.verify_max,
                bucket: false,
            })
        } else {
            Ok(Keeping {
                place: Place::CacheApi,
                fill: Fill::Tee,
            })
        };
    }
    if bucket && n >= limits.bucket_from().min(CACHE_API_MAX_BYTES + 1) {
        return Ok(Keeping {
            place: Place::Bucket,
            fill: Fill::Refetch,
        });
    }
    if n > CACHE_API_MAX_BYTES {
        return Err(NotKept::OverCacheApi { kind });
    }
    if n > limits.verify_max {
        return Err(NotKept::Unverified {
            kind,
            bytes: n,
            max: limits.verify_max,
            bucket,
        });
    }
    Ok(Keeping {
        place: Place::CacheApi,
        fill: if n > HASH_BESIDE_MAX {
            Fill::RefetchAfter
        } else {
            Fill::Refetch
        },
    })
}

/// What an isolate is keeping at once. Keeping holds memory only in whole reads (the answer's
/// size) and a window per streamed refetch, so this bounds it to a few MiB of an isolate's
/// 128 MB; and one key is never kept twice at once (of concurrent cold pulls of a layer, the
/// first is kept, the others pass through). A keep that never said it ended (its `waitUntil`
/// was cancelled) gives its room back after `IN_FLIGHT_MS`.
#[derive(Debug, Default)]
pub struct InFlight {
    /// Key, how, length, since (ms).
    keeps: Vec<(String, Keeping, u64, f64)>,
}

/// The answers read whole at once in an isolate, together.
pub const WHOLE_TOGETHER: u64 = 48 << 20;
/// The second `GET`s at once in an isolate.
pub const REFETCHES_TOGETHER: usize = 6;
/// How long a keep holds its room at most: longer than any `waitUntil` may run after its
/// response (30 s) plus the slowest client's copy the Worker waits for.
pub const IN_FLIGHT_MS: f64 = 60.0 * 60.0 * 1000.0;

impl InFlight {
    /// Room at `now` for keeping `length` bytes under `key` this way, or why not.
    pub fn admit(&mut self, key: &str, how: Keeping, length: u64, now: f64) -> Result<(), NotKept> {
        self.keeps
            .retain(|(_, _, _, since)| now - since < IN_FLIGHT_MS);
        if self.keeps.iter().any(|(k, ..)| k == key) {
            return Err(NotKept::Twice);
        }
        let busy = match how.fill {
            Fill::Tee => {
                let whole: u64 = self
                    .keeps
                    .iter()
                    .filter(|(_, h, ..)| h.fill == Fill::Tee)
                    .map(|(_, _, n, _)| n)
                    .sum();
                whole + length > WHOLE_TOGETHER
            }
            Fill::Refetch | Fill::RefetchAfter => {
                self.keeps
                    .iter()
                    .filter(|(_, h, ..)| h.fill != Fill::Tee)
                    .count()
                    >= REFETCHES_TOGETHER
            }
        };
        if busy {
            return Err(NotKept::Busy);
        }
        self.keeps.push((key.to_string(), how, length, now));
        Ok(())
    }

    /// The keep of `key` is over (kept or not).
    pub fn release(&mut self, key: &str) {
        self.keeps.retain(|(k, ..)| k != key);
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
        crate::testing::config(&[(
            "ROUTES",
            r#"{"docker.example.com":{"upstream":"https://registry-1.docker.io","docker_hub":true}}"#,
        )])
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
    fn a_fallback_s_answer_is_kept_alike_but_never_by_a_streamed_second_get() {
        let at = |place, fill| Ok(Keeping { place, fill });
        for how in [
            at(Place::CacheApi, Fill::Tee),
            at(Place::CacheApi, Fill::Refetch),
            at(Place::Bucket, Fill::Refetch),
        ] {
            assert_eq!(keep_from_fallback(how.clone()), how);
        }
        let streamed = keep_from_fallback(at(Place::CacheApi, Fill::RefetchAfter)).unwrap_err();
        assert_eq!(streamed, NotKept::FallbackStreamed);
        assert!(streamed.to_string().contains("fallback"), "{streamed}");
        assert_eq!(keep_from_fallback(Err(NotKept::Busy)), Err(NotKept::Busy));
    }

    #[test]
    fn a_public_record_lets_stale_answers_stand_for_anonymous_clients_while_fresh() {
        let hour = 3_600_000.0;
        let at = 1_000_000.0;
        let record = public_record(at);
        assert!(public_stands(Some(&record), at + hour, hour));
        assert!(!public_stands(Some(&record), at + hour + 1.0, hour));
        // stale answers off, no record, or a record of something else
        assert!(!public_stands(Some(&record), at, 0.0));
        assert!(!public_stands(None, at, hour));
        assert!(!public_stands(
            Some(&tag_record(&format!("sha256:{}", "a".repeat(64)), at)),
            at,
            hour
        ));
        assert!(!public_stands(Some("public soon"), at, hour));
        // beside the tags, per repository
        let keys = Keys {
            origin: "https://docker.example.com",
            upstream: "https://registry-1.docker.io",
        };
        let public = keys.public("library/busybox");
        assert!(
            public.ends_with("/registry-1.docker.io/public/library/busybox"),
            "{public}"
        );
        assert_ne!(public, keys.tag("library/busybox", "public"));
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

    fn limits(verify_max: u64, bucket_min: Option<u64>) -> Limits {
        Limits {
            verify_max,
            bucket_min,
        }
    }

    const CACHE: Keeping = Keeping {
        place: Place::CacheApi,
        fill: Fill::Refetch,
    };
    const BUCKET: Keeping = Keeping {
        place: Place::Bucket,
        fill: Fill::Refetch,
    };
    const TEE: Keeping = Keeping {
        place: Place::CacheApi,
        fill: Fill::Tee,
    };

    const AFTER: Keeping = Keeping {
        place: Place::CacheApi,
        fill: Fill::RefetchAfter,
    };

    #[test]
    fn by_default_only_what_the_worker_can_hash_cheaply_is_kept_in_the_cache_api() {
        let (b, m, d) = (Kind::Blob, Kind::Manifest, Limits::default());
        assert_eq!(keep(200, Some(10), b, d, false), Ok(CACHE));
        assert_eq!(keep(200, Some(VERIFY_MAX_DEFAULT), b, d, false), Ok(CACHE));
        // a larger blob passes, the reason saying what it would cost and what to set
        let e = keep(200, Some(200 << 20), b, d, false).unwrap_err();
        assert_eq!(
            e,
            NotKept::Unverified {
                kind: b,
                bytes: 200 << 20,
                max: VERIFY_MAX_DEFAULT,
                bucket: false
            }
        );
        let why = e.to_string();
        for needle in [
            "200.0 MiB",
            "400 ms",
            "CACHE_BUCKET",
            "CACHE_VERIFY_MAX_BYTES",
        ] {
            assert!(why.contains(needle), "{needle}: {why}");
        }
        // manifests are read whole from a tee, never asked twice, within the same limit
        assert_eq!(keep(200, Some(5000), m, d, false), Ok(TEE));
        assert_eq!(keep(200, Some(VERIFY_MAX_DEFAULT), m, d, false), Ok(TEE));
        let e = keep(200, Some(VERIFY_MAX_DEFAULT + 1), m, d, false).unwrap_err();
        assert!(!e.to_string().contains("CACHE_BUCKET"), "{e}");
        assert_eq!(keep(200, None, b, d, false), Err(NotKept::NoLength));
        assert_eq!(keep(206, Some(10), b, d, false), Err(NotKept::Status));
        assert_eq!(keep(404, Some(10), m, d, false), Err(NotKept::Status));
    }

    #[test]
    fn the_operator_may_let_the_worker_hash_more_up_to_the_cache_api_limit() {
        let (b, m) = (Kind::Blob, Kind::Manifest);
        let paid = limits(CACHE_API_MAX_BYTES, None);
        // a large one is hashed once the client's copy has ended
        assert_eq!(keep(200, Some(200 << 20), b, paid, false), Ok(AFTER));
        assert_eq!(
            keep(200, Some(HASH_BESIDE_MAX + 1), b, paid, false),
            Ok(AFTER)
        );
        assert_eq!(keep(200, Some(HASH_BESIDE_MAX), b, paid, false), Ok(CACHE));
        assert_eq!(
            keep(200, Some(CACHE_API_MAX_BYTES), b, paid, false),
            Ok(AFTER)
        );
        let e = keep(200, Some(CACHE_API_MAX_BYTES + 1), b, paid, false).unwrap_err();
        assert!(e.to_string().contains("CACHE_BUCKET"), "{e}");
        // a manifest is never read whole past distribution's limit for one
        assert_eq!(keep(200, Some(MANIFEST_MAX_BYTES), m, paid, false), Ok(TEE));
        assert_eq!(
            keep(200, Some(MANIFEST_MAX_BYTES + 1), m, paid, false),
            Err(NotKept::OverCacheApi { kind: m })
        );
        // 0: nothing in the Cache API but what is empty
        assert!(keep(200, Some(1), b, limits(0, None), false).is_err());
        assert!(keep(200, Some(1), m, limits(0, None), false).is_err());
        assert_eq!(keep(200, Some(0), m, limits(0, None), false), Ok(TEE));
    }

    #[test]
    fn with_a_bucket_every_blob_the_cache_api_would_not_keep_goes_there() {
        let (b, m, d) = (Kind::Blob, Kind::Manifest, Limits::default());
        assert_eq!(keep(200, Some(VERIFY_MAX_DEFAULT), b, d, true), Ok(CACHE));
        assert_eq!(
            keep(200, Some(VERIFY_MAX_DEFAULT + 1), b, d, true),
            Ok(BUCKET)
        );
        assert_eq!(keep(200, Some(50 << 30), b, d, true), Ok(BUCKET));
        // manifests never
        assert_eq!(
            keep(200, Some(1000), m, limits(1000, Some(0)), true),
            Ok(TEE)
        );
        // CACHE_BUCKET_MIN_BYTES moves smaller blobs there too
        let low = limits(VERIFY_MAX_DEFAULT, Some(1000));
        assert_eq!(keep(200, Some(999), b, low, true), Ok(CACHE));
        assert_eq!(keep(200, Some(1000), b, low, true), Ok(BUCKET));
        assert_eq!(keep(200, Some(0), b, limits(0, Some(0)), true), Ok(BUCKET));
        // one above the verify size leaves a gap, which the reason names
        let gap = limits(VERIFY_MAX_DEFAULT, Some(100 << 20));
        let e = keep(200, Some(50 << 20), b, gap, true).unwrap_err();
        assert!(e.to_string().contains("CACHE_BUCKET_MIN_BYTES"), "{e}");
        // what the Cache API cannot keep goes to the bucket whatever the size says
        let high = limits(VERIFY_MAX_DEFAULT, Some(CACHE_API_MAX_BYTES));
        assert_eq!(
            keep(200, Some(CACHE_API_MAX_BYTES + 1), b, high, true),
            Ok(BUCKET)
        );
        assert_eq!(keep(206, Some(1 << 30), b, d, true), Err(NotKept::Status));
        // without a bucket the size var changes nothing
        assert!(keep(200, Some(1000 << 20), b, low, false).is_err());
    }

    #[test]
    fn an_isolate_keeps_one_copy_of_a_key_and_a_bounded_amount_at_once() {
        let mut f = InFlight::default();
        let t = 1000.0;
        assert_eq!(f.admit("a", CACHE, 10, t), Ok(()));
        // the same layer pulled twice at once: the second passes through
        assert_eq!(f.admit("a", CACHE, 10, t), Err(NotKept::Twice));
        assert_eq!(f.admit("a", TEE, 10, t), Err(NotKept::Twice));
        f.release("a");
        assert_eq!(f.admit("a", CACHE, 10, t), Ok(()));
        for i in 1..REFETCHES_TOGETHER {
            assert_eq!(f.admit(&format!("r{i}"), BUCKET, 1 << 30, t), Ok(()));
        }
        assert_eq!(f.admit("one more", AFTER, 1, t), Err(NotKept::Busy));
        // whole reads count their bytes
        assert_eq!(f.admit("m1", TEE, WHOLE_TOGETHER - 5, t), Ok(()));
        assert_eq!(f.admit("m2", TEE, 6, t), Err(NotKept::Busy));
        assert_eq!(f.admit("m2", TEE, 5, t), Ok(()));
        f.release("m1");
        assert_eq!(f.admit("m3", TEE, 1000, t), Ok(()));
        f.release("r1");
        assert_eq!(f.admit("one more", CACHE, 1, t), Ok(()));
        // a release of what was never admitted changes nothing
        f.release("nothing");
        assert_eq!(
            f.admit("m4", TEE, WHOLE_TOGETHER - 1005 + 1, t),
            Err(NotKept::Busy)
        );
        assert_eq!(f.admit("m4", TEE, WHOLE_TOGETHER - 1005, t), Ok(()));
        // keeps that never said they ended give their room back in time
        let later = t + IN_FLIGHT_MS;
        assert_eq!(f.admit("a", CACHE, 10, later), Ok(()));
        assert_eq!(f.admit("m5", TEE, WHOLE_TOGETHER, later), Ok(()));
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
    fn only_an_upstream_that_cannot_answer_lets_a_stale_answer_stand() {
        for s in [500, 502, 503, 504, 429] {
            assert!(unavailable(s), "{s}");
            assert!(Heard::Status(s).cannot_answer(), "{s}");
        }
        for s in [200, 307, 401, 403, 404] {
            assert!(!unavailable(s), "{s}");
            assert!(!Heard::Status(s).cannot_answer(), "{s}");
        }
        assert!(Heard::Unavailable.cannot_answer());
        assert!(!Heard::Failed.cannot_answer());
        assert!(!stale_stands(0.0, |_| true));
        assert!(!stale_stands(1000.0, |_| false));
        assert!(stale_stands(1000.0, |ms| ms == 1000.0));
        assert_eq!(stale_ms(None), 0.0);
        assert_eq!(stale_ms(Some(60)), 60_000.0);
    }

    #[test]
    fn a_kept_digest_is_served_on_the_upstream_s_yes_and_else_its_answer_stands() {
        use Then::*;
        for s in [200, 307, 302] {
            assert_eq!(for_digest(Heard::Status(s), false), Serve(Verdict::Hit));
            assert_eq!(for_digest(Heard::Status(s), true), Serve(Verdict::Hit));
        }
        // a refusal is the upstream's answer, stale or not
        assert_eq!(for_digest(Heard::Status(401), true), Challenge);
        for s in [403, 404] {
            assert_eq!(for_digest(Heard::Status(s), true), Upstream, "{s}");
        }
        // it cannot answer: stale only where that may stand
        for h in [Heard::Status(503), Heard::Status(429), Heard::Unavailable] {
            assert_eq!(for_digest(h, true), Serve(Verdict::Stale), "{h:?}");
        }
        assert_eq!(for_digest(Heard::Status(503), false), Upstream);
        assert_eq!(for_digest(Heard::Unavailable, false), Fail);
        assert_eq!(for_digest(Heard::Failed, true), Fail);
    }

    #[test]
    fn a_tag_is_served_by_the_digest_the_upstream_names_or_its_record_while_it_cannot() {
        use ForTag::*;
        let (d, old) = (Some(D), Some("sha256:old"));
        assert_eq!(for_tag(Heard::Status(200), d, old), ByDigest(D));
        // a 200 that names no keepable digest: the GET goes upstream
        assert_eq!(for_tag(Heard::Status(200), None, None), Upstream);
        assert_eq!(for_tag(Heard::Status(401), d, old), Challenge);
        assert_eq!(for_tag(Heard::Status(404), d, old), Upstream);
        for h in [Heard::Status(502), Heard::Status(429), Heard::Unavailable] {
            assert_eq!(for_tag(h, None, old), Stale("sha256:old"), "{h:?}");
        }
        assert_eq!(for_tag(Heard::Status(502), None, None), Upstream);
        assert_eq!(for_tag(Heard::Unavailable, None, None), Fail);
        assert_eq!(for_tag(Heard::Failed, None, old), Fail);
    }

    #[test]
    fn a_tag_record_stands_in_only_young_enough_and_vouched_for() {
        let record = tag_record(D, 10_000.0);
        let yes = |d: &str, ms: f64| d == D && ms == 5000.0;
        assert_eq!(stale_tag(&record, 15_000.0, 5000.0, yes), Some(D));
        assert_eq!(stale_tag(&record, 15_001.0, 5000.0, yes), None);
        assert_eq!(stale_tag(&record, 12_000.0, 5000.0, |_, _| false), None);
        assert_eq!(stale_tag(&record, 12_000.0, 0.0, |_, _| true), None);
        assert_eq!(stale_tag("junk", 12_000.0, 5000.0, |_, _| true), None);
    }

    #[test]
    fn a_yes_is_keyed_by_the_credentials_as_they_went_upstream() {
        let basic = Some("Basic YWxpY2U6eA==");
        let bearer = Some("Bearer t");
        assert_eq!(yes_of(Credentials::Client, basic), basic);
        assert_eq!(yes_of(Credentials::Client, None), None);
        // a password for another registry never went: anonymous
        assert_eq!(yes_of(Credentials::Anonymous, basic), None);
        assert_eq!(yes_of(Credentials::Anonymous, bearer), bearer);
        // proxy users: the proxy's own identity, whatever the client sent
        assert_eq!(yes_of(Credentials::Proxy, bearer), Some("proxy"));
        assert_eq!(yes_of(Credentials::Proxy, None), Some("proxy"));
    }

    #[test]
    fn a_kept_answer_goes_with_the_length_it_was_kept_with() {
        assert_eq!(served_length(Some("1000"), None), Some(1000));
        assert_eq!(
            served_length(Some("1000"), Some("bytes 10-19/1000")),
            Some(10)
        );
        assert_eq!(
            served_length(Some("1000"), Some("bytes 0-999/1000")),
            Some(1000)
        );
        // a range of another length, past the end, or unparsable: not served
        for range in [
            "bytes 10-19/999",
            "bytes 10-1000/1000",
            "bytes 19-10/1000",
            "bytes */1000",
            "items 0-1/1000",
        ] {
            assert_eq!(served_length(Some("1000"), Some(range)), None, "{range}");
        }
        assert_eq!(served_length(None, None), None);
        assert_eq!(served_length(Some("x"), None), None);
    }

    #[test]
    fn tag_records_carry_the_digest_and_its_time() {
        let r = tag_record(D, 1_700_000_000_123.0);
        assert_eq!(parse_tag_record(&r), Some((D, 1_700_000_000_123.0)));
        assert_eq!(parse_tag_record(D), None);
        assert_eq!(parse_tag_record("sha256:abc 5"), None);
        assert_eq!(parse_tag_record(&format!("{D} soon")), None);
    }
}
