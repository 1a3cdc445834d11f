//! Upstream redirects: which to follow, where to, with which credentials; and `Location`
//! headers that must point at the proxy rather than the upstream.

use crate::error::ProxyError;
use crate::namespace::prefix_path;
use crate::routes::Route;
use url::Url;

/// Redirect hops followed for one request before giving up.
pub const MAX_HOPS: usize = 5;

/// Request headers that carry credentials: dropped once a hop leaves the origin they were
/// meant for (see `keeps_credentials`).
pub const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

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

/// The upstream response phase's decision on a `Location` (upload sessions, redirects that go
/// back to the client): one that names the upstream's origin, or a path on it, points at the
/// proxy instead, with the client's registry prefix on a path-routing host. `None`: it stays
/// as it is (another origin, such as a CDN, or nothing to change).
pub fn client_location(location: &str, route: Route<'_>, proxy_origin: &str) -> Option<String> {
    let path = match location.strip_prefix(route.upstream.base.as_str()) {
        Some(rest) if rest.is_empty() || rest.starts_with(['/', '?']) => rest,
        Some(_) => return None,
        // a path on the upstream's origin (not `//host/...`, which names another origin)
        None if location.starts_with('/') && !location.starts_with("//") => {
            let path = match route.via {
                Some(via) => prefix_path(location, via),
                None => return None,
            };
            return (path != location).then_some(path);
        }
        None => return None,
    };
    let path = match route.via {
        Some(via) => prefix_path(path, via),
        None => path.to_string(),
    };
    Some(format!("{proxy_origin}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::Upstream;
    use crate::routes::{By, Via};

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
    fn locations_naming_the_upstream_point_at_the_proxy() {
        let up = Upstream::parse("T", "http://127.0.0.1:5000", None).unwrap();
        let host = Route::host(&up);
        assert_eq!(
            client_location(
                "http://127.0.0.1:5000/v2/a/blobs/uploads/u?_state=x",
                host,
                "https://docker.example.test:8443"
            )
            .as_deref(),
            Some("https://docker.example.test:8443/v2/a/blobs/uploads/u?_state=x")
        );
        // a relative one already points at the proxy
        assert_eq!(
            client_location("/v2/a/blobs/uploads/u", host, "https://p"),
            None
        );
        assert_eq!(
            client_location("http://127.0.0.1:50000/x", host, "https://p"),
            None
        );
        assert_eq!(client_location("https://cdn/x", host, "https://p"), None);
        assert_eq!(client_location("//cdn/x", host, "https://p"), None);
        // a path-routing host: the client's prefix comes back, on absolute and relative ones
        let prefixed = Route {
            upstream: &up,
            via: Some(Via {
                registry: "hub.registry.test",
                by: By::Prefix,
            }),
        };
        assert_eq!(
            client_location(
                "http://127.0.0.1:5000/v2/a/blobs/uploads/u?_state=x",
                prefixed,
                "https://p"
            )
            .as_deref(),
            Some("https://p/v2/hub.registry.test/a/blobs/uploads/u?_state=x")
        );
        assert_eq!(
            client_location("/v2/a/blobs/uploads/u", prefixed, "https://p").as_deref(),
            Some("/v2/hub.registry.test/a/blobs/uploads/u")
        );
        let ns = Route {
            upstream: &up,
            via: Some(Via {
                registry: "hub.registry.test",
                by: By::Ns,
            }),
        };
        assert_eq!(
            client_location("/v2/a/blobs/uploads/u", ns, "https://p"),
            None
        );
    }
}
