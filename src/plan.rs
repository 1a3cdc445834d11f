//! The route phase: from a request's method and URL to what the proxy will do with it, as plain
//! data. The edge shell turns a plan into I/O and decides nothing of its own.

use crate::classify::{classify, library_path, valid_tag, Access, Endpoint, Resource};
use crate::config::Config;
use crate::credentials::Credentials;
use crate::error::ProxyError;
use crate::landing::Landing;
use crate::namespace::{ns_param, prefix_path, resolve, resolve_version_check, without_ns};
use crate::routes::{Route, Upstream};
use crate::search::{self, Search};
use crate::stats::STATS_PATH;
use url::Url;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan<'c> {
    /// A redirect of the proxy's own (Docker Hub `library/` completion, `/` to `/v2/`).
    Redirect { status: u16, location: String },
    /// `/` from a browser: the landing page of a host route's registry, or of every registry
    /// of the table (`None`: a path-routing host).
    Landing(Option<&'c Upstream>),
    /// `/v1/search`: the registry's search service (search.rs).
    Search(Search<'c>),
    /// `/v2/auth`: a token from the upstream's token service.
    Token(TokenRoute<'c>),
    /// One request upstream: the version check `/v2/`, or anything else of the registry API.
    Upstream(Forward<'c>),
    /// `/_stats`, when the page is configured (stats.rs); its door is the page's token.
    Stats,
}

/// Which registry a token request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRoute<'c> {
    /// The registry of a host route.
    Fixed(Route<'c>),
    /// A path-routing host's: the request's parameters name it, the form of a POST included
    /// (`namespace::resolve_token`), so the form is read first.
    ByParams,
}

/// One request to the upstream, and what becomes of its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward<'c> {
    pub route: Route<'c>,
    /// The upstream URL: its base, the path (upstream names), the query (without the proxy's
    /// `ns`).
    pub url: String,
    /// The client's method; the version check is always a `GET`.
    pub method: String,
    /// What classification found; `None` for `/v2/` and other API paths (`_catalog`).
    pub repository: Option<Repository>,
    pub access: Access,
    pub credentials: Credentials,
    /// The client's headers go along; the version check sends its credentials only.
    pub client_headers: bool,
    /// The client's body goes along (a push).
    pub body: bool,
    /// Upstream redirects are followed here. A streamed body cannot be sent twice, so the
    /// redirects of a request with one go back to the client.
    pub follow_redirects: bool,
    /// A `Location` naming the upstream is pointed back at the proxy (upload sessions).
    pub rewrite_location: bool,
}

/// A repository request as classification found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// The name upstream: without a path-routing prefix, with Docker Hub's `library/`.
    pub name: String,
    pub resource: Resource,
    /// `None` for uploads and tag lists.
    pub reference: Option<Reference>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(String),
}

/// What the upstream response phase does with an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// A 401: the proxy's challenge replaces the upstream's (a Basic one passes as it is).
    Challenge,
    /// A `Location` naming the upstream is pointed at the proxy.
    Location,
    /// The answer passes untouched.
    None,
}

/// The most of an upstream answer of unknown length that is read whole (see
/// `Forward::sized_answer`). Manifests are at most 4 MiB at distribution and containerd.
pub const MAX_UNSIZED_ANSWER: usize = 16 << 20;

impl Forward<'_> {
    /// Whether it is the version check, `/v2/`.
    pub fn is_version_check(&self) -> bool {
        self.repository.is_none()
            && self.url.strip_suffix("/v2/") == Some(self.route.upstream.base.as_str())
    }

    /// Whether it asks for a manifest (what Docker Hub counts as a pull, and answers with its
    /// rate limit's headers).
    pub fn asks_manifest(&self) -> bool {
        self.repository
            .as_ref()
            .is_some_and(|r| r.resource == Resource::Manifest)
    }

    /// Whether an answer without `Content-Length` is read whole first, at most this many bytes,
    /// to reach the client with a length: the runtime ends a body whose upstream was cut off as
    /// if it were complete (workerd#6818), and a client counts a length, so a cut manifest, tag
    /// list or catalog must be a 502, not a short 200. Blobs stream (they may be any size, and
    /// every client checks their digest); a `HEAD` and a write have no body to speak of.
    pub fn sized_answer(&self, status: u16) -> Option<usize> {
        let blob = self
            .repository
            .as_ref()
            .is_some_and(|r| r.resource == Resource::Blob);
        let body = (200..300).contains(&status) && !(204..=206).contains(&status);
        (self.method == "GET" && body && !blob).then_some(MAX_UNSIZED_ANSWER)
    }

    pub fn rewrite(&self, status: u16) -> Rewrite {
        match status {
            401 => Rewrite::Challenge,
            _ if self.rewrite_location => Rewrite::Location,
            _ => Rewrite::None,
        }
    }
}

impl<'c> Plan<'c> {
    /// The upstream this plan involves, if it is known yet.
    pub fn upstream(&self) -> Option<&'c Upstream> {
        match self {
            Plan::Redirect { .. } | Plan::Token(TokenRoute::ByParams) | Plan::Stats => None,
            Plan::Landing(upstream) => *upstream,
            Plan::Search(search) => Some(search.upstream),
            Plan::Token(TokenRoute::Fixed(route)) => Some(route.upstream),
            Plan::Upstream(forward) => Some(forward.route.upstream),
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
    let path_host = config.is_path_host(host);
    let upstream = if path_host {
        None
    } else {
        Some(config.route(host)?)
    };
    // any other method is answered as on a proxy without the page: nothing says it is there
    if url.path() == STATS_PATH && config.stats.is_some() && matches!(method, "GET" | "HEAD") {
        return Ok(Plan::Stats);
    }
    if url.path() == "/" && matches!(method, "GET" | "HEAD") {
        // Browsers get the landing page; a registry client that strays here is sent to the API.
        return Ok(if wants_html {
            match &config.landing {
                Landing::Recipes => Plan::Landing(upstream),
                Landing::Off => return Err(ProxyError::NotFound),
                Landing::Redirect(to) => Plan::Redirect {
                    status: 302,
                    location: to.clone(),
                },
            }
        } else {
            Plan::Redirect {
                status: 301,
                location: proxy_origin(url) + "/v2/",
            }
        });
    }
    if url.path() == "/v1/search" {
        if !matches!(method, "GET" | "HEAD") {
            return Err(ProxyError::MethodNotAllowed {
                method: method.to_string(),
                allowed: &["GET", "HEAD"],
            });
        }
        return Ok(Plan::Search(search::plan(config, upstream, url.query())?));
    }
    match upstream {
        Some(upstream) => plan_host_route(config, Route::host(upstream), method, url),
        None => plan_path_host(config, method, url),
    }
}

/// The most of a token request's query the proxy reads (scopes, account, service).
pub const MAX_TOKEN_QUERY: usize = 16 * 1024;

/// The path's endpoint, if the API has the method there (a token request's query bounded).
fn endpoint<'u>(method: &str, url: &'u Url) -> Result<Endpoint<'u>, ProxyError> {
    let endpoint = classify(url.path())?;
    let allowed = endpoint.methods();
    if !allowed.contains(&method) {
        return Err(ProxyError::MethodNotAllowed {
            method: method.to_string(),
            allowed,
        });
    }
    if endpoint == Endpoint::Auth && url.query().is_some_and(|q| q.len() > MAX_TOKEN_QUERY) {
        return Err(ProxyError::BadRequest(format!(
            "token request query larger than {MAX_TOKEN_QUERY} bytes"
        )));
    }
    Ok(endpoint)
}

/// A host that fronts one registry.
fn plan_host_route<'c>(
    config: &'c Config,
    route: Route<'c>,
    method: &str,
    url: &Url,
) -> Result<Plan<'c>, ProxyError> {
    match endpoint(method, url)? {
        Endpoint::Base => Ok(Plan::Upstream(version_check(config, route))),
        Endpoint::Auth => Ok(Plan::Token(TokenRoute::Fixed(route))),
        Endpoint::Repository {
            name,
            resource,
            reference,
            rest,
        } => Ok(plan_repository(
            config,
            route,
            method,
            url,
            Repository::classified(name, resource, reference),
            rest,
        )),
        Endpoint::OtherApi => Ok(Plan::Upstream(forward(
            config, route, method, url, None, None,
        ))),
    }
}

/// A path-routing host: every registry of the table, by name prefix or `?ns=`.
fn plan_path_host<'c>(config: &'c Config, method: &str, url: &Url) -> Result<Plan<'c>, ProxyError> {
    let ns = ns_param(url.query());
    match endpoint(method, url)? {
        Endpoint::Base => {
            let route = resolve_version_check(config, ns.as_deref())?;
            Ok(Plan::Upstream(version_check(config, route)))
        }
        Endpoint::Auth => Ok(Plan::Token(TokenRoute::ByParams)),
        Endpoint::Repository {
            name,
            resource,
            reference,
            rest,
        } => {
            let (route, upstream_name) = resolve(config, name, ns.as_deref())?;
            let repository = Repository::classified(upstream_name, resource, reference);
            Ok(plan_repository(
                config, route, method, url, repository, rest,
            ))
        }
        // `_catalog` and extensions have no name to route by
        Endpoint::OtherApi => Err(ProxyError::NotFound),
    }
}

/// A repository request once its route is known: Docker Hub's `library/` completion, or a
/// forward (to the upstream's own names on a path-routing host). `rest`: the path after the
/// name.
fn plan_repository<'c>(
    config: &'c Config,
    route: Route<'c>,
    method: &str,
    url: &Url,
    repository: Repository,
    rest: &str,
) -> Plan<'c> {
    if route.upstream.docker_hub {
        if let Some(path) = library_path(&repository.name, rest) {
            // keep the client's way of naming the registry
            let path = match route.via {
                Some(via) if via.prefixed() => prefix_path(&path, via),
                _ => path,
            };
            return library_redirect(method, url, &path);
        }
    }
    let path = route.via.map(|_| format!("/v2/{}{rest}", repository.name));
    Plan::Upstream(forward(
        config,
        route,
        method,
        url,
        path.as_deref(),
        Some(repository),
    ))
}

impl Repository {
    fn classified(name: &str, resource: Resource, reference: Option<&str>) -> Self {
        Repository {
            name: name.to_string(),
            resource,
            reference: reference.map(|r| {
                if valid_tag(r) {
                    Reference::Tag(r.to_string())
                } else {
                    Reference::Digest(r.to_string())
                }
            }),
        }
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

/// `/v2/`: the upstream decides whether the client must authenticate; only the client's
/// credentials go along, as in the original.
fn version_check<'c>(config: &Config, route: Route<'c>) -> Forward<'c> {
    Forward {
        route,
        url: format!("{}/v2/", route.upstream.base),
        method: "GET".into(),
        repository: None,
        access: Access::Read,
        credentials: Credentials::for_route(config, route),
        client_headers: false,
        body: false,
        follow_redirects: true,
        rewrite_location: false,
    }
}

/// Everything else of the API: method, headers, query and body go upstream as they came.
/// `path`: the upstream-side path when it differs from the request's (path routing), whose
/// `ns` parameter is then the proxy's and is not passed on.
fn forward<'c>(
    config: &Config,
    route: Route<'c>,
    method: &str,
    url: &Url,
    path: Option<&str>,
    repository: Option<Repository>,
) -> Forward<'c> {
    let path = path.unwrap_or(url.path());
    let mut target = String::with_capacity(route.upstream.base.len() + path.len() + 64);
    target.push_str(&route.upstream.base);
    target.push_str(path);
    let query = match route.via {
        Some(_) => url.query().and_then(without_ns),
        None => url.query().map(str::to_string),
    };
    if let Some(q) = query {
        target.push('?');
        target.push_str(&q);
    }
    let reads = matches!(method, "GET" | "HEAD");
    Forward {
        route,
        url: target,
        method: method.to_string(),
        repository,
        access: if reads { Access::Read } else { Access::Write },
        credentials: Credentials::for_route(config, route),
        client_headers: true,
        body: !reads,
        follow_redirects: reads,
        rewrite_location: !reads,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{By, Via};

    fn config() -> &'static Config {
        crate::testing::leaked(&[
            ("CUSTOM_DOMAIN", "example.com"),
            (
                "ROUTES",
                r#"{"open.example.test": "http://127.0.0.1:5001"}"#,
            ),
        ])
    }

    fn run(method: &str, url: &str) -> Result<Plan<'static>, ProxyError> {
        plan(config(), method, &Url::parse(url).unwrap(), false)
    }

    fn forward_of(p: Result<Plan<'_>, ProxyError>) -> Forward<'_> {
        match p {
            Ok(Plan::Upstream(f)) => f,
            other => panic!("{other:?}"),
        }
    }

    fn target(p: Result<Plan<'_>, ProxyError>) -> String {
        forward_of(p).url
    }

    #[test]
    fn the_stats_page_is_planned_only_where_configured_and_otherwise_unknown() {
        let with = crate::testing::leaked(&[
            ("CUSTOM_DOMAIN", "example.com"),
            ("STATS_TOKEN", "a-stats-token-of-some-length"),
            ("STATS_ACCOUNT_ID", "0123abcd"),
            ("STATS_API_TOKEN", "cf-api-secret"),
        ]);
        let url = Url::parse("https://docker.example.com/_stats?token=x").unwrap();
        assert!(matches!(plan(with, "GET", &url, true), Ok(Plan::Stats)));
        assert!(matches!(plan(with, "HEAD", &url, false), Ok(Plan::Stats)));
        // without the page, and for other methods with it, the same answer as any unknown path
        let without = run("GET", "https://docker.example.com/_stats?token=x").unwrap_err();
        for method in ["POST", "PUT", "DELETE"] {
            let other = plan(with, method, &url, false).unwrap_err();
            assert_eq!(other.status_code(), without.status_code(), "{method}");
            assert_eq!(other.to_string(), without.to_string(), "{method}");
        }
        assert_eq!(without.status_code().0, 404);
        // and a wrong token's answer (edge/stats.rs) is that one too
        assert_eq!(ProxyError::NotFound.to_string(), without.to_string());
        assert_eq!(ProxyError::NotFound.status_code(), without.status_code());
    }

    #[test]
    fn manifests_are_told_from_other_requests() {
        let asks = |url: &str| match run("GET", url).unwrap() {
            Plan::Upstream(f) => f.asks_manifest(),
            other => panic!("{url}: {other:?}"),
        };
        assert!(asks("https://docker.example.com/v2/library/a/manifests/1"));
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(!asks(&format!(
            "https://docker.example.com/v2/library/a/blobs/{digest}"
        )));
        assert!(!asks("https://docker.example.com/v2/library/a/tags/list"));
    }

    #[test]
    fn routes_by_host_ignoring_port_and_case() {
        let f = forward_of(run("GET", "https://DOCKER.example.com:8443/v2/"));
        assert!(f.route.upstream.docker_hub);
        assert!(matches!(
            run("GET", "https://quay.example.com/v2/auth?scope=x"),
            Ok(Plan::Token(TokenRoute::Fixed(r))) if r.upstream.base == "https://quay.io" && r.via.is_none()
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
                "https://quay.example.com/v2/org/app/manifests/sha256:0000000000000000000000000000000000000000000000000000000000000000?ns=quay.io"
            )),
            "https://quay.io/v2/org/app/manifests/sha256:0000000000000000000000000000000000000000000000000000000000000000?ns=quay.io"
        );
        assert_eq!(
            target(run(
                "GET",
                "https://docker.example.com/v2/library/busybox/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000"
            )),
            "https://registry-1.docker.io/v2/library/busybox/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000"
        );
        assert_eq!(
            target(run("GET", "https://quay.example.com/v2/_catalog?n=1")),
            "https://quay.io/v2/_catalog?n=1"
        );
    }

    #[test]
    fn the_plan_keeps_what_classification_found() {
        let repo = |url: &str| forward_of(run("GET", url)).repository.unwrap();
        assert_eq!(
            repo("https://docker.example.com/v2/library/busybox/manifests/1.36"),
            Repository {
                name: "library/busybox".into(),
                resource: Resource::Manifest,
                reference: Some(Reference::Tag("1.36".into())),
            }
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            repo(&format!(
                "https://quay.example.com/v2/org/app/manifests/{digest}"
            ))
            .reference,
            Some(Reference::Digest(digest.clone()))
        );
        let blob = repo(&format!(
            "https://quay.example.com/v2/org/app/blobs/{digest}"
        ));
        assert_eq!(
            (blob.resource, blob.reference),
            (Resource::Blob, Some(Reference::Digest(digest.clone())))
        );
        let tags = repo("https://quay.example.com/v2/a/b/c/tags/list");
        assert_eq!(
            (tags.name.as_str(), tags.resource, tags.reference),
            ("a/b/c", Resource::Tags, None)
        );
        assert_eq!(
            repo("https://quay.example.com/v2/org/app/referrers/sha256:0000000000000000000000000000000000000000000000000000000000000000").resource,
            Resource::Referrers
        );
        let upload = forward_of(run(
            "PATCH",
            "https://quay.example.com/v2/org/app/blobs/uploads/5b1c",
        ));
        assert_eq!(upload.access, Access::Write);
        assert_eq!(
            upload.repository.unwrap(),
            Repository {
                name: "org/app".into(),
                resource: Resource::Upload,
                reference: None
            }
        );
        // no repository to speak of
        assert_eq!(
            forward_of(run("GET", "https://quay.example.com/v2/_catalog")).repository,
            None
        );
        assert_eq!(
            forward_of(run("GET", "https://quay.example.com/v2/")).repository,
            None
        );
    }

    #[test]
    fn reads_are_followed_writes_carry_their_body_and_come_back_relocated() {
        let url = "https://quay.example.com/v2/org/app/manifests/v1";
        for method in ["GET", "HEAD"] {
            let f = forward_of(run(method, url));
            assert_eq!(f.method, method);
            assert_eq!(f.access, Access::Read);
            assert!(f.follow_redirects && f.client_headers);
            assert!(!f.body && !f.rewrite_location);
            assert_eq!(f.credentials, Credentials::Client);
            assert_eq!(f.rewrite(200), Rewrite::None);
            assert_eq!(f.rewrite(307), Rewrite::None);
            assert_eq!(f.rewrite(401), Rewrite::Challenge);
        }
        for (method, url) in [
            ("PUT", url),
            ("DELETE", url),
            ("POST", "https://quay.example.com/v2/org/app/blobs/uploads/"),
            (
                "PATCH",
                "https://quay.example.com/v2/org/app/blobs/uploads/u1",
            ),
        ] {
            let f = forward_of(run(method, url));
            assert_eq!(f.method, method);
            assert_eq!(f.access, Access::Write);
            assert!(f.body && f.rewrite_location && f.client_headers);
            assert!(!f.follow_redirects);
            assert_eq!(f.rewrite(202), Rewrite::Location);
            assert_eq!(f.rewrite(307), Rewrite::Location);
            assert_eq!(f.rewrite(401), Rewrite::Challenge);
        }
    }

    #[test]
    fn answers_of_unknown_length_are_read_whole_but_for_blobs() {
        let sized = |method: &str, url: &str, status: u16| {
            forward_of(run(method, url)).sized_answer(status)
        };
        let manifest = "https://quay.example.com/v2/org/app/manifests/v1";
        assert_eq!(sized("GET", manifest, 200), Some(MAX_UNSIZED_ANSWER));
        assert_eq!(
            sized("GET", "https://quay.example.com/v2/org/app/tags/list", 200),
            Some(MAX_UNSIZED_ANSWER)
        );
        assert_eq!(
            sized("GET", "https://quay.example.com/v2/_catalog", 200),
            Some(MAX_UNSIZED_ANSWER)
        );
        assert_eq!(
            sized("GET", "https://quay.example.com/v2/", 200),
            Some(MAX_UNSIZED_ANSWER)
        );
        assert_eq!(
            sized(
                "GET",
                "https://quay.example.com/v2/org/app/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000",
                200
            ),
            None
        );
        assert_eq!(sized("HEAD", manifest, 200), None);
        assert_eq!(sized("PUT", manifest, 201), None);
        for status in [204, 206, 304, 401, 404, 500] {
            assert_eq!(sized("GET", manifest, status), None, "{status}");
        }
    }

    #[test]
    fn the_version_check_is_a_get_with_credentials_only() {
        for method in ["GET", "HEAD"] {
            let f = forward_of(run(method, "https://docker.example.com/v2/"));
            assert_eq!(f.url, "https://registry-1.docker.io/v2/");
            assert_eq!(f.method, "GET");
            assert_eq!(f.credentials, Credentials::Client);
            assert!(!f.client_headers && !f.body && !f.rewrite_location);
            assert!(f.follow_redirects);
        }
    }

    #[test]
    fn methods_the_api_does_not_have_are_refused_before_routing_on() {
        for (method, url) in [
            ("TRACE", "https://quay.example.com/v2/org/app/manifests/v1"),
            ("OPTIONS", "https://quay.example.com/v2/"),
            ("POST", "https://quay.example.com/v2/"),
            ("DELETE", "https://quay.example.com/v2/auth"),
            ("PUT", "https://quay.example.com/v2/org/app/tags/list"),
            ("PATCH", "https://quay.example.com/v2/org/app/manifests/v1"),
            ("POST", "https://quay.example.com/v2/_catalog"),
        ] {
            let plan = run(method, url);
            assert!(
                matches!(plan, Err(ProxyError::MethodNotAllowed { .. })),
                "{method} {url}: {plan:?}"
            );
        }
        assert!(matches!(
            on_path_host(
                "CONNECT",
                "https://proxy.example.com/v2/ghcr.io/org/app/manifests/v1"
            ),
            Err(ProxyError::MethodNotAllowed { .. })
        ));
        // a token request's query is bounded
        let long = format!(
            "https://quay.example.com/v2/auth?scope={}",
            "a".repeat(MAX_TOKEN_QUERY)
        );
        assert!(matches!(run("GET", &long), Err(ProxyError::BadRequest(_))));
        assert!(run("POST", "https://quay.example.com/v2/auth").is_ok());
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
        for path in ["/v2/busybox/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000", "/v2/busybox/tags/list"] {
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
            Ok(Plan::Upstream(_))
        ));
    }

    #[test]
    fn root_is_a_page_for_browsers_and_a_redirect_for_clients() {
        let c = config();
        let url = Url::parse("https://quay.example.com:8443/").unwrap();
        assert!(matches!(
            plan(c, "GET", &url, true),
            Ok(Plan::Landing(Some(upstream))) if upstream.base == "https://quay.io"
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
        Box::leak(Box::new(crate::testing::path_routing(&[])))
    }

    fn on_path_host(method: &str, url: &str) -> Result<Plan<'static>, ProxyError> {
        plan(path_config(), method, &Url::parse(url).unwrap(), false)
    }

    #[test]
    fn path_routing_host_reaches_every_registry_of_the_table() {
        let p = on_path_host;
        let f = forward_of(p(
            "GET",
            "https://proxy.example.com:8443/v2/ghcr.io/org/app/manifests/1.0?x=1",
        ));
        assert_eq!(f.url, "https://ghcr.io/v2/org/app/manifests/1.0?x=1");
        assert_eq!(
            f.route.via,
            Some(Via {
                registry: "ghcr.io",
                by: By::Prefix
            })
        );
        assert_eq!(f.repository.unwrap().name, "org/app");
        // containerd mirror requests: ns routes and is not passed on
        let f = forward_of(p(
            "HEAD",
            "https://proxy.example.com/v2/org/app/manifests/1.0?ns=quay.io",
        ));
        assert_eq!(f.url, "https://quay.io/v2/org/app/manifests/1.0");
        assert_eq!(
            f.route.via,
            Some(Via {
                registry: "quay.io",
                by: By::Ns
            })
        );
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
        let f = forward_of(p(
            "GET",
            "https://proxy.example.com/v2/library/nginx/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ));
        assert_eq!(
            f.url,
            "https://registry-1.docker.io/v2/library/nginx/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000"
        );
        assert_eq!(f.route.via.unwrap().by, By::Default);
        assert_eq!(
            p("GET", "https://proxy.example.com/v2/auth?scope=x").unwrap(),
            Plan::Token(TokenRoute::ByParams)
        );
        assert!(matches!(
            p("GET", "https://proxy.example.com/").unwrap(),
            Plan::Redirect { .. }
        ));
        assert_eq!(
            plan(
                path_config(),
                "GET",
                &Url::parse("https://proxy.example.com/").unwrap(),
                true
            )
            .unwrap(),
            Plan::Landing(None)
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
        assert_eq!(
            p("GET", "https://proxy.example.com/v2/_catalog").unwrap_err(),
            ProxyError::NotFound
        );
        // host routes are untouched
        let f = forward_of(p(
            "GET",
            "https://docker.example.com/v2/ghcr.io/org/app/manifests/1",
        ));
        assert_eq!(
            f.url,
            "https://registry-1.docker.io/v2/ghcr.io/org/app/manifests/1"
        );
        assert_eq!(f.route.via, None);
    }

    #[test]
    fn a_path_routing_host_passes_the_login_to_its_default_registry_only() {
        let creds = |url: &str| forward_of(on_path_host("GET", url)).credentials;
        assert_eq!(
            creds("https://proxy.example.com/v2/library/a/manifests/1"),
            Credentials::Client
        );
        assert_eq!(
            creds("https://proxy.example.com/v2/docker.io/library/a/manifests/1"),
            Credentials::Client
        );
        assert_eq!(
            creds("https://proxy.example.com/v2/ghcr.io/org/a/manifests/1"),
            Credentials::Anonymous
        );
        assert_eq!(
            creds("https://proxy.example.com/v2/org/a/manifests/1?ns=quay.io"),
            Credentials::Anonymous
        );
        assert_eq!(
            creds("https://proxy.example.com/v2/?ns=quay.io"),
            Credentials::Anonymous
        );
        assert_eq!(creds("https://proxy.example.com/v2/"), Credentials::Client);
    }

    #[test]
    fn a_version_check_without_ns_is_not_for_one_registry() {
        let f = forward_of(on_path_host("GET", "https://proxy.example.com/v2/"));
        assert_eq!(f.url, "https://registry-1.docker.io/v2/");
        assert_eq!(f.route.via.unwrap().by, By::Default);
        let f = forward_of(on_path_host(
            "GET",
            "https://proxy.example.com/v2/?ns=ghcr.io",
        ));
        assert_eq!(f.url, "https://ghcr.io/v2/");
        assert_eq!(f.route.via.unwrap().by, By::Ns);
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

    #[test]
    fn landing_decides_what_browsers_get_at_the_root_and_registry_clients_still_go_to_v2() {
        let with = |landing: &'static str| -> &'static Config {
            crate::testing::leaked(&[("CUSTOM_DOMAIN", "example.com"), ("LANDING", landing)])
        };
        let root = Url::parse("https://docker.example.com/").unwrap();
        let browser = |c| plan(c, "GET", &root, true);
        assert!(matches!(
            browser(with("recipes")),
            Ok(Plan::Landing(Some(_)))
        ));
        let off = browser(with("off")).unwrap_err();
        let unknown = plan(
            with("off"),
            "GET",
            &Url::parse("https://docker.example.com/robots.txt").unwrap(),
            true,
        )
        .unwrap_err();
        assert_eq!(
            (off.status_code(), off.to_string()),
            (unknown.status_code(), unknown.to_string())
        );
        assert_eq!(
            browser(with("https://operator.example.org/about")).unwrap(),
            Plan::Redirect {
                status: 302,
                location: "https://operator.example.org/about".into()
            }
        );
        for c in [with("off"), with("https://operator.example.org/")] {
            assert_eq!(
                plan(c, "GET", &root, false).unwrap(),
                Plan::Redirect {
                    status: 301,
                    location: "https://docker.example.com/v2/".into()
                }
            );
        }
        for bad in [
            "http://operator.example.org/",
            "yes",
            "https://",
            "https://u:p@x.org/",
        ] {
            let e = Config::from_vars(|name| match name {
                "LANDING" => Some(bad.into()),
                _ => None,
            })
            .unwrap_err();
            assert!(e.to_string().contains("LANDING"), "{bad}: {e}");
        }
    }

    #[test]
    fn v1_search_is_planned_for_reads_only() {
        let url = Url::parse("https://docker.example.com/v1/search?q=nginx&n=3").unwrap();
        match plan(config(), "GET", &url, false).unwrap() {
            Plan::Search(s) => assert_eq!(s.url(), "https://index.docker.io/v1/search?q=nginx&n=3"),
            other => panic!("{other:?}"),
        }
        let e = plan(config(), "POST", &url, false).unwrap_err();
        assert_eq!(e.status_code(), (405, "UNSUPPORTED"));
        let ghcr = Url::parse("https://ghcr.example.com/v1/search?q=nginx").unwrap();
        let e = plan(config(), "GET", &ghcr, false).unwrap_err();
        assert_eq!(e.status_code(), (404, "UNSUPPORTED"));
        let on_path = Url::parse("https://proxy.example.com/v1/search?q=nginx").unwrap();
        assert!(matches!(
            plan(path_config(), "GET", &on_path, false),
            Ok(Plan::Search(_))
        ));
    }
}
