//! The operator's policy, from the vars (off by default: every client served, as the original
//! did): `READ_ONLY`, `ALLOW_REPOSITORIES`, `DENY_REPOSITORIES`, `ALLOW_IPS`,
//! `BLOCK_USER_AGENTS`. access.rs judges requests by it.

use crate::error::ProxyError;
use crate::routes::Upstream;
use std::net::IpAddr;

/// What the operator allows, from the vars.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `READ_ONLY`: the registry API takes `GET` and `HEAD` only.
    pub read_only: bool,
    /// `ALLOW_REPOSITORIES`: when set, only these names (registries not in it: none).
    pub allow: Option<Names>,
    /// `DENY_REPOSITORIES`: never these names, whatever `allow` says.
    pub deny: Option<Names>,
    /// `ALLOW_IPS`: when set, only clients from these ranges (`CF-Connecting-IP`).
    pub ips: Option<Vec<Cidr>>,
    /// `BLOCK_USER_AGENTS`: lower-case parts of a `User-Agent` that get nothing.
    pub blocked_agents: Vec<String>,
    /// A `RATE_LIMITER` binding is bound: every request is counted (limit_key).
    pub rate_limited: bool,
}

/// Repository patterns per registry name (`*`: every registry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names(Vec<(String, Vec<String>)>);

/// An address range: the first `bits` of `addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Policy {
    pub fn from_vars(
        var: impl Fn(&'static str) -> Option<String>,
        registries: &[(String, Upstream)],
    ) -> Result<Policy, ProxyError> {
        let read_only = match var("READ_ONLY").as_deref().map(str::trim) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ProxyError::Config {
                    var: "READ_ONLY",
                    reason: format!("{other:?} is neither \"true\" nor \"false\""),
                })
            }
        };
        let names = |name| match var(name) {
            Some(raw) => Names::parse(name, &raw, registries).map(Some),
            None => Ok(None),
        };
        let ips = match var("ALLOW_IPS") {
            Some(raw) => Some(parse_ranges(&raw)?),
            None => None,
        };
        let blocked_agents = var("BLOCK_USER_AGENTS")
            .map(|raw| {
                raw.split(',')
                    .map(|a| a.trim().to_ascii_lowercase())
                    .filter(|a| !a.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Policy {
            read_only,
            allow: names("ALLOW_REPOSITORIES")?,
            deny: names("DENY_REPOSITORIES")?,
            ips,
            blocked_agents,
            rate_limited: false,
        })
    }

    /// Whether `name` of `registry` may be asked for (a request's, or a token scope's).
    pub fn repository(&self, registry: &str, name: &str) -> Result<(), ProxyError> {
        let denied = self.deny.as_ref().is_some_and(|d| d.has(registry, name));
        let allowed = self.allow.as_ref().is_none_or(|a| a.has(registry, name));
        if denied || !allowed {
            return Err(ProxyError::Denied);
        }
        Ok(())
    }

    /// Whether the client's address is read (a header the hot path otherwise leaves alone).
    pub fn needs_ip(&self) -> bool {
        self.ips.is_some() || self.rate_limited
    }

    /// Whether repository names are judged (allow or deny lists).
    pub fn judges_names(&self) -> bool {
        self.allow.is_some() || self.deny.is_some()
    }

    pub fn needs_user_agent(&self) -> bool {
        !self.blocked_agents.is_empty()
    }
}

impl Names {
    pub fn parse(
        var: &'static str,
        raw: &str,
        registries: &[(String, Upstream)],
    ) -> Result<Names, ProxyError> {
        let bad = |reason: String| ProxyError::Config { var, reason };
        // serde_json's Value: its parser is in the build already (token answers)
        let expected = || {
            bad("expected a table of registry -> repository patterns, such as { \"docker.io\" = [\"library/*\"] }".into())
        };
        let table = match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(serde_json::Value::Object(table)) => table,
            _ => return Err(expected()),
        };
        let mut out = vec![];
        for (registry, list) in table {
            let registry = registry.trim().to_ascii_lowercase();
            let upstream = registries
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&registry))
                .map(|(_, u)| u);
            if registry != "*" && upstream.is_none() {
                return Err(bad(format!(
                    "{registry:?} is not a registry of the route table (CUSTOM_DOMAIN, ROUTES) nor \"*\""
                )));
            }
            // ["a", "b"] or "a, b"
            let patterns: Vec<String> = match list {
                serde_json::Value::String(s) => s.split(',').map(str::to_string).collect(),
                serde_json::Value::Array(v) => v
                    .into_iter()
                    .map(|p| match p {
                        serde_json::Value::String(p) => Ok(p),
                        _ => Err(expected()),
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(expected()),
            };
            let mut kept = vec![];
            for p in patterns {
                let p = p.trim().trim_matches('/').to_ascii_lowercase();
                let ok = !p.is_empty()
                    && p.split('/').all(|part| !part.is_empty())
                    && p.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/*".contains(&b)
                    });
                if !ok {
                    return Err(bad(format!(
                        "{p:?} (for {registry}) is not a repository name or pattern (`library/*`, `org/app`)"
                    )));
                }
                // Docker Hub's one-part names live under library/, as the upstream sees them
                let hub = upstream.is_some_and(|u| u.docker_hub);
                kept.push(if hub && !p.contains('/') && p != "*" {
                    format!("library/{p}")
                } else {
                    p
                });
            }
            out.push((registry, kept));
        }
        Ok(Names(out))
    }

    /// Whether `name` (as the upstream knows it) of `registry` is in the list.
    pub fn has(&self, registry: &str, name: &str) -> bool {
        self.0
            .iter()
            .filter(|(r, _)| r == "*" || r.eq_ignore_ascii_case(registry))
            .flat_map(|(_, ps)| ps)
            .any(|p| glob(p, name))
    }
}

/// `*` stands for any run of characters, `/` included (`org/*` is all of org).
fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn parse_ranges(raw: &str) -> Result<Vec<Cidr>, ProxyError> {
    let ranges: Vec<Cidr> = raw
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            Cidr::parse(r).ok_or_else(|| ProxyError::Config {
                var: "ALLOW_IPS",
                reason: format!(
                    "{r:?} is not an IPv4 or IPv6 address or range (`203.0.113.0/24`, `2001:db8::/32`)"
                ),
            })
        })
        .collect::<Result<_, _>>()?;
    if ranges.is_empty() {
        return Err(ProxyError::Config {
            var: "ALLOW_IPS",
            reason: "lists no address: leave it unset to allow every address".into(),
        });
    }
    Ok(ranges)
}

impl Cidr {
    pub fn parse(raw: &str) -> Option<Cidr> {
        let (addr, bits) = match raw.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (raw, None),
        };
        let addr = canonical(addr.parse().ok()?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) if !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) => b.parse().ok()?,
            Some(_) => return None,
            None => max,
        };
        (bits <= max).then_some(Cidr { addr, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (a, b, width) = match (self.addr, canonical(ip)) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            _ => return false,
        };
        let shift = width - u32::from(self.bits);
        shift >= width || (a >> shift) == (b >> shift)
    }
}

/// An IPv4 address written as IPv6 (`::ffff:192.0.2.1`) is that IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registries() -> Vec<(String, Upstream)> {
        let hub = Upstream::parse("T", "https://registry-1.docker.io", None).unwrap();
        let ghcr = Upstream::parse("T", "https://ghcr.io", None).unwrap();
        vec![("docker.io".into(), hub), ("ghcr.io".into(), ghcr)]
    }

    fn policy(vars: &[(&'static str, &str)]) -> Result<Policy, ProxyError> {
        Policy::from_vars(
            |name| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            },
            &registries(),
        )
    }

    fn reason(e: ProxyError) -> String {
        e.to_string()
    }

    #[test]
    fn nothing_set_is_no_policy() {
        let p = policy(&[]).unwrap();
        assert_eq!(p, Policy::default());
        assert!(!p.needs_ip() && !p.needs_user_agent());
        assert!(p.repository("docker.io", "library/alpine").is_ok());
    }

    #[test]
    fn read_only_is_true_or_false() {
        assert!(policy(&[("READ_ONLY", "true")]).unwrap().read_only);
        assert!(!policy(&[("READ_ONLY", " false ")]).unwrap().read_only);
        let e = reason(policy(&[("READ_ONLY", "yes")]).unwrap_err());
        assert!(e.contains("READ_ONLY") && e.contains("\"yes\""), "{e}");
    }

    #[test]
    fn allow_lists_are_per_registry_and_unlisted_registries_get_nothing() {
        let p = policy(&[(
            "ALLOW_REPOSITORIES",
            r#"{"docker.io": ["library/*", "bitnami/redis"], "ghcr.io": "org/*, me/app"}"#,
        )])
        .unwrap();
        for (reg, name) in [
            ("docker.io", "library/alpine"),
            ("docker.io", "bitnami/redis"),
            ("ghcr.io", "org/a/b"),
            ("GHCR.io", "me/app"),
        ] {
            assert!(p.repository(reg, name).is_ok(), "{reg} {name}");
        }
        for (reg, name) in [
            ("docker.io", "bitnami/redis-cluster"),
            ("docker.io", "libraryx/alpine"),
            ("docker.io", "org/a"),
            ("ghcr.io", "me/app2"),
            ("quay.io", "library/alpine"),
        ] {
            assert_eq!(
                p.repository(reg, name),
                Err(ProxyError::Denied),
                "{reg} {name}"
            );
        }
    }

    #[test]
    fn deny_wins_and_star_is_every_registry() {
        let p = policy(&[
            ("ALLOW_REPOSITORIES", r#"{"*": ["*"]}"#),
            (
                "DENY_REPOSITORIES",
                r#"{"*": ["evil/*"], "docker.io": ["alpine"]}"#,
            ),
        ])
        .unwrap();
        assert!(p.repository("ghcr.io", "good/app").is_ok());
        assert!(p.repository("docker.io", "library/busybox").is_ok());
        assert!(p.repository("ghcr.io", "evil/app").is_err());
        assert!(p.repository("docker.io", "evil/app").is_err());
        // a Docker Hub one-part name is the library/ one
        assert!(p.repository("docker.io", "library/alpine").is_err());
        assert!(p.repository("ghcr.io", "alpine").is_ok());
    }

    #[test]
    fn bad_lists_are_configuration_errors_that_say_what_is_wrong() {
        for (raw, says) in [
            ("library/*", "expected a table"),
            (r#"{"quay.io": ["a/*"]}"#, "\"quay.io\" is not a registry"),
            (r#"{"docker.io": ["a//b"]}"#, "is not a repository name"),
            (r#"{"docker.io": ["A B"]}"#, "is not a repository name"),
            (r#"{"docker.io": [""]}"#, "is not a repository name"),
            (r#"{"docker.io": 3}"#, "expected a table"),
        ] {
            let e = reason(policy(&[("DENY_REPOSITORIES", raw)]).unwrap_err());
            assert!(
                e.contains("DENY_REPOSITORIES") && e.contains(says),
                "{raw}: {e}"
            );
        }
    }

    #[test]
    fn globs_match_any_run_of_characters() {
        for (p, n, m) in [
            ("library/*", "library/alpine", true),
            ("library/*", "library/", true),
            ("library/*", "library", false),
            ("*", "anything/at/all", true),
            ("org/*-dev", "org/app-dev", true),
            ("org/*-dev", "org/app-dev2", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            ("a*a", "a", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(glob(p, n), m, "{p} {n}");
        }
    }

    #[test]
    fn ranges_of_both_families() {
        let p = policy(&[("ALLOW_IPS", "203.0.113.0/24, 2001:db8::/32 198.51.100.7")]).unwrap();
        let ranges = p.ips.as_ref().unwrap();
        let ok = |ip: &str| ranges.iter().any(|r| r.contains(ip.parse().unwrap()));
        assert!(ok("203.0.113.9") && ok("198.51.100.7") && ok("2001:db8:1::5"));
        assert!(ok("::ffff:203.0.113.200"));
        assert!(!ok("203.0.114.1") && !ok("198.51.100.8") && !ok("2001:db9::1"));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
        assert!(Cidr::parse("::/0")
            .unwrap()
            .contains("::1".parse().unwrap()));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "host",
        ] {
            let e = reason(policy(&[("ALLOW_IPS", bad)]).unwrap_err());
            assert!(e.contains("ALLOW_IPS") && e.contains(bad), "{bad}: {e}");
        }
        let e = reason(policy(&[("ALLOW_IPS", " , ")]).unwrap_err());
        assert!(e.contains("lists no address"), "{e}");
    }

    #[test]
    fn user_agents_are_parts_of_any_case() {
        let p = policy(&[("BLOCK_USER_AGENTS", "Scanner, , zgrab")]).unwrap();
        assert_eq!(p.blocked_agents, ["scanner", "zgrab"]);
        assert!(p.needs_user_agent());
    }
}
