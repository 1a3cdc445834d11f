//! Whose credentials go upstream: one decision per route, for the version check, the token
//! service and every registry request alike.

use crate::config::Config;
use crate::routes::Route;

/// Request headers a client sends for the proxy's own host, never for an upstream: a
/// `Proxy-Authorization` is for this proxy, cookies are for its domain.
pub const FOR_THE_PROXY: [&str; 2] = ["proxy-authorization", "cookie"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// The client's, as it sent them: the upstream is the registry the client logged in to (a
    /// host route fronts one registry; on a path-routing host, the default registry).
    Client,
    /// None: the client is anonymous to this registry. A password given to a path-routing host
    /// is meant for its default registry, never for the others. A Bearer token is not a
    /// credential here: it came from this registry's own token service (through the proxy's
    /// `/v2/auth`, for this registry's scopes), so it still goes along.
    Anonymous,
    /// The proxy's own: a proxy user's request goes upstream with the token the proxy got
    /// for itself (users.rs); nothing of the client's reaches the upstream.
    Proxy,
}

impl Credentials {
    /// The decision for a route.
    pub fn for_route(config: &Config, route: Route<'_>) -> Self {
        let own = route.via.is_none()
            || config
                .default_upstream()
                .is_some_and(|d| d.base == route.upstream.base);
        if own {
            Credentials::Client
        } else {
            Credentials::Anonymous
        }
    }

    /// Whether the client's `Authorization` value goes upstream with a registry request.
    pub fn keeps_authorization(self, value: &str) -> bool {
        match self {
            Credentials::Client => true,
            Credentials::Anonymous => scheme(value).eq_ignore_ascii_case("bearer"),
            Credentials::Proxy => false,
        }
    }

    /// Whether the client's credentials (Basic `Authorization`, the password or refresh token
    /// of an OAuth2 form) go to the upstream's token service; if not, the token request is an
    /// anonymous one.
    pub fn to_token_service(self) -> bool {
        self == Credentials::Client
    }
}

/// The auth scheme of an `Authorization` value (RFC 7235: a token, compared without regard to
/// case, then whitespace).
pub fn scheme(value: &str) -> &str {
    value
        .trim_start_matches([' ', '\t'])
        .split([' ', '\t'])
        .next()
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{By, Via};

    fn config() -> Config {
        crate::testing::path_routing(&[])
    }

    #[test]
    fn a_path_routing_host_gives_passwords_to_its_default_registry_only() {
        let c = config();
        let on_path_host = |name: &str| {
            let (registry, upstream) = c.registry(name).unwrap();
            let via = Some(Via {
                registry,
                by: By::Prefix,
            });
            Credentials::for_route(&c, Route { upstream, via })
        };
        assert_eq!(on_path_host("docker.io"), Credentials::Client);
        assert_eq!(on_path_host("index.docker.io"), Credentials::Client);
        assert_eq!(on_path_host("ghcr.io"), Credentials::Anonymous);
        assert_eq!(on_path_host("quay.io"), Credentials::Anonymous);
        // a host route fronts one registry: the client's credentials are its own
        let ghcr = c.registry("ghcr.io").unwrap().1;
        assert_eq!(
            Credentials::for_route(&c, Route::host(ghcr)),
            Credentials::Client
        );
    }

    #[test]
    fn only_bearer_tokens_pass_to_other_registries() {
        let t = Credentials::Anonymous;
        for kept in ["Bearer abc", "bearer abc", "BEARER\tabc", "  Bearer abc"] {
            assert!(t.keeps_authorization(kept), "{kept:?}");
        }
        for dropped in [
            "Basic YTpi",
            "basic YTpi",
            "Basic\tYTpi",
            "BASIC  YTpi",
            " Basic YTpi",
            "Digest username=x",
            "Bearerx abc",
            "",
        ] {
            assert!(!t.keeps_authorization(dropped), "{dropped:?}");
        }
        assert!(Credentials::Client.keeps_authorization("Basic YTpi"));
        assert!(Credentials::Client.to_token_service());
        assert!(!t.to_token_service());
    }
}
