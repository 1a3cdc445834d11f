//! Upstream redirects: which to follow, where to, with which credentials; and `Location`
//! headers that must point at the proxy rather than the upstream.

use crate::error::ProxyError;
use url::Url;

/// Redirect hops followed for one request before giving up.
pub const MAX_HOPS: usize = 5;

pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The next hop: `location` resolved against the current URL. Only http(s) is followed.
pub fn next_hop(current: &Url, location: Option<&str>, upstream: &str) -> Result<Url, ProxyError> {
    let bad = |reason: String| ProxyError::BadRedirect {
        upstream: upstream.to_string(),
        reason,
    };
    let location = location.ok_or_else(|| bad("redirect without Location".into()))?;
    let next = current
        .join(location)
        .map_err(|e| bad(format!("Location {location:?}: {e}")))?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(bad(format!("Location {location:?} is not http(s)")));
    }
    Ok(next)
}

/// Credentials (`Authorization`, cookies) go only to the upstream's own origin: object stores
/// and CDNs behind a blob redirect must never see them.
pub fn keeps_credentials(upstream_base: &str, url: &Url) -> bool {
    url.origin().ascii_serialization() == upstream_base
}

/// A `Location` in an upstream answer (upload sessions, unfollowed redirects) that names the
/// upstream's origin is rewritten to the proxy's, so the client keeps talking to the proxy.
pub fn rewrite_location(location: &str, upstream_base: &str, proxy_origin: &str) -> Option<String> {
    let rest = location.strip_prefix(upstream_base)?;
    (rest.is_empty() || rest.starts_with(['/', '?'])).then(|| format!("{proxy_origin}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn statuses() {
        for s in [301, 302, 303, 307, 308] {
            assert!(is_redirect(s));
        }
        for s in [200, 204, 300, 304, 401] {
            assert!(!is_redirect(s));
        }
    }

    #[test]
    fn relative_and_absolute_locations() {
        let cur = u("https://registry-1.docker.io/v2/library/x/blobs/sha256:ab");
        assert_eq!(
            next_hop(&cur, Some("/v2/y"), "up").unwrap().as_str(),
            "https://registry-1.docker.io/v2/y"
        );
        assert_eq!(
            next_hop(&cur, Some("https://cdn.example/b?sig=1"), "up")
                .unwrap()
                .as_str(),
            "https://cdn.example/b?sig=1"
        );
        assert_eq!(
            next_hop(&cur, Some("blob"), "up").unwrap().as_str(),
            "https://registry-1.docker.io/v2/library/x/blobs/blob"
        );
        assert!(next_hop(&cur, None, "up").is_err());
        assert!(next_hop(&cur, Some("ftp://x/y"), "up").is_err());
        assert!(next_hop(&cur, Some("http://[::1"), "up").is_err());
    }

    #[test]
    fn credentials_stay_on_the_upstream_origin() {
        let base = "https://registry-1.docker.io";
        assert!(keeps_credentials(
            base,
            &u("https://registry-1.docker.io/v2/x")
        ));
        assert!(!keeps_credentials(
            base,
            &u("https://production.cloudflare.docker.com/x")
        ));
        assert!(!keeps_credentials(
            base,
            &u("http://registry-1.docker.io/v2/x")
        ));
        assert!(!keeps_credentials(
            "http://127.0.0.1:5000",
            &u("http://127.0.0.1:5004/x")
        ));
    }

    #[test]
    fn location_rewrite() {
        assert_eq!(
            rewrite_location(
                "http://127.0.0.1:5000/v2/a/blobs/uploads/u?_state=x",
                "http://127.0.0.1:5000",
                "https://docker.example.test:8443"
            )
            .as_deref(),
            Some("https://docker.example.test:8443/v2/a/blobs/uploads/u?_state=x")
        );
        assert_eq!(
            rewrite_location(
                "/v2/a/blobs/uploads/u",
                "http://127.0.0.1:5000",
                "https://p"
            ),
            None
        );
        assert_eq!(
            rewrite_location(
                "http://127.0.0.1:50000/x",
                "http://127.0.0.1:5000",
                "https://p"
            ),
            None
        );
        assert_eq!(
            rewrite_location("https://cdn/x", "http://127.0.0.1:5000", "https://p"),
            None
        );
    }
}
