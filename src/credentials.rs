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

    /// Whether a client that presented this comes with no credentials of its own for the
    /// upstream: nothing, a marked token, or (where the client's are not passed) anything but a
    /// Bearer token. A proxy user is anonymous upstream unless the proxy has an `account` there.
    pub fn anonymous(self, presented: &Presented<'_>, account: bool) -> bool {
        match (self, presented) {
            (Credentials::Proxy, _) => !account,
            (_, Presented::Nothing | Presented::Anonymous(_)) => true,
            (Credentials::Anonymous, Presented::Own(v)) => !self.keeps_authorization(v),
            (Credentials::Client, Presented::Own(_)) => false,
        }
    }

    /// Whether what goes upstream for what the client presented is known to carry no one's
    /// credentials: the upstream's yes to it is a yes to anyone (the public record of stale
    /// answers, cache.rs). A mark can be forged, so a marked token counts only if this isolate
    /// got it anonymously itself (`issued_here`, given the upstream's part).
    pub fn proven_anonymous(
        self,
        presented: &Presented<'_>,
        account: bool,
        issued_here: impl FnOnce(&str) -> bool,
    ) -> bool {
        match (self, presented) {
            (Credentials::Proxy, _) => !account,
            (_, Presented::Nothing | Presented::Anonymous(None)) => true,
            (_, Presented::Anonymous(Some(auth))) => issued_here(auth),
            (c, Presented::Own(v)) => !c.keeps_authorization(v),
        }
    }

    /// The `Authorization` that goes upstream for what the client presented.
    pub fn upstream_authorization<'p>(self, presented: &'p Presented<'_>) -> Option<&'p str> {
        match presented {
            _ if self == Credentials::Proxy => None,
            Presented::Nothing => None,
            Presented::Anonymous(upstream) => upstream.as_deref(),
            Presented::Own(v) => self.keeps_authorization(v).then_some(*v),
        }
    }

    /// Whether the client's credentials (Basic `Authorization`, the password or refresh token
    /// of an OAuth2 form) go to the upstream's token service; if not, the token request is an
    /// anonymous one.
    pub fn to_token_service(self) -> bool {
        self == Credentials::Client
    }
}

/// The mark the proxy's `/v2/auth` puts before a token it got for a client without
/// credentials (none of the client's, none of the proxy's account): the client brings it back
/// on every request, so any isolate knows that client is anonymous (failover.rs, stale answers)
/// without remembering anything. It is taken off before the token goes upstream. A client that
/// marks a token of its own only makes itself anonymous.
pub const ANONYMOUS_MARK: &str = "anon~";

/// A client's `Authorization` as it stands before the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented<'a> {
    /// None at all.
    Nothing,
    /// A token the proxy's `/v2/auth` got anonymously: the upstream's part (`None`: the proxy's
    /// stand-in while the token service was down, nothing to send).
    Anonymous(Option<String>),
    /// Anything else: the client's own, as it came.
    Own(&'a str),
}

impl<'a> Presented<'a> {
    pub fn of(value: Option<&'a str>) -> Self {
        let Some(value) = value else {
            return Presented::Nothing;
        };
        let trimmed = value.trim_start_matches([' ', '\t']);
        let token = scheme(trimmed)
            .eq_ignore_ascii_case("bearer")
            .then(|| trimmed[6..].trim_start_matches([' ', '\t']))
            .and_then(|t| t.strip_prefix(ANONYMOUS_MARK));
        match token {
            Some("") => Presented::Anonymous(None),
            Some(upstream) => Presented::Anonymous(Some(format!("Bearer {upstream}"))),
            None => Presented::Own(value),
        }
    }
}

/// An anonymous token for a client, marked (`ANONYMOUS_MARK`); the mark alone is the proxy's
/// stand-in token.
pub fn mark(token: &str) -> String {
    format!("{ANONYMOUS_MARK}{token}")
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
    fn a_marked_token_is_anonymous_and_goes_upstream_without_its_mark() {
        let marked = format!("Bearer {}", mark("eyJ.a.b"));
        let p = Presented::of(Some(&marked));
        assert_eq!(p, Presented::Anonymous(Some("Bearer eyJ.a.b".into())));
        assert_eq!(
            Credentials::Client.upstream_authorization(&p),
            Some("Bearer eyJ.a.b")
        );
        for spelled in [
            format!("bearer  {}", mark("t")),
            format!(" BEARER\t{}", mark("t")),
        ] {
            assert_eq!(
                Presented::of(Some(&spelled)),
                Presented::Anonymous(Some("Bearer t".into())),
                "{spelled:?}"
            );
        }
        // the stand-in: nothing goes upstream
        let stand_in = format!("Bearer {}", mark(""));
        let p = Presented::of(Some(&stand_in));
        assert_eq!(p, Presented::Anonymous(None));
        assert_eq!(Credentials::Client.upstream_authorization(&p), None);
        for c in [Credentials::Client, Credentials::Anonymous] {
            assert!(c.anonymous(&p, false));
            assert!(c.anonymous(&Presented::Nothing, false));
        }
        // the client's own token, or a Basic login
        let own = Presented::of(Some("Bearer eyJ.own"));
        assert!(!Credentials::Client.anonymous(&own, false));
        assert!(!Credentials::Anonymous.anonymous(&own, false));
        let basic = Presented::of(Some("Basic YTpi"));
        assert!(!Credentials::Client.anonymous(&basic, false));
        assert_eq!(
            Credentials::Client.upstream_authorization(&basic),
            Some("Basic YTpi")
        );
        // a password for another registry is dropped: anonymous here
        assert!(Credentials::Anonymous.anonymous(&basic, false));
        assert_eq!(Credentials::Anonymous.upstream_authorization(&basic), None);
        // a mark elsewhere than the token's start is no mark
        assert!(matches!(
            Presented::of(Some("Basic anon~x")),
            Presented::Own(_)
        ));
        // a yes to a marked token is a yes to anyone only if this isolate got it anonymously
        let marked = Presented::of(Some("Bearer anon~eyJ.a.b"));
        let c = Credentials::Client;
        assert!(c.proven_anonymous(&marked, false, |t| t == "Bearer eyJ.a.b"));
        assert!(!c.proven_anonymous(&marked, false, |_| false));
        assert!(c.proven_anonymous(&Presented::Nothing, false, |_| false));
        assert!(!c.proven_anonymous(&Presented::of(Some("Bearer own")), false, |_| true));
        assert!(Credentials::Anonymous.proven_anonymous(&basic, false, |_| false));
        assert!(!Credentials::Proxy.proven_anonymous(&Presented::Nothing, true, |_| true));
        // a proxy user is anonymous upstream unless the proxy has an account there
        assert!(Credentials::Proxy.anonymous(&Presented::Nothing, false));
        assert!(!Credentials::Proxy.anonymous(&Presented::Nothing, true));
        // nothing of a proxy user's goes upstream, marked or not
        let marked = Presented::of(Some("Bearer anon~t"));
        assert_eq!(Credentials::Proxy.upstream_authorization(&marked), None);
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
