//! One host for every registry (`PATH_ROUTING`): which registry a request addresses, from
//! containerd's `?ns=<registry>` (mirror requests) or a registry prefix in the repository name
//! (`/v2/ghcr.io/org/app/…`), and the translation of names both ways so that a client never
//! sees the upstream's names. Only registries of the route table are reachable: anything else
//! is refused before a request leaves.

use crate::config::Config;
use crate::error::ProxyError;
use crate::routes::Upstream;
use url::form_urlencoded;

/// How a request on a path-routing host named its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'c> {
    /// The registry's name as the table (and the client) spells it.
    pub registry: &'c str,
    /// The client's repository names start with `<registry>/`.
    pub prefixed: bool,
}

/// Docker's rule: a first name component with a `.` or `:`, or `localhost`, is a registry.
pub fn looks_like_registry(component: &str) -> bool {
    component.contains(['.', ':']) || component == "localhost"
}

fn lookup<'c>(config: &'c Config, name: &str) -> Result<(&'c str, &'c Upstream), ProxyError> {
    config
        .registries
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(n, u)| (n.as_str(), u))
        .ok_or_else(|| ProxyError::RegistryNotRouted(name.to_string()))
}

/// A repository request: its upstream, how it was named, and the name upstream.
pub fn resolve<'c, 'n>(
    config: &'c Config,
    name: &'n str,
    ns: Option<&str>,
) -> Result<(&'c Upstream, Via<'c>, &'n str), ProxyError> {
    if let Some(ns) = ns {
        let (registry, upstream) = lookup(config, ns)?;
        let via = Via {
            registry,
            prefixed: false,
        };
        return Ok((upstream, via, name));
    }
    if let Some((first, rest)) = name.split_once('/') {
        if looks_like_registry(first) {
            let (registry, upstream) = lookup(config, first)?;
            let via = Via {
                registry,
                prefixed: true,
            };
            return Ok((upstream, via, rest));
        }
    }
    let (registry, upstream) = lookup(config, &config.default_registry)?;
    let via = Via {
        registry,
        prefixed: false,
    };
    Ok((upstream, via, name))
}

/// `/v2/` and `/v2/auth`: the registry from `ns`, else from the scopes' prefixes, else the
/// default. `params` is the query string (and, for a POST, the form after it, joined by `&`).
pub fn resolve_auth<'c>(
    config: &'c Config,
    params: &str,
) -> Result<(&'c Upstream, Via<'c>), ProxyError> {
    let mut prefixed: Option<(&'c str, &'c Upstream)> = None;
    for (k, v) in form_urlencoded::parse(params.as_bytes()) {
        match &*k {
            "ns" => {
                let (registry, upstream) = lookup(config, &v)?;
                let via = Via {
                    registry,
                    prefixed: false,
                };
                return Ok((upstream, via));
            }
            "scope" => {
                for scope in v.split(' ') {
                    let Some(first) = scope_name(scope)
                        .and_then(|n| n.split_once('/'))
                        .map(|(f, _)| f)
                        .filter(|f| looks_like_registry(f))
                    else {
                        continue;
                    };
                    let found = lookup(config, first)?;
                    match prefixed {
                        Some((r, _)) if r != found.0 => {
                            return Err(ProxyError::BadRequest(format!(
                                "one token request for two registries ({r}, {})",
                                found.0
                            )))
                        }
                        _ => prefixed = Some(found),
                    }
                }
            }
            _ => {}
        }
    }
    Ok(match prefixed {
        Some((registry, upstream)) => (
            upstream,
            Via {
                registry,
                prefixed: true,
            },
        ),
        None => {
            let (registry, upstream) = lookup(config, &config.default_registry)?;
            (
                upstream,
                Via {
                    registry,
                    prefixed: false,
                },
            )
        }
    })
}

/// Whether the client's credentials may go to `upstream` (its `/v2/`, token service and
/// registry requests). A host route fronts one registry: always. On a path-routing host
/// (`via`) a client logs in to the proxy's host, not to a registry: its credentials are meant
/// for the default registry only and never reach the others.
pub fn credentials_for(config: &Config, upstream: &Upstream, via: Option<Via<'_>>) -> bool {
    via.is_none()
        || config
            .registry(&config.default_registry)
            .is_some_and(|d| d.base == upstream.base)
}

/// The repository name of a `repository[(class)]:name:actions` scope.
fn scope_name(scope: &str) -> Option<&str> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, _) = rest.rsplit_once(':')?;
    kind.starts_with("repository").then_some(name)
}

/// Applies `f` to the repository name of every scope in a space-separated list.
fn map_scope_names(scopes: &str, f: impl Fn(&str) -> String) -> String {
    scopes
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|scope| match scope_name(scope) {
            Some(name) => {
                let (kind, rest) = scope.split_once(':').unwrap_or_default();
                let actions = &rest[name.len() + 1..];
                format!("{kind}:{}:{actions}", f(name))
            }
            None => scope.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Client -> upstream: `repository:ghcr.io/org/app:pull` -> `repository:org/app:pull`.
pub fn strip_scopes(scopes: &str, via: Via<'_>) -> String {
    map_scope_names(scopes, |name| match name.split_once('/') {
        Some((first, rest)) if first.eq_ignore_ascii_case(via.registry) => rest.to_string(),
        _ => name.to_string(),
    })
}

/// Upstream -> client, in the proxy's challenge: `repository:org/app:pull` ->
/// `repository:ghcr.io/org/app:pull` when the client names repositories with a prefix.
pub fn prefix_scopes(scopes: &str, via: Via<'_>) -> String {
    if !via.prefixed {
        return scopes.to_string();
    }
    map_scope_names(scopes, |name| format!("{}/{name}", via.registry))
}

/// Upstream -> client, for a `Location` path: `/v2/org/app/blobs/uploads/x` ->
/// `/v2/ghcr.io/org/app/blobs/uploads/x` when the client names repositories with a prefix.
pub fn prefix_path(path_and_query: &str, via: Via<'_>) -> String {
    match path_and_query.strip_prefix("/v2/") {
        Some(rest) if via.prefixed => format!("/v2/{}/{rest}", via.registry),
        _ => path_and_query.to_string(),
    }
}

/// The proxy's token realm for a request routed this way: the registry travels in the realm
/// (`?ns=`), so the token request reaches the same registry whatever scopes the client asks.
pub fn realm(origin: &str, via: Option<Via<'_>>) -> String {
    match via {
        Some(via) => format!("{origin}/v2/auth?ns={}", via.registry),
        None => format!("{origin}/v2/auth"),
    }
}

/// The query without containerd's `ns`, which is for the proxy, not the upstream.
pub fn without_ns(query: &str) -> Option<String> {
    if !query.split('&').any(|p| p == "ns" || p.starts_with("ns=")) {
        return Some(query.to_string()).filter(|q| !q.is_empty());
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !(p.is_empty() || *p == "ns" || p.starts_with("ns=")))
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// The `ns` parameter of a query, if any.
pub fn ns_param(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "ns")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_vars(|name| match name {
            "CUSTOM_DOMAIN" => Some("example.com".into()),
            "PATH_ROUTING" => Some("proxy.example.com".into()),
            "ROUTES" => Some(
                r#"{"a.example.com": {"upstream": "http://127.0.0.1:5000", "docker_hub": true, "registry": "hub.registry.test"}}"#
                    .into(),
            ),
            _ => None,
        })
        .unwrap()
    }

    #[test]
    fn repository_names_route_by_ns_prefix_or_default() {
        let c = config();
        let (u, via, name) = resolve(&c, "ghcr.io/org/app", None).unwrap();
        assert_eq!(
            (u.base.as_str(), via.registry, via.prefixed, name),
            ("https://ghcr.io", "ghcr.io", true, "org/app")
        );
        let (u, via, name) = resolve(&c, "library/nginx", None).unwrap();
        assert_eq!(
            (u.base.as_str(), via.registry, via.prefixed, name),
            (
                "https://registry-1.docker.io",
                "docker.io",
                false,
                "library/nginx"
            )
        );
        let (u, via, name) = resolve(&c, "org/app", Some("quay.io")).unwrap();
        assert_eq!(
            (u.base.as_str(), via.prefixed, name),
            ("https://quay.io", false, "org/app")
        );
        let (u, _, name) = resolve(&c, "hub.registry.test/library/hello", None).unwrap();
        assert_eq!(
            (u.base.as_str(), name),
            ("http://127.0.0.1:5000", "library/hello")
        );
        // never anything outside the table
        for (name, ns) in [
            ("evil.example.org/x/y", None),
            ("localhost/x", None),
            ("x/y", Some("evil.example.org")),
        ] {
            assert_eq!(
                resolve(&c, name, ns).unwrap_err().status_code(),
                (404, "NAME_UNKNOWN")
            );
        }
    }

    #[test]
    fn token_requests_route_by_ns_or_scope_prefix() {
        let c = config();
        let (u, via) = resolve_auth(&c, "service=x&scope=repository:ghcr.io/org/app:pull").unwrap();
        assert_eq!((u.base.as_str(), via.prefixed), ("https://ghcr.io", true));
        let (u, via) = resolve_auth(&c, "scope=repository:org/app:pull&ns=quay.io").unwrap();
        assert_eq!((u.base.as_str(), via.prefixed), ("https://quay.io", false));
        let (u, _) = resolve_auth(&c, "scope=repository:library/hello:pull").unwrap();
        assert_eq!(u.base, "https://registry-1.docker.io");
        let (u, _) = resolve_auth(&c, "").unwrap();
        assert_eq!(u.base, "https://registry-1.docker.io");
        assert!(matches!(
            resolve_auth(
                &c,
                "scope=repository:ghcr.io/a:pull&scope=repository:quay.io/b:pull"
            ),
            Err(ProxyError::BadRequest(_))
        ));
        assert!(matches!(
            resolve_auth(&c, "scope=repository:evil.org/a:pull"),
            Err(ProxyError::RegistryNotRouted(_))
        ));
    }

    #[test]
    fn credentials_go_to_the_default_registry_only() {
        let c = config();
        let via = Some(Via {
            registry: "x",
            prefixed: true,
        });
        let allowed = |name: &str| credentials_for(&c, c.registry(name).unwrap(), via);
        assert!(allowed("docker.io"));
        assert!(allowed("index.docker.io"));
        assert!(!allowed("ghcr.io"));
        assert!(!allowed("hub.registry.test"));
        // a host route fronts one registry: its credentials are its own
        assert!(credentials_for(&c, c.registry("ghcr.io").unwrap(), None));
    }

    #[test]
    fn names_are_translated_both_ways() {
        let via = Via {
            registry: "ghcr.io",
            prefixed: true,
        };
        assert_eq!(
            strip_scopes(
                "repository:ghcr.io/org/app:pull,push repository:other/x:pull registry:catalog:*",
                via
            ),
            "repository:org/app:pull,push repository:other/x:pull registry:catalog:*"
        );
        assert_eq!(
            prefix_scopes("repository:org/app:pull", via),
            "repository:ghcr.io/org/app:pull"
        );
        let plain = Via {
            registry: "ghcr.io",
            prefixed: false,
        };
        assert_eq!(
            prefix_scopes("repository:org/app:pull", plain),
            "repository:org/app:pull"
        );
        assert_eq!(
            prefix_path("/v2/org/app/blobs/uploads/u1?_state=x", via),
            "/v2/ghcr.io/org/app/blobs/uploads/u1?_state=x"
        );
        assert_eq!(
            prefix_path("/v2/org/app/blobs/uploads/u1", plain),
            "/v2/org/app/blobs/uploads/u1"
        );
        assert_eq!(
            realm("https://p.example.com", Some(via)),
            "https://p.example.com/v2/auth?ns=ghcr.io"
        );
        assert_eq!(
            realm("https://p.example.com", None),
            "https://p.example.com/v2/auth"
        );
    }

    #[test]
    fn ns_is_for_the_proxy_only() {
        assert_eq!(
            ns_param(Some("ns=docker.io&x=1")).as_deref(),
            Some("docker.io")
        );
        assert_eq!(ns_param(Some("x=1")), None);
        assert_eq!(without_ns("ns=docker.io").as_deref(), None);
        assert_eq!(
            without_ns("n=1&ns=docker.io&last=b").as_deref(),
            Some("n=1&last=b")
        );
        assert_eq!(without_ns("n=1").as_deref(), Some("n=1"));
    }
}
