//! The route phase: from a request's URL to what the proxy will do with it.

use crate::classify::{classify, library_path, Endpoint};
use crate::config::Config;
use crate::error::ProxyError;
use crate::namespace::{ns_param, prefix_path, resolve, resolve_auth, without_ns, Via};
use crate::routes::Upstream;
use url::Url;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan<'c> {
    /// Answer with a redirect of our own (Docker Hub `library/` completion).
    Redirect { status: u16, location: String },
    /// `/v2/`: ask the upstream, answer a 401 with the proxy's challenge.
    Base {
        upstream: &'c Upstream,
        via: Option<Via<'c>>,
    },
    /// `/v2/auth`: get a token from the upstream's realm.
    Auth { upstream: &'c Upstream },
    /// `/v2/auth` on a path-routing host: the registry comes from the parameters (`ns`,
    /// scope prefixes), the POST form included (see `namespace::resolve_auth`).
    AuthAny,
    /// `/` from a browser: the landing page for this host.
    Landing { upstream: &'c Upstream },
    /// `/` from a browser on a path-routing host.
    LandingAll,
    /// Anything else of the registry API: forward to `target`.
    Forward {
        upstream: &'c Upstream,
        target: String,
        /// Set on a path-routing host: how the client named the registry.
        via: Option<Via<'c>>,
    },
}

impl<'c> Plan<'c> {
    /// The upstream this plan involves, if any.
    pub fn upstream(&self) -> Option<&'c Upstream> {
        match self {
            Plan::Redirect { .. } | Plan::AuthAny | Plan::LandingAll => None,
            Plan::Landing { upstream }
            | Plan::Base { upstream, .. }
            | Plan::Auth { upstream }
            | Plan::Forward { upstream, .. } => Some(upstream),
        }
    }
}

/// `scheme://host[:port]` of the request, as the client addressed the proxy. Keeping the port
/// is what lets clients use a proxy on a port other than 443.
pub fn proxy_origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// `wants_html`: the request's `Accept` asks for a web page (see `landing::wants_html`).
pub fn plan<'c>(
    config: &'c Config,
    method: &str,
    url: &Url,
    wants_html: bool,
) -> Result<Plan<'c>, ProxyError> {
    let host = url.host_str().unwrap_or("");
    if config.is_path_host(host) {
        return plan_path_host(config, method, url, wants_html);
    }
    let upstream = config.route(host)?;
    let path = url.path();
    if path == "/" && matches!(method, "GET" | "HEAD") {
        // Browsers get the landing page; a registry client that strays here is sent to the API.
        return Ok(if wants_html {
            Plan::Landing { upstream }
        } else {
            to_api(url)
        });
    }
    match classify(path)? {
        Endpoint::Base => Ok(Plan::Base {
            upstream,
            via: None,
        }),
        Endpoint::Auth => Ok(Plan::Auth { upstream }),
        Endpoint::Repository { name, rest, .. } if upstream.docker_hub => {
            match library_path(name, rest) {
                Some(path) => Ok(library_redirect(method, url, &path)),
                None => Ok(forward(upstream, url, None, None)),
            }
        }
        Endpoint::Repository { .. } | Endpoint::OtherApi => Ok(forward(upstream, url, None, None)),
    }
}

/// A path-routing host: every registry of the table, by name prefix or `?ns=`.
fn plan_path_host<'c>(
    config: &'c Config,
    method: &str,
    url: &Url,
    wants_html: bool,
) -> Result<Plan<'c>, ProxyError> {
    if url.path() == "/" && matches!(method, "GET" | "HEAD") {
        return Ok(if wants_html {
            Plan::LandingAll
        } else {
            to_api(url)
        });
    }
    let ns = ns_param(url.query());
    match classify(url.path())? {
        Endpoint::Base => {
            let (upstream, via) = resolve_auth(config, url.query().unwrap_or(""))?;
            Ok(Plan::Base {
                upstream,
                via: Some(via),
            })
        }
        Endpoint::Auth => Ok(Plan::AuthAny),
        Endpoint::Repository { name, rest, .. } => {
            let (upstream, via, upstream_name) = resolve(config, name, ns.as_deref())?;
            if upstream_name.is_empty() {
                return Err(ProxyError::NameInvalid(name.to_string()));
            }
            if upstream.docker_hub {
                if let Some(path) = library_path(upstream_name, rest) {
                    // keep the client's way of naming the registry
                    let path = if via.prefixed {
                        prefix_path(&path, via)
                    } else {
                        path
                    };
                    return Ok(library_redirect(method, url, &path));
                }
            }
            let path = format!("/v2/{upstream_name}{rest}");
            Ok(forward(upstream, url, Some(&path), Some(via)))
        }
        // `_catalog` and extensions have no name to route by
        Endpoint::OtherApi => Err(ProxyError::NotFound),
    }
}

fn to_api<'c>(url: &Url) -> Plan<'c> {
    Plan::Redirect {
        status: 301,
        location: proxy_origin(url) + "/v2/",
    }
}

fn library_redirect<'c>(method: &str, url: &Url, path: &str) -> Plan<'c> {
    // absolute, as the original sent it: every client resolves it the same way
    let mut location = proxy_origin(url) + path;
    if let Some(q) = url.query() {
        location.push('?');
        location.push_str(q);
    }
    // 308 keeps the method and body of a push; GET and HEAD keep the original's 301.
    let status = if matches!(method, "GET" | "HEAD") {
        301
    } else {
        308
    };
    Plan::Redirect { status, location }
}

/// `path`: the upstream-side path when it differs from the request's (path routing), whose
/// `ns` parameter is then the proxy's and is not passed on.
fn forward<'c>(
    upstream: &'c Upstream,
    url: &Url,
    path: Option<&str>,
    via: Option<Via<'c>>,
) -> Plan<'c> {
    let path = path.unwrap_or(url.path());
    let mut target = String::with_capacity(upstream.base.len() + path.len() + 64);
    target.push_str(&upstream.base);
    target.push_str(path);
    let query = match via {
        Some(_) => url.query().and_then(without_ns),
        None => url.query().map(str::to_string),
    };
    if let Some(q) = query {
        target.push('?');
        target.push_str(&q);
    }
    Plan::Forward {
        upstream,
        target,
        via,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_vars(|name| match name {
            "CUSTOM_DOMAIN" => Some("example.com".into()),
            "ROUTES" => Some(r#"{"open.example.test": "http://127.0.0.1:5001"}"#.into()),
            _ => None,
        })
        .unwrap()
    }

    fn run(method: &str, url: &str) -> Result<Plan<'static>, ProxyError> {
        let c: &'static Config = Box::leak(Box::new(config()));
        plan(c, method, &Url::parse(url).unwrap(), false)
    }

    fn target(p: Result<Plan<'_>, ProxyError>) -> String {
        match p {
            Ok(Plan::Forward { target, .. }) => target,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn routes_by_host_ignoring_port_and_case() {
        assert!(
            matches!(run("GET", "https://DOCKER.example.com:8443/v2/"), Ok(Plan::Base { upstream, .. }) if upstream.docker_hub)
        );
        assert!(matches!(
            run("GET", "https://quay.example.com/v2/auth?scope=x"),
            Ok(Plan::Auth { .. })
        ));
        assert_eq!(
            run("GET", "https://nope.example.com/v2/"),
            Err(ProxyError::UnknownHost("nope.example.com".into()))
        );
    }

    #[test]
    fn forward_keeps_path_and_query() {
        assert_eq!(
            target(run(
                "GET",
                "https://open.example.test/v2/library/hello/tags/list?n=10&last=b"
            )),
            "http://127.0.0.1:5001/v2/library/hello/tags/list?n=10&last=b"
        );
        assert_eq!(
            target(run(
                "HEAD",
                "https://quay.example.com/v2/org/app/manifests/sha256:ab?ns=quay.io"
            )),
            "https://quay.io/v2/org/app/manifests/sha256:ab?ns=quay.io"
        );
        assert_eq!(
            target(run(
                "GET",
                "https://docker.example.com/v2/library/busybox/blobs/sha256:00"
            )),
            "https://registry-1.docker.io/v2/library/busybox/blobs/sha256:00"
        );
        assert_eq!(
            target(run("GET", "https://quay.example.com/v2/_catalog?n=1")),
            "https://quay.io/v2/_catalog?n=1"
        );
    }

    #[test]
    fn docker_hub_library_redirects() {
        for (method, status) in [("GET", 301), ("HEAD", 301), ("PUT", 308)] {
            assert_eq!(
                run(
                    method,
                    "https://docker.example.com/v2/busybox/manifests/latest?x=1"
                ),
                Ok(Plan::Redirect {
                    status,
                    location: "https://docker.example.com/v2/library/busybox/manifests/latest?x=1"
                        .into()
                })
            );
        }
        for path in ["/v2/busybox/blobs/sha256:00", "/v2/busybox/tags/list"] {
            assert!(
                matches!(
                    run("GET", &format!("https://docker.example.com{path}")),
                    Ok(Plan::Redirect { .. })
                ),
                "{path}"
            );
        }
        // not on other registries
        assert!(matches!(
            run(
                "GET",
                "https://quay.example.com/v2/busybox/manifests/latest"
            ),
            Ok(Plan::Forward { .. })
        ));
    }

    #[test]
    fn root_is_a_page_for_browsers_and_a_redirect_for_clients() {
        let c: &'static Config = Box::leak(Box::new(config()));
        let url = Url::parse("https://quay.example.com:8443/").unwrap();
        assert!(matches!(
            plan(c, "GET", &url, true),
            Ok(Plan::Landing { upstream }) if upstream.base == "https://quay.io"
        ));
        assert_eq!(
            plan(c, "HEAD", &url, false),
            Ok(Plan::Redirect {
                status: 301,
                location: "https://quay.example.com:8443/v2/".into()
            })
        );
        assert_eq!(plan(c, "POST", &url, true), Err(ProxyError::NotFound));
        assert!(matches!(
            plan(
                c,
                "GET",
                &Url::parse("https://nope.example.com/").unwrap(),
                true
            ),
            Err(ProxyError::UnknownHost(_))
        ));
    }

    #[test]
    fn bad_paths_never_reach_upstream() {
        assert_eq!(
            run("GET", "https://docker.example.com/favicon.ico"),
            Err(ProxyError::NotFound)
        );
        assert!(matches!(
            run("GET", "https://docker.example.com/v2/UP/manifests/x"),
            Err(ProxyError::NameInvalid(_))
        ));
    }

    fn path_config() -> &'static Config {
        Box::leak(Box::new(
            Config::from_vars(|name| match name {
                "CUSTOM_DOMAIN" => Some("example.com".into()),
                "PATH_ROUTING" => Some("proxy.example.com".into()),
                _ => None,
            })
            .unwrap(),
        ))
    }

    #[test]
    fn path_routing_host_reaches_every_registry_of_the_table() {
        let c = path_config();
        let p = |m: &str, u: &str| plan(c, m, &Url::parse(u).unwrap(), false);
        match p(
            "GET",
            "https://proxy.example.com:8443/v2/ghcr.io/org/app/manifests/1.0?x=1",
        )
        .unwrap()
        {
            Plan::Forward { target, via, .. } => {
                assert_eq!(target, "https://ghcr.io/v2/org/app/manifests/1.0?x=1");
                assert_eq!(
                    via,
                    Some(Via {
                        registry: "ghcr.io",
                        prefixed: true
                    })
                );
            }
            other => panic!("{other:?}"),
        }
        // containerd mirror requests: ns routes and is not passed on
        match p(
            "HEAD",
            "https://proxy.example.com/v2/org/app/manifests/1.0?ns=quay.io",
        )
        .unwrap()
        {
            Plan::Forward { target, via, .. } => {
                assert_eq!(target, "https://quay.io/v2/org/app/manifests/1.0");
                assert_eq!(
                    via,
                    Some(Via {
                        registry: "quay.io",
                        prefixed: false
                    })
                );
            }
            other => panic!("{other:?}"),
        }
        // no prefix: the default registry, Docker Hub, with library/ completion kept
        assert_eq!(
            p("GET", "https://proxy.example.com/v2/nginx/manifests/1").unwrap(),
            Plan::Redirect {
                status: 301,
                location: "https://proxy.example.com/v2/library/nginx/manifests/1".into()
            }
        );
        assert_eq!(
            p(
                "GET",
                "https://proxy.example.com/v2/docker.io/nginx/tags/list?n=1"
            )
            .unwrap(),
            Plan::Redirect {
                status: 301,
                location: "https://proxy.example.com/v2/docker.io/library/nginx/tags/list?n=1"
                    .into()
            }
        );
        assert!(matches!(
            p("GET", "https://proxy.example.com/v2/library/nginx/blobs/sha256:00").unwrap(),
            Plan::Forward { target, .. } if target == "https://registry-1.docker.io/v2/library/nginx/blobs/sha256:00"
        ));
        assert_eq!(
            p("GET", "https://proxy.example.com/v2/auth?scope=x").unwrap(),
            Plan::AuthAny
        );
        assert!(matches!(
            p("GET", "https://proxy.example.com/v2/").unwrap(),
            Plan::Base { via: Some(_), .. }
        ));
        assert!(matches!(
            p("GET", "https://proxy.example.com/").unwrap(),
            Plan::Redirect { .. }
        ));
        assert_eq!(
            plan(
                c,
                "GET",
                &Url::parse("https://proxy.example.com/").unwrap(),
                true
            )
            .unwrap(),
            Plan::LandingAll
        );
        // nothing outside the table, no request made
        assert_eq!(
            p(
                "GET",
                "https://proxy.example.com/v2/evil.example.org/x/manifests/1"
            )
            .unwrap_err(),
            ProxyError::RegistryNotRouted("evil.example.org".into())
        );
        assert_eq!(
            p(
                "GET",
                "https://proxy.example.com/v2/x/manifests/1?ns=evil.example.org"
            )
            .unwrap_err(),
            ProxyError::RegistryNotRouted("evil.example.org".into())
        );
        // host routes are untouched
        assert!(matches!(
            p("GET", "https://docker.example.com/v2/ghcr.io/org/app/manifests/1").unwrap(),
            Plan::Forward { target, via: None, .. } if target == "https://registry-1.docker.io/v2/ghcr.io/org/app/manifests/1"
        ));
    }

    #[test]
    fn origin_keeps_non_default_port() {
        assert_eq!(
            proxy_origin(&Url::parse("https://d.example.com:8443/v2/").unwrap()),
            "https://d.example.com:8443"
        );
        assert_eq!(
            proxy_origin(&Url::parse("https://d.example.com:443/v2/").unwrap()),
            "https://d.example.com"
        );
    }
}
