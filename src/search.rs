//! `docker search` and `podman search`: the registry v1 search endpoint (`/v1/search?q=&n=&page=`)
//! of a route whose registry has a search service (Docker Hub's, or a `search` entry in
//! `ROUTES`). Only that endpoint and those three parameters, bounded, reach the service.

use crate::config::Config;
use crate::error::ProxyError;
use crate::routes::Upstream;
use url::form_urlencoded;

/// The longest query passed on (Docker Hub's own limit is lower; a name is at most 255).
pub const MAX_QUERY: usize = 256;
/// The most results a page may ask for (Docker Hub's limit; clients ask 25).
pub const MAX_RESULTS: u32 = 100;
/// Pages beyond this are refused: nothing a person reads, and a crawler's tool.
pub const MAX_PAGE: u32 = 100;
/// What docker and podman ask for when not told.
pub const DEFAULT_RESULTS: u32 = 25;

/// A search as it goes to the search service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search<'c> {
    /// The registry searched.
    pub upstream: &'c Upstream,
    /// Its search service's origin.
    pub service: &'c str,
    pub q: String,
    pub n: u32,
    pub page: Option<u32>,
}

/// The largest search answer passed on (Docker Hub's 100 results are about 40 KB).
pub const MAX_ANSWER: usize = 1 << 20;

/// Whether a header of the search service's answer reaches the client: its type and its
/// rate-limit headers (`X-RateLimit-*`, `RateLimit-*`, `Retry-After`); not its cookies, its
/// encoding (the runtime decoded the body) or anything else of the service's.
pub fn passes_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "content-type"
        || name == "retry-after"
        || name.starts_with("x-ratelimit-")
        || name.starts_with("ratelimit")
        || name == "docker-ratelimit-source"
}

impl Search<'_> {
    /// The search service's URL for this search: the three parameters, nothing else.
    pub fn url(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("q", &self.q);
        query.append_pair("n", &self.n.to_string());
        if let Some(page) = self.page {
            query.append_pair("page", &page.to_string());
        }
        format!("{}/v1/search?{}", self.service, query.finish())
    }
}

/// The search a `/v1/search` request asks for: on a host route (`upstream`) its registry; on
/// a path-routing host (`None`) the registry the query names first (`ghcr.io/app`), else the
/// default registry. Refused before any request: no search service, a bad query.
pub fn plan<'c>(
    config: &'c Config,
    upstream: Option<&'c Upstream>,
    query: Option<&str>,
) -> Result<Search<'c>, ProxyError> {
    let (mut q, mut n, mut page) = (None, None, None);
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let slot = match &*key {
            "q" => &mut q,
            "n" => &mut n,
            "page" => &mut page,
            // other parameters are not passed on
            _ => continue,
        };
        if slot.is_some() {
            return Err(ProxyError::BadRequest(format!(
                "search parameter {key} given twice"
            )));
        }
        *slot = Some(value.into_owned());
    }
    let q = q.map(|q| q.trim().to_string()).unwrap_or_default();
    if q.is_empty() {
        return Err(ProxyError::BadRequest("search needs a query: ?q=".into()));
    }
    if q.chars().count() > MAX_QUERY {
        return Err(ProxyError::BadRequest(format!(
            "search query longer than {MAX_QUERY} characters"
        )));
    }
    if q.chars().any(char::is_control) {
        return Err(ProxyError::BadRequest(
            "search query has control characters".into(),
        ));
    }
    let number = |name: &'static str, raw: Option<String>, max: u32| match raw {
        None => Ok(None),
        Some(raw) => match raw.trim().parse::<u32>() {
            Ok(v) if (1..=max).contains(&v) => Ok(Some(v)),
            _ => Err(ProxyError::PaginationInvalid(format!(
                "{name} must be a whole number from 1 to {max}"
            ))),
        },
    };
    let n = number("n", n, MAX_RESULTS)?.unwrap_or(DEFAULT_RESULTS);
    let page = number("page", page, MAX_PAGE)?;
    let (upstream, q) = match upstream {
        Some(upstream) => (upstream, q),
        None => by_prefix(config, q)?,
    };
    let service = upstream
        .search
        .as_deref()
        .ok_or_else(|| ProxyError::SearchUnsupported(upstream.name.clone()))?;
    // Docker Hub does not find `library/nginx`, only `nginx` (docker and podman strip it too)
    let q = match (upstream.docker_hub, q.strip_prefix("library/")) {
        (true, Some(rest)) if !rest.is_empty() => rest.to_string(),
        _ => q,
    };
    Ok(Search {
        upstream,
        service,
        q,
        n,
        page,
    })
}

/// A path-routing host's search: `ghcr.io/app` searches ghcr.io for `app`; a query without a
/// registry of the table in front searches the default registry.
fn by_prefix(config: &Config, q: String) -> Result<(&Upstream, String), ProxyError> {
    if let Some((first, rest)) = q.split_once('/') {
        if let Some((_, upstream)) = config.registry(first) {
            if rest.is_empty() {
                return Err(ProxyError::BadRequest("search needs a query: ?q=".into()));
            }
            return Ok((upstream, rest.to_string()));
        }
    }
    let upstream = config
        .default_upstream()
        .ok_or_else(|| ProxyError::SearchUnsupported(config.default_registry.clone()))?;
    Ok((upstream, q))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        crate::testing::path_routing(&[(
            "ROUTES",
            r#"{"hub.example.com": {"upstream": "https://hub.internal", "docker_hub": true, "search": "https://search.internal"}, "nosearch.example.com": {"upstream": "https://registry-1.docker.io", "search": "off"}}"#,
        )])
    }

    fn host<'c>(c: &'c Config, host: &str) -> Option<&'c Upstream> {
        Some(c.route(host).unwrap())
    }

    #[test]
    fn docker_hub_routes_search_docker_hub_with_the_three_parameters_only() {
        let c = config();
        let s = plan(&c, host(&c, "docker.example.com"), Some("q=nginx&n=25")).unwrap();
        assert_eq!(s.url(), "https://index.docker.io/v1/search?q=nginx&n=25");
        let s = plan(
            &c,
            host(&c, "docker.example.com"),
            Some("q=library%2Fnginx&page=2&n=100&x=1&callback=y"),
        )
        .unwrap();
        assert_eq!(
            s.url(),
            "https://index.docker.io/v1/search?q=nginx&n=100&page=2"
        );
        // spaces and symbols are the service's business, encoded
        let s = plan(&c, host(&c, "docker.example.com"), Some("q=a+b%26c%3D")).unwrap();
        assert_eq!(
            s.url(),
            "https://index.docker.io/v1/search?q=a+b%26c%3D&n=25"
        );
        // a route's own search service; "off"; a registry without one
        let s = plan(&c, host(&c, "hub.example.com"), Some("q=x")).unwrap();
        assert_eq!(s.url(), "https://search.internal/v1/search?q=x&n=25");
        for h in [
            "nosearch.example.com",
            "ghcr.example.com",
            "quay.example.com",
        ] {
            let e = plan(&c, host(&c, h), Some("q=x")).unwrap_err();
            assert_eq!(e.status_code(), (404, "UNSUPPORTED"), "{h}");
        }
    }

    #[test]
    fn only_the_type_and_rate_limits_of_an_answer_pass() {
        for passes in [
            "Content-Type",
            "X-RateLimit-Remaining",
            "x-ratelimit-reset",
            "RateLimit-Limit",
            "Retry-After",
        ] {
            assert!(passes_header(passes), "{passes}");
        }
        for stays in [
            "Set-Cookie",
            "Content-Encoding",
            "Content-Length",
            "Strict-Transport-Security",
            "Location",
            "X-Request-Id",
        ] {
            assert!(!passes_header(stays), "{stays}");
        }
    }

    #[test]
    fn a_path_routing_host_searches_the_registry_named_first_else_the_default() {
        let c = config();
        let s = plan(&c, None, Some("q=nginx")).unwrap();
        assert_eq!(s.upstream.name, "docker.io");
        let s = plan(&c, None, Some("q=docker.io%2Flibrary%2Fnginx")).unwrap();
        assert_eq!(s.url(), "https://index.docker.io/v1/search?q=nginx&n=25");
        let e = plan(&c, None, Some("q=ghcr.io%2Fapp")).unwrap_err();
        assert_eq!(e.status_code(), (404, "UNSUPPORTED"));
        assert!(e.to_string().contains("ghcr.io"), "{e}");
        // a slash that names no registry is part of the query
        let s = plan(&c, None, Some("q=bitnami%2Fnginx")).unwrap();
        assert_eq!(s.q, "bitnami/nginx");
    }

    #[test]
    fn bad_queries_are_refused_with_the_registry_s_codes() {
        let c = config();
        let hub = host(&c, "docker.example.com");
        let long = format!("q={}", "a".repeat(MAX_QUERY + 1));
        for (query, code) in [
            (None, "UNSUPPORTED"),
            (Some(""), "UNSUPPORTED"),
            (Some("q="), "UNSUPPORTED"),
            (Some("q=%20%20"), "UNSUPPORTED"),
            (Some("n=10"), "UNSUPPORTED"),
            (Some(long.as_str()), "UNSUPPORTED"),
            (Some("q=a%0Ab"), "UNSUPPORTED"),
            (Some("q=a&q=b"), "UNSUPPORTED"),
            (Some("q=a&n=0"), "PAGINATION_NUMBER_INVALID"),
            (Some("q=a&n=101"), "PAGINATION_NUMBER_INVALID"),
            (Some("q=a&n=-1"), "PAGINATION_NUMBER_INVALID"),
            (Some("q=a&n=ten"), "PAGINATION_NUMBER_INVALID"),
            (Some("q=a&n=99999999999999"), "PAGINATION_NUMBER_INVALID"),
            (Some("q=a&n="), "PAGINATION_NUMBER_INVALID"),
            (Some("q=a&page=0"), "PAGINATION_NUMBER_INVALID"),
            (Some("q=a&page=101"), "PAGINATION_NUMBER_INVALID"),
        ] {
            let e = plan(&c, hub, query).unwrap_err();
            assert_eq!(e.status_code(), (400, code), "{query:?}");
        }
        let edge = format!("q={}&n=100&page=100", "é".repeat(MAX_QUERY));
        assert!(plan(&c, hub, Some(&edge)).is_ok());
    }
}
