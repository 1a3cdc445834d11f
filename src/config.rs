//! Configuration from wrangler vars, validated once per isolate.

use crate::accounts::Accounts;
use crate::cache_settings::{parse_stale, CacheMode, Limits};
use crate::error::ProxyError;
use crate::landing::{Landing, Registries};
use crate::log::LogLevel;
use crate::policy::Policy;
use crate::routes::{RouteTable, Upstream};
use crate::stats::StatsPage;
use crate::users::Users;
use serde::Deserialize;
use std::collections::BTreeMap;

pub const DEFAULT_TIMEOUT_MS: u32 = 30_000;

/// What the runtime has under a binding's name (`CACHE_BUCKET`, `RATE_LIMITER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    Absent,
    /// A var (text), not a binding: a mistake in wrangler.toml or the dashboard.
    Text,
    /// An object: the binding.
    Bound,
}

impl Binding {
    /// Whether the binding named `var` is there, or why the configuration is wrong: a var of
    /// that name is a mistake, and `how` says what to bind instead.
    fn bound(self, var: &'static str, how: &str) -> Result<bool, ProxyError> {
        match self {
            Binding::Absent => Ok(false),
            Binding::Bound => Ok(true),
            Binding::Text => Err(ProxyError::Config {
                var,
                reason: format!("is a var, not {how}"),
            }),
        }
    }
}

/// Whether an R2 bucket is bound as `CACHE_BUCKET`, or why the configuration is wrong.
pub fn bucket_bound(binding: Binding) -> Result<bool, ProxyError> {
    binding.bound(
        "CACHE_BUCKET",
        "an R2 bucket: bind one under this name ([[r2_buckets]] binding = \"CACHE_BUCKET\")",
    )
}

/// Whether an Analytics Engine dataset is bound as `STATS`, or why the configuration is wrong.
pub fn stats_bound(binding: Binding) -> Result<bool, ProxyError> {
    binding.bound(
        "STATS",
        "an Analytics Engine dataset: bind one under this name ([[analytics_engine_datasets]] binding = \"STATS\")",
    )
}

/// Whether a rate limiter is bound as `RATE_LIMITER` (`[[ratelimits]]`), or why the
/// configuration is wrong.
pub fn limiter_bound(binding: Binding) -> Result<bool, ProxyError> {
    binding.bound(
        "RATE_LIMITER",
        "a rate limiter: bind one under this name ([[ratelimits]] name = \"RATE_LIMITER\")",
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub routes: RouteTable,
    /// `MODE = "debug"`: unknown hosts go to `TARGET_UPSTREAM`.
    pub debug: bool,
    pub target: Option<Upstream>,
    /// How long to wait for an upstream's response headers (never for its body).
    pub timeout_ms: u32,
    /// `LOG_LEVEL`: which requests get a JSON log line.
    pub log_level: LogLevel,
    /// `PATH_ROUTING`: hosts that serve every registry of the table, by path prefix
    /// (`/v2/ghcr.io/org/app/…`) or containerd's `?ns=`.
    pub path_hosts: Vec<String>,
    /// Registry name -> upstream, for path routing: every upstream of the route table under
    /// each of its names. A derived name two upstreams share is left out (ambiguous).
    pub registries: Vec<(String, Upstream)>,
    /// `DEFAULT_REGISTRY`: where names without a registry prefix go on a path-routing host.
    pub default_registry: String,
    /// `CACHE`: where blobs and manifests are kept (cache_settings.rs).
    pub cache: CacheMode,
    /// `CACHE_STALE_SECONDS`: answers from the store while the upstream cannot give its own.
    pub stale_seconds: Option<u32>,
    /// `CACHE_VERIFY_MAX_BYTES`, `CACHE_BUCKET_MIN_BYTES`: what is kept where, by size.
    pub cache_limits: Limits,
    /// Who may use the proxy for what (access.rs).
    pub policy: Policy,
    /// `PROXY_USERS`: when set, only they may (users.rs).
    pub users: Option<Users>,
    /// `UPSTREAM_CREDENTIALS`: the proxy's own accounts at upstreams (accounts.rs).
    pub accounts: Accounts,
    /// `LANDING`: what browsers get at `/`.
    pub landing: Landing,
    /// `STATS_TOKEN` and the SQL API's secrets: the `/_stats` page (stats.rs).
    pub stats: Option<StatsPage>,
    /// An Analytics Engine dataset is bound as `STATS`: a data point per request.
    pub stats_bound: bool,
}

/// One `ROUTES` entry: a bare URL, or a table that can set Docker Hub semantics.
#[derive(Deserialize)]
#[serde(untagged)]
enum RouteSpec {
    Url(String),
    Full {
        upstream: String,
        #[serde(default)]
        docker_hub: Option<bool>,
        /// The registry's name in image references, for path routing and mirrors.
        #[serde(default)]
        registry: Option<String>,
        /// Its v1 search service (`docker search`), or `"off"`.
        #[serde(default)]
        search: Option<String>,
        /// Origins asked when it fails (failover.rs), in order.
        #[serde(default)]
        fallback: Option<Vec<String>>,
    },
}

impl Config {
    /// `var` returns a var's value as a string (a TOML table from `[vars]` arrives as JSON).
    pub fn from_vars(var: impl Fn(&'static str) -> Option<String>) -> Result<Self, ProxyError> {
        let present = |name| var(name).filter(|v| !v.trim().is_empty());
        let mut routes = match present("CUSTOM_DOMAIN") {
            Some(domain) => {
                if domain.contains(['/', ':', ' ']) {
                    return Err(ProxyError::Config {
                        var: "CUSTOM_DOMAIN",
                        reason: format!("{domain:?} is not a bare domain name"),
                    });
                }
                RouteTable::defaults(&domain)
            }
            None => RouteTable::default(),
        };
        if let Some(raw) = present("ROUTES") {
            let specs: BTreeMap<String, RouteSpec> =
                serde_json::from_str(&raw).map_err(|e| ProxyError::Config {
                    var: "ROUTES",
                    reason: format!("expected a JSON object of host -> upstream ({e})"),
                })?;
            for (host, spec) in specs {
                let upstream = match spec {
                    RouteSpec::Url(url) => Upstream::parse("ROUTES", &url, None)?,
                    RouteSpec::Full {
                        upstream,
                        docker_hub,
                        registry,
                        search,
                        fallback,
                    } => {
                        let mut u = Upstream::parse("ROUTES", &upstream, docker_hub)?;
                        if let Some(name) = registry {
                            u = u.with_name("ROUTES", &name)?;
                        }
                        if let Some(fallback) = fallback {
                            u = u.with_fallbacks("ROUTES", &fallback)?;
                        }
                        match search {
                            Some(search) => u.with_search("ROUTES", &search)?,
                            None => u,
                        }
                    }
                };
                routes.insert(&host, upstream);
            }
        }
        if let Some(raw) = present("FALLBACKS") {
            fallbacks(&mut routes, &raw)?;
        }
        let debug = match present("MODE").as_deref().map(str::trim) {
            None | Some("production") => false,
            Some("debug") => true,
            Some(other) => {
                return Err(ProxyError::Config {
                    var: "MODE",
                    reason: format!("{other:?} is neither \"production\" nor \"debug\""),
                })
            }
        };
        let target = match present("TARGET_UPSTREAM") {
            Some(url) => Some(Upstream::parse("TARGET_UPSTREAM", &url, None)?),
            None => None,
        };
        let timeout_ms = match present("UPSTREAM_TIMEOUT_MS") {
            Some(ms) => ms
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|ms| *ms > 0)
                .ok_or_else(|| ProxyError::Config {
                    var: "UPSTREAM_TIMEOUT_MS",
                    reason: format!("{ms:?} is not a positive whole number of milliseconds"),
                })?,
            None => DEFAULT_TIMEOUT_MS,
        };
        let log_level = match present("LOG_LEVEL") {
            Some(raw) => LogLevel::parse(&raw).ok_or_else(|| ProxyError::Config {
                var: "LOG_LEVEL",
                reason: format!("{raw:?} is none of \"debug\", \"info\", \"error\", \"off\""),
            })?,
            None => LogLevel::Info,
        };
        let path_hosts: Vec<String> = present("PATH_ROUTING")
            .map(|v| {
                v.split([',', ' '])
                    .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
                    .filter(|h| !h.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(bad) = path_hosts.iter().find(|h| h.contains(['/', ':'])) {
            return Err(ProxyError::Config {
                var: "PATH_ROUTING",
                reason: format!("{bad:?} is not a bare host name"),
            });
        }
        let registries = registry_table(&routes)?;
        let default_registry = present("DEFAULT_REGISTRY")
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_else(|| "docker.io".into());
        if !path_hosts.is_empty() && !registries.iter().any(|(n, _)| *n == default_registry) {
            return Err(ProxyError::Config {
                var: "DEFAULT_REGISTRY",
                reason: format!(
                    "{default_registry:?} is not a registry of the route table (CUSTOM_DOMAIN, ROUTES)"
                ),
            });
        }
        let cache = CacheMode::parse(present("CACHE").as_deref())?;
        let stale_seconds = parse_stale(present("CACHE_STALE_SECONDS").as_deref())?;
        let cache_limits = Limits::from_vars(
            present("CACHE_VERIFY_MAX_BYTES").as_deref(),
            present("CACHE_BUCKET_MIN_BYTES").as_deref(),
        )?;
        let policy = Policy::from_vars(present, &registries)?;
        let users = Users::from_vars(present, &registries)?;
        let restricted = users.is_some() || policy.allow.is_some() || policy.ips.is_some();
        let accounts = Accounts::from_vars(present, &registries, restricted)?;
        let landing = Landing::parse(present("LANDING").as_deref())?;
        let stats = StatsPage::from_vars(present)?;
        Ok(Config {
            stats,
            stats_bound: false,
            landing,
            accounts,
            policy,
            users,
            cache_limits,
            cache,
            stale_seconds,
            routes,
            debug,
            target,
            timeout_ms,
            log_level,
            path_hosts,
            registries,
            default_registry,
        })
    }

    /// Whether stale answers are on (`CACHE_STALE_SECONDS`).
    pub fn stale_answers(&self) -> bool {
        self.stale_seconds.is_some_and(|s| s > 0)
    }

    /// Whether `host` (no port) serves every registry by path prefix.
    pub fn is_path_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.path_hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// The upstream a registry name (`ghcr.io`, `docker.io`) stands for, if the table has it,
    /// with the name as the table spells it.
    pub fn registry(&self, name: &str) -> Option<(&str, &Upstream)> {
        self.registries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(n, u)| (n.as_str(), u))
    }

    /// What the landing page of a path-routing host lists.
    pub fn landing_registries(&self) -> Registries<'_> {
        Registries {
            all: &self.registries,
            default: self
                .default_upstream()
                .map(|u| (self.default_registry.as_str(), u)),
            search: self.users.is_none(),
        }
    }

    /// The upstream of `DEFAULT_REGISTRY`, where a path-routing host sends unprefixed names.
    pub fn default_upstream(&self) -> Option<&Upstream> {
        self.registry(&self.default_registry).map(|(_, u)| u)
    }

    /// The upstream for a bare host name (no port).
    pub fn route(&self, host: &str) -> Result<&Upstream, ProxyError> {
        if let Some(u) = self.routes.get(host) {
            return Ok(u);
        }
        match (&self.target, self.debug) {
            (Some(target), true) => Ok(target),
            _ => Err(ProxyError::UnknownHost(host.to_string())),
        }
    }
}

/// `FALLBACKS`: `{"docker.io": ["https://mirror.gcr.io"]}`, registry name -> fallback
/// origins, for every route of the table to that registry (the default routes have no entry of
/// their own to name them in). A registry that `ROUTES` gave fallbacks already, or that no
/// route fronts, is an error.
fn fallbacks(routes: &mut RouteTable, raw: &str) -> Result<(), ProxyError> {
    const VAR: &str = "FALLBACKS";
    let bad = |reason: String| ProxyError::Config { var: VAR, reason };
    // read as a `Value`, as the policy's vars are: one deserializer less in the wasm
    let table = match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(table)) => table,
        _ => {
            return Err(bad(
                "expected a JSON object of registry name -> list of fallback origins".into(),
            ))
        }
    };
    for (name, list) in table {
        let list: Vec<String> = match list {
            serde_json::Value::Array(list) => list
                .into_iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| bad(format!("{name:?}: a fallback is an origin, in quotes")))?,
            _ => {
                return Err(bad(format!(
                    "{name:?}: expected a list of fallback origins"
                )))
            }
        };
        let mut found = false;
        for upstream in routes.upstreams_mut() {
            if !upstream
                .names()
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&name))
            {
                continue;
            }
            if !upstream.fallbacks.is_empty() {
                return Err(bad(format!(
                    "{name:?} has fallbacks in ROUTES already: name them in one place"
                )));
            }
            *upstream = upstream.clone().with_fallbacks(VAR, &list)?;
            found = true;
        }
        if !found {
            return Err(bad(format!(
                "{name:?} is not a registry of the route table (CUSTOM_DOMAIN, ROUTES)"
            )));
        }
    }
    Ok(())
}

/// Every upstream of the table under each of its names, first come first served; a configured
/// name beats a derived one, and a derived name two different upstreams share is dropped.
fn registry_table(routes: &RouteTable) -> Result<Vec<(String, Upstream)>, ProxyError> {
    let mut table: Vec<(String, Upstream)> = Vec::new();
    let mut ambiguous: Vec<String> = Vec::new();
    for (_, upstream) in routes.iter() {
        for name in upstream.names() {
            if ambiguous.iter().any(|a| a == name) {
                continue;
            }
            match table.iter().position(|(n, _)| n == name) {
                None => table.push((name.to_string(), upstream.clone())),
                Some(i) if table[i].1.base == upstream.base => {}
                Some(i) => match (table[i].1.named, upstream.named) {
                    (true, true) => {
                        return Err(ProxyError::Config {
                            var: "ROUTES",
                            reason: format!(
                                "registry name {name:?} is given to {} and {}",
                                table[i].1.base, upstream.base
                            ),
                        })
                    }
                    (true, false) => {}
                    (false, true) => table[i].1 = upstream.clone(),
                    (false, false) => {
                        table.remove(i);
                        ambiguous.push(name.to_string());
                    }
                },
            }
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_and_the_rate_limiter_must_be_bindings() {
        assert_eq!(bucket_bound(Binding::Absent), Ok(false));
        assert_eq!(bucket_bound(Binding::Bound), Ok(true));
        let e = bucket_bound(Binding::Text).unwrap_err().to_string();
        assert!(
            e.contains("CACHE_BUCKET") && e.contains("r2_buckets"),
            "{e}"
        );
        assert_eq!(limiter_bound(Binding::Absent), Ok(false));
        assert_eq!(limiter_bound(Binding::Bound), Ok(true));
        let e = limiter_bound(Binding::Text).unwrap_err().to_string();
        assert!(
            e.contains("RATE_LIMITER") && e.contains("[[ratelimits]]"),
            "{e}"
        );
    }
    use crate::routes::DOCKER_HUB;

    fn cfg(vars: &[(&'static str, &str)]) -> Result<Config, ProxyError> {
        Config::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn custom_domain_turns_on_defaults() {
        let c = cfg(&[("CUSTOM_DOMAIN", "example.com")]).unwrap();
        assert_eq!(c.route("docker.example.com").unwrap().base, DOCKER_HUB);
        assert_eq!(c.route("ghcr.example.com").unwrap().base, "https://ghcr.io");
        assert_eq!(c.timeout_ms, DEFAULT_TIMEOUT_MS);
        assert_eq!(c.log_level, LogLevel::Info);
        assert!(!c.debug);
    }

    #[test]
    fn nothing_configured_routes_nothing() {
        let c = cfg(&[]).unwrap();
        assert!(c.routes.is_empty());
        assert_eq!(
            c.route("docker.example.com"),
            Err(ProxyError::UnknownHost("docker.example.com".into()))
        );
    }

    #[test]
    fn routes_merge_over_defaults_with_both_forms() {
        let c = cfg(&[
            ("CUSTOM_DOMAIN", "example.com"),
            (
                "ROUTES",
                r#"{"docker.example.com": {"upstream": "http://127.0.0.1:5000", "docker_hub": true},
                    "hub.other.org": "https://registry-1.docker.io",
                    "open.other.org": "http://127.0.0.1:5001/"}"#,
            ),
        ])
        .unwrap();
        let d = c.route("docker.example.com").unwrap();
        assert_eq!(
            (d.base.as_str(), d.docker_hub),
            ("http://127.0.0.1:5000", true)
        );
        assert!(c.route("hub.other.org").unwrap().docker_hub);
        let o = c.route("open.other.org").unwrap();
        assert_eq!(
            (o.base.as_str(), o.docker_hub),
            ("http://127.0.0.1:5001", false)
        );
        assert!(c.route("quay.example.com").is_ok());
    }

    #[test]
    fn registry_table_names_every_upstream_once() {
        let c = cfg(&[
            ("CUSTOM_DOMAIN", "example.com"),
            ("PATH_ROUTING", "Proxy.example.com, other.example.com"),
            (
                "ROUTES",
                r#"{"a.example.com": {"upstream": "http://127.0.0.1:5000", "registry": "hub.registry.test"},
                    "b.example.com": "http://127.0.0.1:5001",
                    "c.example.com": "http://127.0.0.1:5002",
                    "d.example.com": "http://127.0.0.1:5001"}"#,
            ),
        ])
        .unwrap();
        assert!(c.is_path_host("proxy.example.com"));
        assert!(c.is_path_host("OTHER.example.com"));
        assert!(!c.is_path_host("docker.example.com"));
        assert_eq!(c.default_registry, "docker.io");
        assert_eq!(c.registry("docker.io").unwrap().1.base, DOCKER_HUB);
        assert_eq!(c.registry("index.docker.io").unwrap().1.base, DOCKER_HUB);
        assert_eq!(c.registry("GHCR.io").unwrap().1.base, "https://ghcr.io");
        assert_eq!(
            c.registry("registry.k8s.io").unwrap().1.base,
            "https://registry.k8s.io"
        );
        assert_eq!(
            c.registry("hub.registry.test").unwrap().1.base,
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            c.registry("127.0.0.1:5001").unwrap().1.base,
            "http://127.0.0.1:5001"
        );
        assert!(c.registry("evil.example.org").is_none());
        // two names for one registry is fine; one name for two would be an error
        let e = cfg(&[(
            "ROUTES",
            r#"{"a.x": {"upstream": "http://127.0.0.1:1", "registry": "r.test"},
                "b.x": {"upstream": "http://127.0.0.1:2", "registry": "r.test"}}"#,
        )])
        .unwrap_err();
        assert!(matches!(e, ProxyError::Config { var: "ROUTES", .. }), "{e}");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (vars, name) in [
            (vec![("ROUTES", "{not json")], "ROUTES"),
            (vec![("ROUTES", r#"{"a.b": "ftp://x"}"#)], "ROUTES"),
            (
                vec![("ROUTES", r#"{"a.b": {"docker_hub": true}}"#)],
                "ROUTES",
            ),
            (vec![("ROUTES", r#"["a"]"#)], "ROUTES"),
            (vec![("MODE", "dev")], "MODE"),
            (
                vec![("MODE", "debug"), ("TARGET_UPSTREAM", "nope")],
                "TARGET_UPSTREAM",
            ),
            (vec![("UPSTREAM_TIMEOUT_MS", "0")], "UPSTREAM_TIMEOUT_MS"),
            (vec![("UPSTREAM_TIMEOUT_MS", "fast")], "UPSTREAM_TIMEOUT_MS"),
            (vec![("LOG_LEVEL", "loud")], "LOG_LEVEL"),
            (
                vec![("PATH_ROUTING", "proxy.example.com")],
                "DEFAULT_REGISTRY",
            ),
            (
                vec![
                    ("CUSTOM_DOMAIN", "example.com"),
                    ("PATH_ROUTING", "proxy.example.com"),
                    ("DEFAULT_REGISTRY", "nope.io"),
                ],
                "DEFAULT_REGISTRY",
            ),
            (
                vec![("PATH_ROUTING", "https://proxy.example.com")],
                "PATH_ROUTING",
            ),
            (
                vec![("CUSTOM_DOMAIN", "https://example.com")],
                "CUSTOM_DOMAIN",
            ),
        ] {
            let e = cfg(&vars).unwrap_err();
            assert!(
                matches!(e, ProxyError::Config { var, .. } if var == name),
                "{vars:?}: {e}"
            );
            assert_eq!(e.status_code().0, 500);
        }
    }

    #[test]
    fn fallbacks_come_from_routes_or_from_their_var_for_the_default_routes() {
        let c = cfg(&[
            ("CUSTOM_DOMAIN", "example.com"),
            ("FALLBACKS", r#"{"docker.io": ["https://mirror.gcr.io"]}"#),
        ])
        .unwrap();
        let hub = c.routes.get("docker.example.com").unwrap();
        assert_eq!(hub.fallbacks, ["https://mirror.gcr.io"]);
        assert!(c
            .routes
            .get("quay.example.com")
            .unwrap()
            .fallbacks
            .is_empty());
        // the registry table's copy, for path routing, has them too
        assert_eq!(c.registry("docker.io").unwrap().1.fallbacks.len(), 1);
        let routes = r#"{"hub.example.test": {"upstream": "http://127.0.0.1:5000",
            "fallback": ["http://127.0.0.1:5030"]}}"#;
        let c = cfg(&[("ROUTES", routes)]).unwrap();
        let hub = c.routes.get("hub.example.test").unwrap();
        assert_eq!(hub.fallbacks, ["http://127.0.0.1:5030"]);
        for (vars, var, words) in [
            (
                vec![
                    ("ROUTES", routes),
                    ("FALLBACKS", r#"{"127.0.0.1:5000": ["https://m.example"]}"#),
                ],
                "FALLBACKS",
                "in one place",
            ),
            (
                vec![
                    ("CUSTOM_DOMAIN", "example.com"),
                    ("FALLBACKS", r#"{"nowhere.io": ["https://m.example"]}"#),
                ],
                "FALLBACKS",
                "not a registry",
            ),
            (
                vec![
                    ("CUSTOM_DOMAIN", "example.com"),
                    ("FALLBACKS", r#"["https://m.example"]"#),
                ],
                "FALLBACKS",
                "JSON object",
            ),
            (
                vec![
                    ("CUSTOM_DOMAIN", "example.com"),
                    ("FALLBACKS", r#"{"docker.io": "https://m.example"}"#),
                ],
                "FALLBACKS",
                "list",
            ),
            (
                vec![
                    ("CUSTOM_DOMAIN", "example.com"),
                    ("FALLBACKS", r#"{"docker.io": [5]}"#),
                ],
                "FALLBACKS",
                "origin",
            ),
            (
                vec![
                    ("CUSTOM_DOMAIN", "example.com"),
                    (
                        "FALLBACKS",
                        r#"{"docker.io": ["https://registry-1.docker.io"]}"#,
                    ),
                ],
                "FALLBACKS",
                "itself",
            ),
            (
                vec![(
                    "ROUTES",
                    r#"{"a.b": {"upstream": "https://a.io", "fallback": ["https://m.io/x"]}}"#,
                )],
                "ROUTES",
                "origin",
            ),
            (
                vec![(
                    "ROUTES",
                    r#"{"a.b": {"upstream": "https://a.io", "fallback": ["https://m.io", "https://m.io"]}}"#,
                )],
                "ROUTES",
                "twice",
            ),
        ] {
            let e = cfg(&vars).unwrap_err();
            assert!(
                matches!(&e, ProxyError::Config { var: v, .. } if *v == var)
                    && e.to_string().contains(words),
                "{vars:?}: {e}"
            );
        }
    }

    #[test]
    fn stale_answers_are_on_only_with_a_stale_age() {
        let on = cfg(&[
            ("CUSTOM_DOMAIN", "example.com"),
            ("CACHE_STALE_SECONDS", "60"),
        ])
        .unwrap();
        assert!(on.stale_answers());
        let off = cfg(&[("CUSTOM_DOMAIN", "example.com")]).unwrap();
        assert!(!off.stale_answers());
    }

    #[test]
    fn debug_mode_sends_unknown_hosts_to_target() {
        let c = cfg(&[
            ("MODE", "debug"),
            ("TARGET_UPSTREAM", "https://registry-1.docker.io"),
        ])
        .unwrap();
        let u = c.route("localhost").unwrap();
        assert!(
            u.docker_hub,
            "TARGET_UPSTREAM = Docker Hub keeps its semantics"
        );
        // production ignores TARGET_UPSTREAM
        let c = cfg(&[("TARGET_UPSTREAM", "https://quay.io")]).unwrap();
        assert!(c.route("localhost").is_err());
    }

    #[test]
    fn timeout_is_configurable() {
        assert_eq!(
            cfg(&[("UPSTREAM_TIMEOUT_MS", " 2000 ")])
                .unwrap()
                .timeout_ms,
            2000
        );
    }
}
