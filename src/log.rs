//! One structured JSON line per request, for `wrangler tail` and Workers Logs.
//!
//! Only what is safe to keep is recorded: the path without its query (upload URLs carry state
//! there, token requests carry account names), never a header value. Credentials cannot leak
//! through a field that does not exist.

use serde::Serialize;

/// `LOG_LEVEL`: which requests get a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Off,
    /// Only answers the proxy made because something failed, and upstream 5xx.
    Error,
    /// Every request (the default).
    Info,
    /// Every request, with the size of each answer (`bytes`): reading the answer's headers for
    /// it costs about 0.03 ms of CPU per request, so it is not the default.
    Debug,
}

impl LogLevel {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "off" | "none" => Some(LogLevel::Off),
            "error" => Some(LogLevel::Error),
            "info" => Some(LogLevel::Info),
            "debug" => Some(LogLevel::Debug),
            _ => None,
        }
    }
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

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The upstream's answer was passed on (possibly after following redirects).
    Proxied,
    /// Answered from the store, after the upstream confirmed the client may read it.
    Cached,
    /// An upstream 401 re-issued with the proxy's challenge.
    Challenge,
    /// A token answer from the upstream's realm.
    Token,
    /// A redirect of the proxy's own (Docker Hub `library/`, `/` to `/v2/`).
    Redirect,
    /// The landing page.
    Page,
    /// A search service's answer (`/v1/search`).
    Search,
    /// The upstream's `429`, passed on: its rate limit (Docker Hub's per source address).
    Limited,
    /// The proxy answered with a registry error of its own.
    Error,
}

impl Outcome {
    /// Its name, as the log line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Proxied => "proxied",
            Outcome::Cached => "cached",
            Outcome::Challenge => "challenge",
            Outcome::Token => "token",
            Outcome::Redirect => "redirect",
            Outcome::Page => "page",
            Outcome::Search => "search",
            Outcome::Limited => "limited",
            Outcome::Error => "error",
        }
    }
}

/// The outcome of an upstream answer passed on as it was: its rate limit is one of its own,
/// so that the log shows when and how often it is hit.
pub fn passed_on(status: u16) -> Outcome {
    if status == 429 {
        Outcome::Limited
    } else {
        Outcome::Proxied
    }
}

/// The number of a `RateLimit-Limit` or `RateLimit-Remaining` header (Docker Hub's
/// `100;w=21600`, or a bare `100`): the requests, not the window.
pub fn rate_limit_number(header: Option<&str>) -> Option<u64> {
    let value = header?.trim();
    let digits = value.split([';', ',']).next()?.trim();
    digits.parse().ok()
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestLog<'a> {
    /// ISO 8601, from the runtime's clock.
    pub time: &'a str,
    pub host: &'a str,
    /// The upstream the route table chose, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    /// Status sent to the client.
    pub status: u16,
    /// Status of the last upstream response, if the upstream was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    /// `Content-Length` of the answer (`LOG_LEVEL = "debug"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Until the response headers were ready (bodies stream on afterwards).
    pub duration_ms: u64,
    /// Upstream redirects the proxy followed.
    pub hops: u8,
    pub outcome: Outcome,
    /// The registry error code, when the proxy answered with an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// Where a cacheable answer came from (`X-Proxy-Cache`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<Verdict>,
    /// The upstream's `RateLimit-Limit` and `RateLimit-Remaining` (manifest requests: what
    /// Docker Hub counts), as numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratelimit_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratelimit_remaining: Option<u64>,
    /// For a cacheable request, the bytes of the answer that came from the upstream (0 when
    /// the store answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_bytes: Option<u64>,
    /// Upstream connections that failed before any answer and were tried once more.
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: u8,
    /// The fallback upstream that served the answer (`X-Proxy-Upstream`), if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<&'a str>,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// `upstream_bytes` of a cacheable request's line: none from the upstream when the store
/// answered, else the upstream answer's length, if known.
pub fn upstream_bytes(cache: Option<Verdict>, length: Option<u64>) -> Option<u64> {
    match cache? {
        Verdict::Hit | Verdict::Stale => Some(0),
        Verdict::Miss | Verdict::Bypass => length,
    }
}

/// What became of an answer the proxy meant to keep, known after the response (a line of
/// its own, `"event": "store"`).
#[derive(Debug, Clone, Serialize)]
pub struct StoreLog<'a> {
    pub time: &'a str,
    /// Always `"store"`: tells these lines from request lines.
    pub event: &'static str,
    pub host: &'a str,
    pub path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<&'a str>,
    /// Where it went: `cache` (the Cache API) or `bucket` (R2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<&'static str>,
    pub stored: bool,
    /// Why it was not kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// The fallback upstream it came from, if one gave it (failover.rs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<&'a str>,
}

impl StoreLog<'_> {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A request the proxy could not serve: its line goes to the error console at every level
/// but `off`.
pub fn failed(outcome: Outcome, status: u16) -> bool {
    matches!(outcome, Outcome::Error | Outcome::Limited) || status >= 500
}

impl LogLevel {
    /// Whether a request with this outcome and status gets a line.
    pub fn wants(self, outcome: Outcome, status: u16) -> bool {
        match self {
            LogLevel::Off => false,
            LogLevel::Error => failed(outcome, status),
            LogLevel::Info | LogLevel::Debug => true,
        }
    }

    /// Whether what became of a kept answer gets a line: at `info` and `debug`.
    pub fn wants_store(self) -> bool {
        self >= LogLevel::Info
    }
}

impl RequestLog<'_> {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `2026-11-29T10:00:00.000Z` from milliseconds since the Unix epoch, computed here rather
/// than through a JavaScript `Date` (one boundary crossing and string conversion less).
pub fn iso8601(epoch_ms: f64) -> String {
    let ms = epoch_ms.max(0.0) as u64;
    let (secs, milli) = (ms / 1000, ms % 1000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // civil-from-days (Howard Hinnant's algorithm), for days since 1970-01-01
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(status: u16, outcome: Outcome) -> RequestLog<'static> {
        RequestLog {
            time: "2026-11-29T10:00:00.000Z",
            host: "docker.example.com",
            route: Some("https://registry-1.docker.io"),
            method: "GET",
            path: "/v2/library/alpine/manifests/latest",
            status,
            upstream_status: Some(status),
            bytes: Some(1234),
            duration_ms: 42,
            hops: 0,
            outcome,
            error: None,
            cache: None,
            ratelimit_limit: None,
            ratelimit_remaining: None,
            upstream_bytes: None,
            retries: 0,
            fallback: None,
        }
    }

    #[test]
    fn a_retry_and_a_fallback_are_in_the_line_only_when_they_happened() {
        let plain = line(200, Outcome::Proxied).to_json();
        assert!(
            !plain.contains("retries") && !plain.contains("fallback"),
            "{plain}"
        );
        let mut rode = line(200, Outcome::Proxied);
        rode.retries = 1;
        rode.fallback = Some("https://mirror.gcr.io");
        let json = rode.to_json();
        assert!(
            json.contains(r#""retries":1"#)
                && json.contains(r#""fallback":"https://mirror.gcr.io""#),
            "{json}"
        );
    }

    #[test]
    fn an_outcome_s_name_is_the_line_s() {
        for o in [
            Outcome::Proxied,
            Outcome::Cached,
            Outcome::Challenge,
            Outcome::Token,
            Outcome::Redirect,
            Outcome::Page,
            Outcome::Search,
            Outcome::Limited,
            Outcome::Error,
        ] {
            assert_eq!(
                serde_json::to_string(&o).unwrap(),
                format!("\"{}\"", o.as_str())
            );
        }
    }

    #[test]
    fn levels() {
        assert_eq!(LogLevel::parse(" INFO "), Some(LogLevel::Info));
        assert_eq!(LogLevel::parse("error"), Some(LogLevel::Error));
        assert_eq!(LogLevel::parse("off"), Some(LogLevel::Off));
        assert_eq!(LogLevel::parse("debug"), Some(LogLevel::Debug));
        assert_eq!(LogLevel::parse("verbose"), None);
        assert!(LogLevel::Info.wants(Outcome::Proxied, 200));
        assert!(LogLevel::Debug.wants(Outcome::Page, 200));
        assert!(!LogLevel::Error.wants(Outcome::Proxied, 200));
        assert!(!LogLevel::Error.wants(Outcome::Proxied, 404));
        assert!(LogLevel::Error.wants(Outcome::Proxied, 502));
        assert!(LogLevel::Error.wants(Outcome::Error, 400));
        assert!(!LogLevel::Off.wants(Outcome::Error, 500));
        assert!(failed(Outcome::Error, 404) && failed(Outcome::Token, 503));
        assert!(!failed(Outcome::Challenge, 401));
        // the upstream's rate limit shows at the error level too
        assert!(LogLevel::Error.wants(Outcome::Limited, 429));
    }

    #[test]
    fn an_upstream_429_is_its_rate_limit_and_its_numbers_are_logged() {
        assert_eq!(passed_on(429), Outcome::Limited);
        for s in [200, 404, 503] {
            assert_eq!(passed_on(s), Outcome::Proxied, "{s}");
        }
        assert_eq!(rate_limit_number(Some("100;w=21600")), Some(100));
        assert_eq!(rate_limit_number(Some(" 0;w=21600 ")), Some(0));
        assert_eq!(rate_limit_number(Some("76")), Some(76));
        assert_eq!(rate_limit_number(Some("100, 100;w=21600")), Some(100));
        for bad in [
            None,
            Some(""),
            Some("w=21600"),
            Some("-1;w=5"),
            Some("lots"),
        ] {
            assert_eq!(rate_limit_number(bad), None, "{bad:?}");
        }
        let mut l = line(429, Outcome::Limited);
        (l.ratelimit_limit, l.ratelimit_remaining) = (Some(100), Some(0));
        let v: serde_json::Value = serde_json::from_str(&l.to_json()).unwrap();
        assert_eq!(v["outcome"], "limited");
        assert_eq!(
            (
                v["ratelimit_limit"].as_u64(),
                v["ratelimit_remaining"].as_u64()
            ),
            (Some(100), Some(0))
        );
        let v: serde_json::Value =
            serde_json::from_str(&line(200, Outcome::Proxied).to_json()).unwrap();
        assert!(v.get("ratelimit_limit").is_none() && v.get("ratelimit_remaining").is_none());
    }

    #[test]
    fn json_line_has_the_fields() {
        let v: serde_json::Value =
            serde_json::from_str(&line(200, Outcome::Proxied).to_json()).unwrap();
        assert_eq!(v["host"], "docker.example.com");
        assert_eq!(v["status"], 200);
        assert_eq!(v["outcome"], "proxied");
        assert_eq!(v["duration_ms"], 42);
        assert!(v.get("error").is_none());
    }

    #[test]
    fn iso_times() {
        assert_eq!(iso8601(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_000.0), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(1_795_950_276_868.0), "2026-11-29T11:04:36.868Z");
        assert_eq!(iso8601(4_102_444_799_999.0), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn the_store_s_answers_cost_the_upstream_no_bytes() {
        assert_eq!(upstream_bytes(Some(Verdict::Hit), Some(9)), Some(0));
        assert_eq!(upstream_bytes(Some(Verdict::Stale), None), Some(0));
        assert_eq!(upstream_bytes(Some(Verdict::Miss), Some(9)), Some(9));
        assert_eq!(upstream_bytes(Some(Verdict::Bypass), None), None);
        assert_eq!(upstream_bytes(None, Some(9)), None);
    }
}
