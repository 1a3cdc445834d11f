//! What each fuzz target checks, on any input: no panic, and the property named in each
//! function. Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`) and by the corpus replay
//! of the test command (`tests/fuzz_corpus.rs`).
#![allow(dead_code)]

use registry_proxy::challenge::{self, proxy_challenge};
use registry_proxy::classify::{classify, valid_name, Endpoint};
use registry_proxy::config::Config;
use registry_proxy::error::ProxyError;
use registry_proxy::namespace;
use registry_proxy::plan::{plan, Plan, TokenRoute};
use registry_proxy::redirect::{client_location, next_hop};
use registry_proxy::routes::{By, Route, Via};
use registry_proxy::scope::complete_scopes;
use registry_proxy::token::{answer_for_client, ScopeMap, TokenEndpoint};
use std::sync::OnceLock;
use url::Url;

/// The names of the targets, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/`.
pub const TARGETS: [&str; 8] = [
    "challenge",
    "scopes",
    "classify",
    "token_request",
    "config",
    "redirect",
    "namespace",
    "plan",
];

pub fn run(target: &str, data: &[u8]) {
    match target {
        "challenge" => challenge(data),
        "scopes" => scopes(data),
        "classify" => classify_path(data),
        "token_request" => token_request(data),
        "config" => config(data),
        "redirect" => redirect(data),
        "namespace" => namespace(data),
        "plan" => plan_request(data),
        _ => panic!("no fuzz target {target}"),
    }
}

/// Text fields of an input, separated by NUL bytes (invalid UTF-8 is replaced).
fn fields(data: &[u8], n: usize) -> Vec<String> {
    let mut out: Vec<String> = data
        .splitn(n, |&b| b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    out.resize(n, String::new());
    out
}

/// The proxy's configuration the route-level targets use: the default routes, a path-routing
/// host, and a registry of its own name.
fn test_config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| {
        Config::from_vars(|name| match name {
            "CUSTOM_DOMAIN" => Some("example.com".into()),
            "PATH_ROUTING" => Some("proxy.example.com".into()),
            "ROUTES" => Some(
                r#"{"own.example.com": {"upstream": "http://127.0.0.1:5000", "docker_hub": true, "registry": "own.registry.test"}}"#
                    .into(),
            ),
            _ => None,
        })
        .unwrap()
    })
}

fn in_table(config: &Config, base: &str) -> bool {
    config.routes.iter().any(|(_, u)| u.base == base)
}

/// RFC 7235 challenges: parsing never panics; what the proxy writes from any parsed Bearer
/// challenge parses back with the same realm and the completed scope.
pub fn challenge(data: &[u8]) {
    let [header, realm] = <[String; 2]>::try_from(fields(data, 2)).unwrap();
    let Ok(parsed) = challenge::parse(&header) else {
        return;
    };
    for c in &parsed {
        assert!(!c.scheme.is_empty());
        assert!(c.params.iter().all(|(k, _)| *k == k.to_ascii_lowercase()));
    }
    if let Ok(Some(bearer)) = challenge::bearer_challenge(Some(&header), "u") {
        let _ = TokenEndpoint::from_challenge(&bearer, "u");
        let ours = proxy_challenge(&realm, Some(&bearer), true, None);
        let back = challenge::parse(&ours).expect("the proxy's challenge parses");
        assert_eq!(back.len(), 1, "{ours}");
        assert_eq!(back[0].param("realm"), Some(realm.as_str()), "{ours}");
        assert_eq!(
            back[0].param("scope").map(str::to_string),
            bearer.param("scope").map(|s| complete_scopes(s, true)),
            "{ours}"
        );
    }
}

/// Scope rewriting: completion is idempotent; a path-routing prefix added and taken off again
/// gives the scopes back.
pub fn scopes(data: &[u8]) {
    let [registry, scopes] = <[String; 2]>::try_from(fields(data, 2)).unwrap();
    let once = complete_scopes(&scopes, true);
    assert_eq!(complete_scopes(&once, true), once);
    assert_eq!(complete_scopes(&scopes, false), scopes);
    if registry.is_empty() || registry.contains(['/', ' ', ':']) {
        return;
    }
    let via = Via {
        registry: &registry,
        by: By::Prefix,
    };
    let normal: Vec<&str> = scopes.split(' ').filter(|s| !s.is_empty()).collect();
    assert_eq!(
        namespace::strip_scopes(&namespace::prefix_scopes(&scopes, via), via),
        normal.join(" ")
    );
}

/// Path classification: never a panic; a repository's name is valid by the grammar and the
/// path is `/v2/<name><rest>`.
pub fn classify_path(data: &[u8]) {
    let path = String::from_utf8_lossy(data);
    match classify(&path) {
        Ok(Endpoint::Repository { name, rest, .. }) => {
            assert!(valid_name(name), "{name}");
            assert_eq!(format!("/v2/{name}{rest}"), path);
        }
        Ok(_) => assert!(path.starts_with("/v2")),
        Err(e) => assert!(e.status_code().0 >= 400),
    }
}

/// Token requests: an anonymous one carries `service`, `scope` and `client_id` only, and no
/// credentials; the upstream's service always replaces the client's.
pub fn token_request(data: &[u8]) {
    let flags = data.first().copied().unwrap_or(0);
    let [params] = <[String; 1]>::try_from(fields(data.get(1..).unwrap_or(&[]), 1)).unwrap();
    let c = challenge::bearer_challenge(
        Some(r#"Bearer realm="https://auth.example/token",service="reg""#),
        "u",
    )
    .unwrap()
    .unwrap();
    let endpoint = TokenEndpoint::from_challenge(&c, "u").unwrap();
    let scopes = ScopeMap {
        docker_hub: flags & 1 != 0,
        via: None,
        anonymous: flags & 2 != 0,
    };
    let request = if flags & 4 != 0 {
        endpoint.request(None, Some(&params), scopes)
    } else {
        endpoint.request(Some(&params), None, scopes)
    };
    let mut pairs: Vec<(String, String)> = request.url().query_pairs().into_owned().collect();
    if let Some(form) = request.form() {
        pairs.extend(url::form_urlencoded::parse(form.as_bytes()).into_owned());
    }
    assert_eq!(
        pairs.first().map(|(k, v)| (k.as_str(), v.as_str())),
        Some(("service", "reg"))
    );
    assert_eq!(pairs.iter().filter(|(k, _)| k == "service").count(), 1);
    if scopes.anonymous {
        assert!(!request.sends_credentials());
        for (k, _) in &pairs {
            assert!(
                ["service", "scope", "client_id"].contains(&k.as_str()),
                "{k}"
            );
        }
    }
    let _ = answer_for_client(params.as_bytes(), flags & 8 != 0);
}

/// Vars: a bad value is a configuration error naming its var, never a panic; a good table
/// routes only to http(s) origins.
pub fn config(data: &[u8]) {
    let names = [
        "CUSTOM_DOMAIN",
        "ROUTES",
        "PATH_ROUTING",
        "DEFAULT_REGISTRY",
        "MODE",
        "TARGET_UPSTREAM",
        "UPSTREAM_TIMEOUT_MS",
        "LOG_LEVEL",
        "LANDING",
        "UPSTREAM_CREDENTIALS",
        "PUBLIC_UPSTREAM_CREDENTIALS",
    ];
    let values = fields(data, names.len());
    // an upstream account's password never shows in an error
    let passwords: Vec<String> = serde_json::from_str::<serde_json::Value>(&values[9])
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|t| {
            t.values()
                .filter_map(|e| e.get("password")?.as_str().map(str::to_string))
                .filter(|p| p.len() >= 4)
                .collect()
        })
        .unwrap_or_default();
    let result = Config::from_vars(|name| {
        let i = names.iter().position(|n| *n == name)?;
        Some(values[i].clone()).filter(|v| !v.is_empty())
    });
    match result {
        Ok(c) => {
            for (host, u) in c.routes.iter() {
                assert_eq!(host, host.to_ascii_lowercase());
                let url = Url::parse(&u.base).expect("an upstream is a URL");
                assert!(matches!(url.scheme(), "http" | "https"));
                assert_eq!(url.origin().ascii_serialization(), u.base);
            }
            assert!(c.timeout_ms > 0);
            if !c.path_hosts.is_empty() {
                assert!(c.default_upstream().is_some());
            }
        }
        Err(ProxyError::Config { var, reason }) => {
            assert!(names.contains(&var));
            // (other vars' errors quote their own values, which may hold anything)
            for p in passwords.iter().filter(|_| var == "UPSTREAM_CREDENTIALS") {
                assert!(!reason.contains(p.as_str()), "{var}: {reason}");
            }
        }
        Err(e) => panic!("not a configuration error: {e:?}"),
    }
}

/// Redirects: a hop is always http(s); a `Location` for the client points at the proxy's
/// origin or is a path, or is left alone.
pub fn redirect(data: &[u8]) {
    let [current, location] = <[String; 2]>::try_from(fields(data, 2)).unwrap();
    let Ok(current) = Url::parse(&format!("https://registry.example/v2/{current}")) else {
        return;
    };
    if let Ok(next) = next_hop(&current, Some(&location), "u") {
        assert!(matches!(next.scheme(), "http" | "https"));
    }
    let config = test_config();
    let (registry, upstream) = config.registry("ghcr.io").unwrap();
    for via in [
        None,
        Some(Via {
            registry,
            by: By::Prefix,
        }),
    ] {
        let route = Route { upstream, via };
        if let Some(ours) = client_location(&location, route, "https://p.example") {
            assert!(
                ours.starts_with("https://p.example/")
                    || ours.starts_with("https://p.example?")
                    || ours == "https://p.example"
                    || (ours.starts_with('/') && !ours.starts_with("//")),
                "{ours}"
            );
        }
    }
}

/// Path-routing resolution: whatever a client names, the route is an upstream of the table;
/// the proxy's `ns` never reaches the upstream's query.
pub fn namespace(data: &[u8]) {
    let [name, ns, params] = <[String; 3]>::try_from(fields(data, 3)).unwrap();
    let config = test_config();
    let ns = Some(ns.as_str()).filter(|n| !n.is_empty());
    if let Ok((route, upstream_name)) = namespace::resolve(config, &name, ns) {
        assert!(in_table(config, &route.upstream.base));
        assert!(name.ends_with(upstream_name));
    }
    if let Ok(route) = namespace::resolve_token(config, &params) {
        assert!(in_table(config, &route.upstream.base));
    }
    if let Some(q) = namespace::without_ns(&params) {
        assert!(!q.split('&').any(|p| p == "ns" || p.starts_with("ns=")));
    }
    let _ = namespace::ns_param(Some(&params));
}

/// The route phase: no request ever leaves for an upstream outside the table, and its URL is
/// on that upstream's origin.
pub fn plan_request(data: &[u8]) {
    let [method, host, rest] = <[String; 3]>::try_from(fields(data, 3)).unwrap();
    let hosts = [
        "docker.example.com",
        "ghcr.example.com",
        "proxy.example.com",
        "own.example.com",
    ];
    let host = hosts
        .iter()
        .find(|h| h.starts_with(host.as_str()))
        .copied()
        .unwrap_or(host.as_str());
    let Ok(url) = Url::parse(&format!("https://{host}/{rest}")) else {
        return;
    };
    let config = test_config();
    let method = if method.is_empty() { "GET" } else { &method };
    match plan(config, method, &url, rest.is_empty()) {
        Ok(Plan::Upstream(f)) => {
            assert!(in_table(config, &f.route.upstream.base));
            let target = Url::parse(&f.url).expect("the upstream URL parses");
            assert_eq!(target.origin().ascii_serialization(), f.route.upstream.base);
            assert!(target.path().starts_with("/v2/"));
        }
        Ok(Plan::Token(TokenRoute::Fixed(r))) => assert!(in_table(config, &r.upstream.base)),
        Ok(Plan::Search(s)) => {
            // only the search service's /v1/search, with only the three bounded parameters
            let target = Url::parse(&s.url()).expect("the search URL parses");
            assert_eq!(target.origin().ascii_serialization(), s.service);
            assert_eq!(target.path(), "/v1/search");
            for (k, v) in target.query_pairs() {
                match &*k {
                    "q" => assert!(
                        !v.is_empty() && v.chars().count() <= 256 && !v.contains(char::is_control)
                    ),
                    "n" => assert!((1..=100).contains(&v.parse::<u32>().unwrap())),
                    "page" => assert!((1..=100).contains(&v.parse::<u32>().unwrap())),
                    other => panic!("parameter {other} passed on"),
                }
            }
        }
        Ok(Plan::Redirect { location, .. }) => {
            assert!(location.starts_with(&url.origin().ascii_serialization()))
        }
        Ok(_) => {}
        Err(e) => assert!(e.status_code().0 >= 400),
    }
}
