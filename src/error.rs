//! Every failure the proxy answers itself, in one place: its status, its registry error code
//! and its message. Bodies use the registry's own JSON form so clients print them.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyError {
    /// A wrangler var holds a value the proxy cannot use.
    Config {
        var: &'static str,
        reason: String,
    },
    /// The request's host is not in the route table.
    UnknownHost(String),
    /// A path-routing host was asked for a registry that is not in the route table.
    RegistryNotRouted(String),
    /// The path is not part of the registry API.
    NotFound,
    /// A repository name outside the distribution grammar.
    NameInvalid(String),
    /// A tag or digest outside the distribution grammar.
    ReferenceInvalid(String),
    DigestInvalid(String),
    /// The registry API has no such method here.
    MethodNotAllowed {
        method: String,
        allowed: &'static [&'static str],
    },
    /// A body the proxy had to read (the OAuth2 form) is malformed or too large.
    BadRequest(String),
    /// A search's `n` or `page` out of bounds.
    PaginationInvalid(String),
    /// `/v1/search` for a registry without a search service.
    SearchUnsupported(String),
    /// The upstream could not be reached (DNS, connection refused, reset).
    Unreachable {
        upstream: String,
    },
    /// The upstream sent no response headers in time.
    Timeout {
        upstream: String,
        ms: u32,
    },
    /// The upstream's 401 has no usable `WWW-Authenticate` challenge.
    BadChallenge {
        upstream: String,
        reason: String,
    },
    /// The upstream redirected more often than we follow, or to a non-http(s) place.
    BadRedirect {
        upstream: String,
        reason: String,
    },
    /// An upstream answer the proxy had to read (a token answer) could not be read.
    BadAnswer {
        upstream: String,
        reason: String,
    },
    /// The operator's policy refuses this client or repository (access.rs). Says no more:
    /// the policy is not told to strangers.
    Denied,
    /// Proxy users are on and the request has no login good for it: the proxy's challenge.
    Unauthorized {
        challenge: String,
    },
    /// `READ_ONLY`: a method that writes.
    ReadOnly,
    /// The client went over the `RATE_LIMITER` binding's limit.
    TooManyRequests {
        retry_after: u32,
    },
    /// The proxy could not build its own answer (the runtime refused it).
    Internal(String),
}

impl ProxyError {
    /// HTTP status and registry error code.
    pub fn status_code(&self) -> (u16, &'static str) {
        match self {
            ProxyError::Config { .. } => (500, "UNKNOWN"),
            ProxyError::UnknownHost(_) => (404, "NAME_UNKNOWN"),
            ProxyError::RegistryNotRouted(_) => (404, "NAME_UNKNOWN"),
            ProxyError::NotFound => (404, "UNSUPPORTED"),
            ProxyError::NameInvalid(_) => (400, "NAME_INVALID"),
            ProxyError::ReferenceInvalid(_) => (400, "MANIFEST_INVALID"),
            ProxyError::DigestInvalid(_) => (400, "DIGEST_INVALID"),
            ProxyError::MethodNotAllowed { .. } => (405, "UNSUPPORTED"),
            ProxyError::BadRequest(_) => (400, "UNSUPPORTED"),
            ProxyError::PaginationInvalid(_) => (400, "PAGINATION_NUMBER_INVALID"),
            ProxyError::SearchUnsupported(_) => (404, "UNSUPPORTED"),
            ProxyError::Unreachable { .. } => (502, "UNAVAILABLE"),
            ProxyError::Timeout { .. } => (504, "UNAVAILABLE"),
            ProxyError::BadChallenge { .. } => (502, "UNAVAILABLE"),
            ProxyError::BadRedirect { .. } => (502, "UNAVAILABLE"),
            ProxyError::BadAnswer { .. } => (502, "UNAVAILABLE"),
            ProxyError::Denied => (403, "DENIED"),
            ProxyError::Unauthorized { .. } => (401, "UNAUTHORIZED"),
            ProxyError::ReadOnly => (405, "UNSUPPORTED"),
            ProxyError::TooManyRequests { .. } => (429, "TOOMANYREQUESTS"),
            ProxyError::Internal(_) => (500, "UNKNOWN"),
        }
    }

    /// `{"errors":[{"code":"…","message":"…"}]}`
    pub fn body(&self) -> String {
        let (_, code) = self.status_code();
        serde_json::json!({ "errors": [{ "code": code, "message": self.to_string() }] }).to_string()
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::Config { var, reason } => {
                write!(f, "proxy misconfigured: variable {var}: {reason}")
            }
            // The route table is not listed: it tells strangers what else this proxy fronts.
            ProxyError::UnknownHost(host) => {
                write!(f, "no registry is routed for host {}", echo(host))
            }
            ProxyError::RegistryNotRouted(r) => {
                write!(f, "registry {} is not served by this proxy", echo(r))
            }
            ProxyError::NotFound => write!(f, "not a registry API path; use /v2/"),
            ProxyError::NameInvalid(name) => {
                write!(f, "invalid repository name: {}", echo(name))
            }
            ProxyError::ReferenceInvalid(r) => write!(f, "invalid tag or digest: {}", echo(r)),
            ProxyError::DigestInvalid(d) => write!(f, "invalid digest: {}", echo(d)),
            ProxyError::MethodNotAllowed { method, allowed } => write!(
                f,
                "method {} is not part of the registry API here (allowed: {})",
                echo(method),
                allowed.join(", ")
            ),
            ProxyError::BadRequest(why) => write!(f, "bad request: {why}"),
            ProxyError::PaginationInvalid(why) => write!(f, "invalid search page: {why}"),
            ProxyError::SearchUnsupported(registry) => write!(
                f,
                "registry {} has no search service here (docker search works on Docker Hub)",
                echo(registry)
            ),
            ProxyError::Unreachable { upstream } => {
                write!(f, "upstream {upstream} is unreachable")
            }
            ProxyError::Timeout { upstream, ms } => {
                write!(f, "upstream {upstream} did not answer within {ms} ms")
            }
            ProxyError::BadChallenge { upstream, reason } => {
                write!(
                    f,
                    "upstream {upstream} sent an unusable auth challenge: {reason}"
                )
            }
            ProxyError::BadRedirect { upstream, reason } => {
                write!(f, "upstream {upstream} redirected badly: {reason}")
            }
            ProxyError::BadAnswer { upstream, reason } => {
                write!(f, "upstream {upstream} sent an unreadable answer: {reason}")
            }
            ProxyError::Denied => write!(f, "requested access to the resource is denied"),
            ProxyError::Unauthorized { .. } => write!(f, "authentication required"),
            ProxyError::ReadOnly => write!(f, "this proxy is read-only: only GET and HEAD"),
            ProxyError::TooManyRequests { retry_after } => write!(
                f,
                "too many requests from this client: retry after {retry_after} s"
            ),
            ProxyError::Internal(what) => write!(f, "the proxy could not answer: {what}"),
        }
    }
}

impl std::error::Error for ProxyError {}

impl ProxyError {
    /// The `Allow` header of a 405.
    pub fn allow(&self) -> Option<String> {
        match self {
            ProxyError::MethodNotAllowed { allowed, .. } => Some(allowed.join(", ")),
            ProxyError::ReadOnly => Some("GET, HEAD".into()),
            _ => None,
        }
    }

    /// The `WWW-Authenticate` of a 401.
    pub fn challenge(&self) -> Option<&str> {
        match self {
            ProxyError::Unauthorized { challenge } => Some(challenge),
            _ => None,
        }
    }

    /// The `Retry-After` of the answer, in seconds.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            ProxyError::TooManyRequests { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// A client's input in a message: at most 128 characters of it.
pub fn echo(input: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 128;
    match input.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &input[..end]).into(),
        None => input.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_registry_json_and_escaped() {
        let e = ProxyError::NameInvalid("a\"b".into());
        let v: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(v["errors"][0]["code"], "NAME_INVALID");
        assert_eq!(v["errors"][0]["message"], "invalid repository name: a\"b");
        assert_eq!(e.status_code().0, 400);
    }

    #[test]
    fn config_error_names_the_variable() {
        let e = ProxyError::Config {
            var: "ROUTES",
            reason: "not JSON".into(),
        };
        assert_eq!(e.status_code(), (500, "UNKNOWN"));
        assert!(e.to_string().contains("ROUTES"));
    }

    #[test]
    fn upstream_faults_are_502_the_proxy_s_own_500() {
        let e = ProxyError::BadAnswer {
            upstream: "https://auth.example".into(),
            reason: "body cut short".into(),
        };
        assert_eq!(e.status_code(), (502, "UNAVAILABLE"));
        assert!(e.to_string().contains("https://auth.example"));
        assert_eq!(
            ProxyError::Internal("response".into()).status_code(),
            (500, "UNKNOWN")
        );
    }

    #[test]
    fn policy_refusals_are_the_registry_s_denied_and_read_only_s_unsupported() {
        assert_eq!(ProxyError::Denied.status_code(), (403, "DENIED"));
        assert_eq!(ProxyError::ReadOnly.status_code(), (405, "UNSUPPORTED"));
        assert!(ProxyError::ReadOnly.to_string().contains("read-only"));
        assert_eq!(ProxyError::ReadOnly.allow().as_deref(), Some("GET, HEAD"));
        let e = ProxyError::TooManyRequests { retry_after: 60 };
        assert_eq!(e.status_code(), (429, "TOOMANYREQUESTS"));
        assert_eq!(e.retry_after(), Some(60));
        assert_eq!(ProxyError::Denied.retry_after(), None);
        let e = ProxyError::Unauthorized {
            challenge: "Bearer realm=\"r\"".into(),
        };
        assert_eq!(e.status_code(), (401, "UNAUTHORIZED"));
        assert_eq!(e.challenge(), Some("Bearer realm=\"r\""));
        assert_eq!(ProxyError::Denied.challenge(), None);
    }

    #[test]
    fn long_input_is_echoed_short_and_405_says_what_is_allowed() {
        let e = ProxyError::NameInvalid("a".repeat(5000));
        assert!(e.to_string().len() < 200, "{e}");
        let e = ProxyError::MethodNotAllowed {
            method: "TRACE".into(),
            allowed: &["GET", "HEAD"],
        };
        assert_eq!(e.status_code(), (405, "UNSUPPORTED"));
        assert_eq!(e.allow().as_deref(), Some("GET, HEAD"));
        assert!(e.to_string().contains("TRACE"));
        assert_eq!(ProxyError::NotFound.allow(), None);
    }

    #[test]
    fn an_unknown_host_is_told_nothing_of_the_route_table() {
        let config = crate::testing::config(&[
            ("CUSTOM_DOMAIN", "example.com"),
            (
                "ROUTES",
                r#"{"secret.example.org": "https://registry.internal"}"#,
            ),
        ]);
        for url in [
            "https://x.example/v2/",
            "https://x.example/v2/library/a/manifests/1",
        ] {
            let url = url::Url::parse(url).unwrap();
            let e = crate::plan::plan(&config, "GET", &url, false).unwrap_err();
            assert_eq!(e.status_code().0, 404, "{e}");
            let (body, text) = (e.body(), e.to_string());
            for routed in [
                "docker.example.com",
                "secret.example.org",
                "registry.internal",
            ] {
                assert!(!body.contains(routed) && !text.contains(routed), "{body}");
            }
            assert!(body.contains("x.example"), "{body}");
        }
    }
}
