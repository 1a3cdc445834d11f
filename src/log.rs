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
}

impl LogLevel {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "off" | "none" => Some(LogLevel::Off),
            "error" => Some(LogLevel::Error),
            "info" | "debug" => Some(LogLevel::Info),
            _ => None,
        }
    }
}

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The upstream's answer was passed on (possibly after following redirects).
    Proxied,
    /// An upstream 401 re-issued with the proxy's challenge.
    Challenge,
    /// A token answer from the upstream's realm.
    Token,
    /// A redirect of the proxy's own (Docker Hub `library/`, `/` to `/v2/`).
    Redirect,
    /// The landing page.
    Page,
    /// The proxy answered with a registry error of its own.
    Error,
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
    /// `Content-Length` of the answer, when known.
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
}

impl RequestLog<'_> {
    /// Whether this line is written at `level`.
    pub fn wanted(&self, level: LogLevel) -> bool {
        match level {
            LogLevel::Off => false,
            LogLevel::Error => self.outcome == Outcome::Error || self.status >= 500,
            LogLevel::Info => true,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The part of a URL path safe to log: never the query.
pub fn loggable_path(path_and_query: &str) -> &str {
    path_and_query
        .split_once('?')
        .map_or(path_and_query, |(p, _)| p)
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
        }
    }

    #[test]
    fn levels() {
        assert_eq!(LogLevel::parse(" INFO "), Some(LogLevel::Info));
        assert_eq!(LogLevel::parse("error"), Some(LogLevel::Error));
        assert_eq!(LogLevel::parse("off"), Some(LogLevel::Off));
        assert_eq!(LogLevel::parse("verbose"), None);
        let ok = line(200, Outcome::Proxied);
        assert!(ok.wanted(LogLevel::Info));
        assert!(!ok.wanted(LogLevel::Error));
        assert!(line(502, Outcome::Proxied).wanted(LogLevel::Error));
        assert!(line(400, Outcome::Error).wanted(LogLevel::Error));
        assert!(!line(400, Outcome::Error).wanted(LogLevel::Off));
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
    fn queries_are_never_logged() {
        assert_eq!(
            loggable_path("/v2/auth?scope=repository:a:pull&account=alice"),
            "/v2/auth"
        );
        assert_eq!(loggable_path("/v2/"), "/v2/");
    }
}
