//! One host for every registry (`PATH_ROUTING`): which registry a request addresses, from
//! containerd's `?ns=<registry>` (mirror requests) or a registry prefix in the repository name
//! (`/v2/ghcr.io/org/app/…`), and the translation of names both ways so that a client never
//! sees the upstream's names. Only registries of the route table are reachable: anything else
//! is refused before a request leaves.

use crate::config::Config;
use crate::error::ProxyError;
use crate::routes::{By, Route, Via};
use url::form_urlencoded;

/// Docker's rule: a first name component with a `.` or `:`, or `localhost`, is a registry.
pub fn looks_like_registry(component: &str) -> bool {
    component.contains(['.', ':']) || component == "localhost"
}

fn route<'c>(config: &'c Config, name: &str, by: By) -> Result<Route<'c>, ProxyError> {
    let (registry, upstream) = config
        .registry(name)
        .ok_or_else(|| ProxyError::RegistryNotRouted(name.to_string()))?;
    Ok(Route {
        upstream,
        via: Some(Via { registry, by }),
    })
}

fn default_route(config: &Config) -> Result<Route<'_>, ProxyError> {
    route(config, &config.default_registry, By::Default)
}

/// A repository request: its route, and the repository's name upstream.
pub fn resolve<'c, 'n>(
    config: &'c Config,
    name: &'n str,
    ns: Option<&str>,
) -> Result<(Route<'c>, &'n str), ProxyError> {
    if let Some(ns) = ns {
        return Ok((route(config, ns, By::Ns)?, name));
    }
    if let Some((first, rest)) = name.split_once('/') {
        if looks_like_registry(first) {
            return Ok((route(config, first, By::Prefix)?, rest));
        }
    }
    Ok((default_route(config)?, name))
}

/// `/v2/`: the registry containerd names with `ns`, else the default registry. A version
/// check without `ns` is not for one registry: its challenge must not name one (see `realm`).
pub fn resolve_version_check<'c>(
    config: &'c Config,
    ns: Option<&str>,
) -> Result<Route<'c>, ProxyError> {
    match ns {
        Some(ns) => route(config, ns, By::Ns),
        None => default_route(config),
    }
}

/// `/v2/auth`: the registry the scopes' prefix names, else the one of `ns`, else the default.
/// A prefix decides over `ns`: clients (docker, podman, skopeo) reuse one realm for every
/// repository of a host, whatever request it came from. `params` is the query string (and,
/// for a POST, the form after it, joined by `&`).
pub fn resolve_token<'c>(config: &'c Config, params: &str) -> Result<Route<'c>, ProxyError> {
    let mut ns: Option<String> = None;
    let mut prefixed: Option<Route<'c>> = None;
    let mut unknown: Option<String> = None;
    for (k, v) in form_urlencoded::parse(params.as_bytes()) {
        match &*k {
            "ns" if !v.is_empty() => ns = Some(v.into_owned()),
            "scope" => {
                for scope in v.split(' ') {
                    let Some(first) = scope_name(scope)
                        .and_then(|n| n.split_once('/'))
                        .map(|(f, _)| f)
                        .filter(|f| looks_like_registry(f))
                    else {
                        continue;
                    };
                    let Some((registry, _)) = config.registry(first) else {
                        unknown.get_or_insert_with(|| first.to_string());
                        continue;
                    };
                    match prefixed.and_then(|r| r.via) {
                        Some(via) if via.registry != registry => {
                            return Err(ProxyError::BadRequest(format!(
                                "one token request for two registries ({}, {registry})",
                                via.registry
                            )))
                        }
                        _ => prefixed = Some(route(config, first, By::Prefix)?),
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(route) = prefixed {
        return Ok(route);
    }
    match (ns, unknown) {
        // under `ns` a registry-like first component is a name of that registry's own
        (Some(ns), _) => route(config, &ns, By::Ns),
        (None, Some(unknown)) => Err(ProxyError::RegistryNotRouted(unknown)),
        (None, None) => default_route(config),
    }
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
    if !via.prefixed() {
        return scopes.to_string();
    }
    map_scope_names(scopes, |name| format!("{}/{name}", via.registry))
}

/// Upstream -> client, for a `Location` path: `/v2/org/app/blobs/uploads/x` ->
/// `/v2/ghcr.io/org/app/blobs/uploads/x` when the client names repositories with a prefix.
pub fn prefix_path(path_and_query: &str, via: Via<'_>) -> String {
    match path_and_query.strip_prefix("/v2/") {
        Some(rest) if via.prefixed() => format!("/v2/{}/{rest}", via.registry),
        _ => path_and_query.to_string(),
    }
}

/// The proxy's token realm for a request routed this way. Only a request that `ns` routed
/// carries the registry in the realm: its token requests have nothing else to name it by
/// (the names have no prefix). A prefixed name travels in the scope, and a realm that named
/// the default registry would send every other registry's token requests there.
pub fn realm(origin: &str, via: Option<Via<'_>>) -> String {
    match via {
        Some(Via {
            registry,
            by: By::Ns,
        }) => format!("{origin}/v2/auth?ns={registry}"),
        _ => format!("{origin}/v2/auth"),
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
        crate::testing::path_routing(&[(
            "ROUTES",
            r#"{"a.example.com": {"upstream": "http://127.0.0.1:5000", "docker_hub": true, "registry": "hub.registry.test"}}"#,
        )])
    }

    fn via(route: Route<'_>) -> (&str, &str, By) {
        let via = route.via.unwrap();
        (route.upstream.base.as_str(), via.registry, via.by)
    }

    #[test]
    fn repository_names_route_by_ns_prefix_or_default() {
        let c = config();
        let (r, name) = resolve(&c, "ghcr.io/org/app", None).unwrap();
        assert_eq!(
            (via(r), name),
            (("https://ghcr.io", "ghcr.io", By::Prefix), "org/app")
        );
        let (r, name) = resolve(&c, "library/nginx", None).unwrap();
        assert_eq!(
            (via(r), name),
            (
                ("https://registry-1.docker.io", "docker.io", By::Default),
                "library/nginx"
            )
        );
        let (r, name) = resolve(&c, "org/app", Some("quay.io")).unwrap();
        assert_eq!(
            (via(r), name),
            (("https://quay.io", "quay.io", By::Ns), "org/app")
        );
        let (r, name) = resolve(&c, "hub.registry.test/library/hello", None).unwrap();
        assert_eq!(
            (r.upstream.base.as_str(), name),
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
    fn version_checks_route_by_ns_or_default() {
        let c = config();
        assert_eq!(
            via(resolve_version_check(&c, Some("quay.io")).unwrap()),
            ("https://quay.io", "quay.io", By::Ns)
        );
        assert_eq!(
            via(resolve_version_check(&c, None).unwrap()),
            ("https://registry-1.docker.io", "docker.io", By::Default)
        );
        assert!(matches!(
            resolve_version_check(&c, Some("evil.org")),
            Err(ProxyError::RegistryNotRouted(_))
        ));
    }

    #[test]
    fn token_requests_route_by_scope_prefix_then_ns() {
        let c = config();
        let r = resolve_token(&c, "service=x&scope=repository:ghcr.io/org/app:pull").unwrap();
        assert_eq!(via(r), ("https://ghcr.io", "ghcr.io", By::Prefix));
        let r = resolve_token(&c, "scope=repository:org/app:pull&ns=quay.io").unwrap();
        assert_eq!(via(r), ("https://quay.io", "quay.io", By::Ns));
        let r = resolve_token(&c, "scope=repository:library/hello:pull").unwrap();
        assert_eq!(
            via(r),
            ("https://registry-1.docker.io", "docker.io", By::Default)
        );
        let r = resolve_token(&c, "").unwrap();
        assert_eq!(r.upstream.base, "https://registry-1.docker.io");
        // a realm that carries another registry's ns does not win over the scope's prefix
        // (docker and podman reuse the realm of the host's version check for every pull)
        let r = resolve_token(
            &c,
            "ns=docker.io&scope=repository:ghcr.io/org/app:pull&service=cloudflare-docker-proxy",
        )
        .unwrap();
        assert_eq!(via(r), ("https://ghcr.io", "ghcr.io", By::Prefix));
        // under ns, a dotted first component that is not a registry of the table is a name
        let r = resolve_token(&c, "ns=quay.io&scope=repository:my.org/app:pull").unwrap();
        assert_eq!(via(r), ("https://quay.io", "quay.io", By::Ns));
        assert!(matches!(
            resolve_token(
                &c,
                "scope=repository:ghcr.io/a:pull&scope=repository:quay.io/b:pull"
            ),
            Err(ProxyError::BadRequest(_))
        ));
        assert!(matches!(
            resolve_token(
                &c,
                "scope=repository:ghcr.io/a:pull repository:quay.io/b:pull"
            ),
            Err(ProxyError::BadRequest(_))
        ));
        assert!(matches!(
            resolve_token(&c, "scope=repository:evil.org/a:pull"),
            Err(ProxyError::RegistryNotRouted(_))
        ));
        assert!(matches!(
            resolve_token(&c, "ns=evil.org&scope=repository:a/b:pull"),
            Err(ProxyError::RegistryNotRouted(_))
        ));
        // each prefix is stripped by its own spelling: two spellings are refused too
        assert!(matches!(
            resolve_token(
                &c,
                "scope=repository:docker.io/a/b:pull&scope=repository:index.docker.io/c/d:pull",
            ),
            Err(ProxyError::BadRequest(_))
        ));
    }

    #[test]
    fn names_are_translated_both_ways() {
        let via = Via {
            registry: "ghcr.io",
            by: By::Prefix,
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
            by: By::Ns,
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
    }

    #[test]
    fn only_ns_routed_requests_name_the_registry_in_the_realm() {
        let origin = "https://p.example.com";
        let with = |by| {
            realm(
                origin,
                Some(Via {
                    registry: "ghcr.io",
                    by,
                }),
            )
        };
        assert_eq!(with(By::Ns), "https://p.example.com/v2/auth?ns=ghcr.io");
        assert_eq!(with(By::Prefix), "https://p.example.com/v2/auth");
        assert_eq!(with(By::Default), "https://p.example.com/v2/auth");
        assert_eq!(realm(origin, None), "https://p.example.com/v2/auth");
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
