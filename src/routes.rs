//! The route table: which upstream registry a request's host name fronts.

use crate::error::ProxyError;

/// How a request on a path-routing host named its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'c> {
    /// The registry's name as the table (and the client) spells it.
    pub registry: &'c str,
    pub by: By,
}

/// What named the registry of a request on a path-routing host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The client's repository names start with `<registry>/`.
    Prefix,
    /// containerd's `?ns=<registry>` (a mirror request); names carry no prefix.
    Ns,
    /// Nothing: the name has no registry prefix, so it is the default registry's
    /// (`DEFAULT_REGISTRY`).
    Default,
}

impl Via<'_> {
    /// The client's repository names carry the registry prefix.
    pub fn prefixed(&self) -> bool {
        self.by == By::Prefix
    }
}

/// Docker Hub's registry endpoint; an upstream with this URL gets Docker Hub semantics.
pub const DOCKER_HUB: &str = "https://registry-1.docker.io";

/// Docker Hub's search service (the registry v1 `/v1/search` that `docker search` asks).
pub const DOCKER_HUB_SEARCH: &str = "https://index.docker.io";

/// Subdomain -> upstream, turned on by `CUSTOM_DOMAIN`.
const DEFAULT_ROUTES: &[(&str, &str)] = &[
    ("docker", DOCKER_HUB),
    ("quay", "https://quay.io"),
    ("gcr", "https://gcr.io"),
    ("k8s-gcr", "https://k8s.gcr.io"),
    ("registry-k8s", "https://registry.k8s.io"),
    ("k8s", "https://registry.k8s.io"),
    ("ghcr", "https://ghcr.io"),
    ("docker-cloudsmith", "https://docker.cloudsmith.io"),
    ("cloudsmith", "https://docker.cloudsmith.io"),
    ("ecr", "https://public.ecr.aws"),
];

/// The names Docker Hub goes by in image references.
pub const DOCKER_HUB_NAMES: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// `scheme://host[:port]`, no trailing slash: the registry API lives at `base + "/v2/"`.
    pub base: String,
    /// Docker Hub semantics: single-segment names live under `library/`.
    pub docker_hub: bool,
    /// The registry's name in image references (`docker.io`, `ghcr.io`, `127.0.0.1:5000`):
    /// the path prefix and the containerd `ns` that reach it on a path-routing host.
    pub name: String,
    /// `name` was configured, not derived from the URL.
    pub named: bool,
    /// The origin of its v1 search service (`docker search`), if it has one: Docker Hub's by
    /// default, or a `search` entry in `ROUTES`.
    pub search: Option<String>,
    /// Origins an anonymous read is asked of, in order, when this upstream fails
    /// (failover.rs): `fallback` in `ROUTES`, `FALLBACKS`. Empty by default.
    pub fallbacks: Vec<String>,
}

impl Upstream {
    /// Validates an upstream URL from configuration. Only an origin is accepted: the registry
    /// API is always at `/v2/`, so a path would be silently ignored.
    pub fn parse(
        var: &'static str,
        raw: &str,
        docker_hub: Option<bool>,
    ) -> Result<Self, ProxyError> {
        let base = origin(var, "upstream", raw)?;
        let docker_hub = docker_hub.unwrap_or(base == DOCKER_HUB);
        Ok(Upstream::new(base, docker_hub))
    }

    /// An upstream named after its URL: `docker.io` for Docker Hub, else `host[:port]`.
    pub fn new(base: String, docker_hub: bool) -> Self {
        let name = if base == DOCKER_HUB {
            DOCKER_HUB_NAMES[0].to_string()
        } else {
            base.split_once("://")
                .map_or(&*base, |(_, hp)| hp)
                .to_string()
        };
        let search = (base == DOCKER_HUB).then(|| DOCKER_HUB_SEARCH.to_string());
        Upstream {
            base,
            docker_hub,
            name,
            named: false,
            search,
            fallbacks: Vec::new(),
        }
    }

    /// Gives the upstream a search service (a `search` entry in `ROUTES`: an origin, or
    /// `"off"` for none).
    pub fn with_search(mut self, var: &'static str, raw: &str) -> Result<Self, ProxyError> {
        self.search = match raw.trim() {
            "off" => None,
            raw => Some(origin(var, "search", raw)?),
        };
        Ok(self)
    }

    /// Gives the upstream its fallback upstreams, in order: origins, none of them the upstream
    /// itself, none twice.
    pub fn with_fallbacks(mut self, var: &'static str, raw: &[String]) -> Result<Self, ProxyError> {
        let mut fallbacks: Vec<String> = Vec::with_capacity(raw.len());
        for raw in raw {
            let fallback = origin(var, "fallback", raw)?;
            let bad = |why: &str| ProxyError::Config {
                var,
                reason: format!("fallback {raw:?} of {} {why}", self.base),
            };
            if fallback == self.base {
                return Err(bad("is the upstream itself"));
            }
            if fallbacks.contains(&fallback) {
                return Err(bad("is named twice"));
            }
            fallbacks.push(fallback);
        }
        self.fallbacks = fallbacks;
        Ok(self)
    }

    /// Gives the upstream the name clients use for it (a `registry` entry in `ROUTES`).
    pub fn with_name(mut self, var: &'static str, name: &str) -> Result<Self, ProxyError> {
        let name = name.trim().to_ascii_lowercase();
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
        if !valid {
            return Err(ProxyError::Config {
                var,
                reason: format!("registry name {name:?} is not a host name"),
            });
        }
        self.name = name;
        self.named = true;
        Ok(self)
    }

    /// Every name this upstream answers to (Docker Hub has several).
    pub fn names(&self) -> Vec<&str> {
        if self.base == DOCKER_HUB && !self.named {
            DOCKER_HUB_NAMES.to_vec()
        } else {
            vec![self.name.as_str()]
        }
    }
}

/// Validates an origin from configuration (`what`: `upstream`, `search`): http(s), a host, no
/// path, query or credentials.
fn origin(var: &'static str, what: &str, raw: &str) -> Result<String, ProxyError> {
    let bad = |reason: String| ProxyError::Config { var, reason };
    // host names are ASCII here (Cargo.lock pins idna_adapter 1.0: no Unicode tables)
    if !raw.is_ascii() {
        return Err(bad(format!(
            "{what} {raw:?}: write an internationalized host name in its xn-- (punycode) form"
        )));
    }
    let url = url::Url::parse(raw.trim())
        .map_err(|e| bad(format!("{what} {raw:?} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!("{what} {raw:?} is not an http(s) URL")));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad(format!("{what} {raw:?} has no host")));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad(format!(
            "{what} {raw:?} must be an origin, without path or query"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(format!("{what} {raw:?} must not carry credentials")));
    }
    Ok(url.origin().ascii_serialization())
}

/// Where a request goes: the upstream, and on a path-routing host how the client named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<'c> {
    pub upstream: &'c Upstream,
    /// Set on a path-routing host (`PATH_ROUTING`); `None` on a host route.
    pub via: Option<Via<'c>>,
}

impl<'c> Route<'c> {
    /// A host route: the host fronts this one upstream.
    pub fn host(upstream: &'c Upstream) -> Self {
        Route {
            upstream,
            via: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    /// Lower-case host name (no port) -> upstream. Small, so a Vec beats a map.
    entries: Vec<(String, Upstream)>,
}

impl RouteTable {
    /// The default routes under `domain` (e.g. `docker.example.com`).
    pub fn defaults(domain: &str) -> Self {
        let domain = domain.trim().trim_matches('.').to_ascii_lowercase();
        let mut table = RouteTable::default();
        for (sub, upstream) in DEFAULT_ROUTES {
            let upstream = Upstream::new((*upstream).to_string(), *upstream == DOCKER_HUB);
            table.insert(&format!("{sub}.{domain}"), upstream);
        }
        table
    }

    /// Adds a route, replacing one for the same host.
    pub fn insert(&mut self, host: &str, upstream: Upstream) {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        match self.entries.iter_mut().find(|(h, _)| *h == host) {
            Some(entry) => entry.1 = upstream,
            None => self.entries.push((host, upstream)),
        }
    }

    /// Exact host match, case-insensitive. `host` is a bare host name, without port.
    pub fn get(&self, host: &str) -> Option<&Upstream> {
        let host = host.trim_end_matches('.');
        self.entries
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(host))
            .map(|(_, u)| u)
    }

    /// Host and upstream of every route, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Upstream)> {
        self.entries.iter().map(|(h, u)| (h.as_str(), u))
    }

    /// Every route's upstream, to be given what a var says of it.
    pub fn upstreams_mut(&mut self) -> impl Iterator<Item = &mut Upstream> {
        self.entries.iter_mut().map(|(_, u)| u)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_ascii_and_punycode_is_one() {
        let e = Upstream::parse("ROUTES", "https://bücher.example", None).unwrap_err();
        assert!(e.to_string().contains("xn--"), "{e}");
        let u = Upstream::parse("ROUTES", "https://XN--bcher-kva.Example", None).unwrap();
        assert_eq!(u.base, "https://xn--bcher-kva.example");
        // the URL parser (idna_adapter 1.0) refuses what it cannot map, and never panics
        assert!(url::Url::parse("https://bücher.example/").is_err());
        // upper case beside non-ASCII: refused (idna_adapter 1.0's debug assertion is off in
        // every profile here, see Cargo.toml)
        assert!(url::Url::parse("https://L\u{e9}.example/").is_err());
        let host = url::Url::parse("https://AB_C.Example/").unwrap();
        assert_eq!(host.host_str(), Some("ab_c.example"));
        assert!(url::Url::parse("https://xn--bcher-kva.example/v2/").is_ok());
    }

    #[test]
    fn docker_hub_searches_by_default_and_a_route_may_name_or_turn_off_its_search() {
        let hub = Upstream::parse("ROUTES", DOCKER_HUB, None).unwrap();
        assert_eq!(hub.search.as_deref(), Some(DOCKER_HUB_SEARCH));
        let ghcr = Upstream::parse("ROUTES", "https://ghcr.io", None).unwrap();
        assert_eq!(ghcr.search, None);
        let own = ghcr
            .clone()
            .with_search("ROUTES", "https://Search.Example:8443")
            .unwrap();
        assert_eq!(own.search.as_deref(), Some("https://search.example:8443"));
        assert_eq!(hub.with_search("ROUTES", "off").unwrap().search, None);
        for bad in [
            "ftp://search.example",
            "https://search.example/v1/search",
            "nonsense",
            "https://u:p@s.example",
        ] {
            let e = ghcr.clone().with_search("ROUTES", bad).unwrap_err();
            assert!(
                e.to_string().contains("ROUTES") && e.to_string().contains("search"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn defaults_cover_every_registry_of_the_original_and_more() {
        let t = RouteTable::defaults("Example.com");
        let hub = t.get("docker.example.com").unwrap();
        assert_eq!(hub.base, DOCKER_HUB);
        assert!(hub.docker_hub);
        for (host, base) in [
            ("quay.example.com", "https://quay.io"),
            ("gcr.example.com", "https://gcr.io"),
            ("k8s-gcr.example.com", "https://k8s.gcr.io"),
            ("registry-k8s.example.com", "https://registry.k8s.io"),
            ("k8s.example.com", "https://registry.k8s.io"),
            ("ghcr.example.com", "https://ghcr.io"),
            (
                "docker-cloudsmith.example.com",
                "https://docker.cloudsmith.io",
            ),
            ("cloudsmith.example.com", "https://docker.cloudsmith.io"),
            ("ecr.example.com", "https://public.ecr.aws"),
        ] {
            let u = t.get(host).unwrap_or_else(|| panic!("{host}"));
            assert_eq!(u.base, base);
            assert!(!u.docker_hub, "{host}");
        }
        assert_eq!(t.len(), 10);
    }

    #[test]
    fn lookup_is_exact_and_case_insensitive() {
        let t = RouteTable::defaults("example.com");
        assert!(t.get("DOCKER.Example.COM").is_some());
        assert!(t.get("docker.example.com.").is_some());
        assert!(t.get("xdocker.example.com").is_none());
        assert!(t.get("docker.example.com.evil.net").is_none());
        assert!(t.get("example.com").is_none());
    }

    #[test]
    fn insert_replaces_same_host() {
        let mut t = RouteTable::defaults("example.com");
        let u = Upstream::parse("ROUTES", "http://127.0.0.1:5000", Some(true)).unwrap();
        t.insert("Docker.Example.com", u.clone());
        assert_eq!(t.get("docker.example.com"), Some(&u));
        assert_eq!(t.len(), 10);
    }

    #[test]
    fn fallbacks_are_other_origins_each_once() {
        let hub = Upstream::parse("ROUTES", DOCKER_HUB, None).unwrap();
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ok = hub
            .clone()
            .with_fallbacks(
                "ROUTES",
                &list(&["https://Mirror.gcr.io/", "http://127.0.0.1:5030"]),
            )
            .unwrap();
        assert_eq!(
            ok.fallbacks,
            ["https://mirror.gcr.io", "http://127.0.0.1:5030"]
        );
        for (bad, words) in [
            (list(&["https://mirror.gcr.io/v2/"]), "origin"),
            (list(&["mirror.gcr.io"]), "not a URL"),
            (
                list(&["https://registry-1.docker.io:443"]),
                "the upstream itself",
            ),
            (
                list(&["https://a.example", "https://A.example/"]),
                "named twice",
            ),
            (list(&["https://u:p@a.example"]), "credentials"),
        ] {
            let e = hub.clone().with_fallbacks("FALLBACKS", &bad).unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains("FALLBACKS") && text.contains(words),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn registry_names() {
        let hub = Upstream::parse("X", DOCKER_HUB, None).unwrap();
        assert_eq!(hub.name, "docker.io");
        assert_eq!(hub.names(), DOCKER_HUB_NAMES.to_vec());
        let ghcr = Upstream::parse("X", "https://ghcr.io", None).unwrap();
        assert_eq!((ghcr.name.as_str(), ghcr.named), ("ghcr.io", false));
        let local = Upstream::parse("X", "http://127.0.0.1:5000", Some(true)).unwrap();
        assert_eq!(local.name, "127.0.0.1:5000");
        let named = local.with_name("ROUTES", "Hub.Registry.test").unwrap();
        assert_eq!(
            (named.name.as_str(), named.named),
            ("hub.registry.test", true)
        );
        assert_eq!(named.names(), vec!["hub.registry.test"]);
        assert!(ghcr.with_name("ROUTES", "a/b").is_err());
    }

    #[test]
    fn upstream_parse_accepts_origins_only() {
        let u = Upstream::parse("X", "https://registry-1.docker.io/", None).unwrap();
        assert_eq!(u.base, DOCKER_HUB);
        assert!(u.docker_hub);
        let u = Upstream::parse("X", "http://127.0.0.1:5000", None).unwrap();
        assert_eq!(u.base, "http://127.0.0.1:5000");
        assert!(!u.docker_hub);
        // default ports are dropped, as url::Url does
        assert_eq!(
            Upstream::parse("X", "https://quay.io:443", None)
                .unwrap()
                .base,
            "https://quay.io"
        );
        for bad in [
            "ftp://x",
            "quay.io",
            "https://x/v2",
            "https://x/?a=b",
            "https://u:p@x",
            "",
        ] {
            let e = Upstream::parse("ROUTES", bad, None).unwrap_err();
            assert!(e.to_string().contains("ROUTES"), "{bad}: {e}");
        }
    }
}
