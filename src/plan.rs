//! The route phase: from a request's URL to what the proxy will do with it.

use crate::classify::{classify, library_path, Endpoint};
use crate::config::Config;
use crate::error::ProxyError;
use crate::routes::Upstream;
use url::Url;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan<'c> {
    /// Answer with a redirect of our own (Docker Hub `library/` completion).
    Redirect { status: u16, location: String },
    /// `/v2/`: ask the upstream, answer a 401 with the proxy's challenge.
    Base { upstream: &'c Upstream },
    /// `/v2/auth`: get a token from the upstream's realm.
    Auth { upstream: &'c Upstream },
    /// `/` from a browser: the landing page for this host.
    Landing { upstream: &'c Upstream },
    /// Anything else of the registry API: forward to `target`.
    Forward {
        upstream: &'c Upstream,
        target: String,
    },
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
    let upstream = config.route(url.host_str().unwrap_or(""))?;
    let path = url.path();
    if path == "/" && matches!(method, "GET" | "HEAD") {
        // Browsers get the landing page; a registry client that strays here is sent to the API.
        return Ok(if wants_html {
            Plan::Landing { upstream }
        } else {
            Plan::Redirect {
                status: 301,
                location: proxy_origin(url) + "/v2/",
            }
        });
    }
    match classify(path)? {
        Endpoint::Base => Ok(Plan::Base { upstream }),
        Endpoint::Auth => Ok(Plan::Auth { upstream }),
        Endpoint::Repository { name, rest, .. } if upstream.docker_hub => {
            match library_path(name, rest) {
                Some(path) => {
                    // absolute, as the original sent it: every client resolves it the same way
                    let mut location = proxy_origin(url) + &path;
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
                    Ok(Plan::Redirect { status, location })
                }
                None => Ok(forward(upstream, url)),
            }
        }
        Endpoint::Repository { .. } | Endpoint::OtherApi => Ok(forward(upstream, url)),
    }
}

fn forward<'c>(upstream: &'c Upstream, url: &Url) -> Plan<'c> {
    let mut target = String::with_capacity(upstream.base.len() + url.path().len() + 64);
    target.push_str(&upstream.base);
    target.push_str(url.path());
    if let Some(q) = url.query() {
        target.push('?');
        target.push_str(q);
    }
    Plan::Forward { upstream, target }
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
            matches!(run("GET", "https://DOCKER.example.com:8443/v2/"), Ok(Plan::Base { upstream }) if upstream.docker_hub)
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
