//! The access phase: whether a planned request may go on, decided before anything is asked of
//! an upstream or a cache, by the operator's policy (policy.rs), and what a rate limit counts.

use crate::classify::Access;
use crate::error::ProxyError;
use crate::plan::Plan;
use crate::policy::{canonical, Policy};
use std::net::IpAddr;

/// What the access phase knows of the client: only what the policy needs is read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Client<'a> {
    pub host: &'a str,
    /// `CF-Connecting-IP` (set by Cloudflare's edge, never by the client).
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// Seconds a client that went over the rate limit is told to wait: the longest period the
/// Rate Limiting binding has (10 or 60 s), since the binding does not say which it has.
pub const RETRY_AFTER_SECONDS: u32 = 60;

/// Whom a request counts against: the proxy user once logged in, else the client's address
/// (all clients without one, outside Cloudflare, share one count).
pub fn limit_key(client: &Client<'_>, user: Option<&str>) -> String {
    match (user, client.ip.map(str::trim)) {
        (Some(user), _) => format!("user:{user}"),
        (None, Some(ip)) => match ip.parse::<IpAddr>() {
            Ok(ip) => format!("ip:{}", canonical(ip)),
            Err(_) => "ip:?".into(),
        },
        (None, None) => "ip:-".into(),
    }
}

/// The access phase's decision.
pub fn check(policy: &Policy, plan: &Plan<'_>, client: &Client<'_>) -> Result<(), ProxyError> {
    // a blocked agent learns nothing, not even that this host is a proxy
    if let Some(agent) = client.user_agent.map(str::to_ascii_lowercase) {
        if policy
            .blocked_agents
            .iter()
            .any(|b| agent.contains(b.as_str()))
        {
            return Err(ProxyError::UnknownHost(client.host.to_string()));
        }
    }
    if let Some(ranges) = &policy.ips {
        // no address (not behind Cloudflare's edge): not one of the allowed
        let ip = client.ip.and_then(|ip| ip.trim().parse::<IpAddr>().ok());
        if !ip.is_some_and(|ip| ranges.iter().any(|r| r.contains(ip))) {
            return Err(ProxyError::Denied);
        }
    }
    let Plan::Upstream(f) = plan else {
        return Ok(());
    };
    if policy.read_only && f.access == Access::Write {
        return Err(ProxyError::ReadOnly);
    }
    if let Some(repo) = &f.repository {
        policy.repository(&f.route.upstream.name, &repo.name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The access phase for a request planned on a `CUSTOM_DOMAIN = "example.com"` table.
    fn decide(
        vars: &'static [(&'static str, &'static str)],
        method: &str,
        url: &str,
        client: Client<'_>,
    ) -> Result<(), ProxyError> {
        let mut all = vec![("CUSTOM_DOMAIN", "example.com")];
        all.extend_from_slice(vars);
        let config = crate::testing::config(&all);
        let url = url::Url::parse(url).unwrap();
        let plan = crate::plan::plan(&config, method, &url, false).unwrap();
        check(&config.policy, &plan, &client)
    }

    const HUB: &str = "https://docker.example.com";

    #[test]
    fn read_only_refuses_writes_of_the_api_but_not_tokens() {
        let ro = &[("READ_ONLY", "true")];
        let c = Client::default();
        let blob = format!("{HUB}/v2/library/alpine/blobs/uploads/");
        assert_eq!(decide(ro, "POST", &blob, c), Err(ProxyError::ReadOnly));
        let put = format!("{HUB}/v2/me/app/manifests/v1");
        assert_eq!(decide(ro, "PUT", &put, c), Err(ProxyError::ReadOnly));
        assert_eq!(decide(ro, "DELETE", &put, c), Err(ProxyError::ReadOnly));
        assert!(decide(ro, "GET", &put, c).is_ok());
        assert!(decide(ro, "HEAD", &put, c).is_ok());
        // the OAuth2 form of a login is no write
        assert!(decide(ro, "POST", &format!("{HUB}/v2/auth"), c).is_ok());
        assert!(decide(&[], "PUT", &put, c).is_ok());
    }

    #[test]
    fn lists_judge_the_name_the_upstream_sees() {
        let vars = &[("ALLOW_REPOSITORIES", r#"{"docker.io": ["library/*"]}"#)];
        let c = Client::default();
        assert!(decide(vars, "GET", &format!("{HUB}/v2/alpine/manifests/3"), c).is_ok());
        let other = format!("{HUB}/v2/someone/app/manifests/3");
        assert_eq!(decide(vars, "GET", &other, c), Err(ProxyError::Denied));
        // another registry of the table is not in the list
        let quay = "https://quay.example.com/v2/library/alpine/manifests/3";
        assert_eq!(decide(vars, "GET", quay, c), Err(ProxyError::Denied));
        // no repository: the version check and the token endpoint go on
        assert!(decide(vars, "GET", &format!("{HUB}/v2/"), c).is_ok());
        assert!(decide(vars, "GET", &format!("{HUB}/v2/auth?scope=x"), c).is_ok());
    }

    #[test]
    fn addresses_outside_the_ranges_and_none_at_all_are_denied() {
        let vars = &[("ALLOW_IPS", "198.51.100.0/24, 2001:db8::/48")];
        let url = format!("{HUB}/v2/");
        let from = |ip| Client {
            ip,
            ..Client::default()
        };
        assert!(decide(vars, "GET", &url, from(Some("198.51.100.20"))).is_ok());
        assert!(decide(vars, "GET", &url, from(Some("2001:db8:0:1::1"))).is_ok());
        for ip in [
            Some("198.51.101.1"),
            Some("2001:db8:1::1"),
            Some("junk"),
            None,
        ] {
            assert_eq!(
                decide(vars, "GET", &url, from(ip)),
                Err(ProxyError::Denied),
                "{ip:?}"
            );
        }
        // the landing page and tokens too
        assert_eq!(
            decide(vars, "GET", &format!("{HUB}/"), from(None)),
            Err(ProxyError::Denied)
        );
    }

    #[test]
    fn a_blocked_agent_is_answered_as_an_unknown_host() {
        let vars = &[("BLOCK_USER_AGENTS", "zgrab,masscan")];
        let c = |ua| Client {
            host: "docker.example.com",
            user_agent: ua,
            ..Client::default()
        };
        let url = format!("{HUB}/v2/");
        let e = decide(vars, "GET", &url, c(Some("Mozilla/5.0 zgrab/0.x"))).unwrap_err();
        assert_eq!(e, ProxyError::UnknownHost("docker.example.com".into()));
        assert!(decide(vars, "GET", &url, c(Some("docker/27.0 go/go1.22"))).is_ok());
        assert!(decide(vars, "GET", &url, c(None)).is_ok());
    }

    #[test]
    fn requests_count_against_the_user_else_the_address_as_one_spelling() {
        let from = |ip| Client {
            ip,
            ..Client::default()
        };
        assert_eq!(
            limit_key(&from(Some("192.0.2.1")), Some("alice")),
            "user:alice"
        );
        assert_eq!(limit_key(&from(Some(" 192.0.2.1")), None), "ip:192.0.2.1");
        assert_eq!(
            limit_key(&from(Some("::ffff:192.0.2.1")), None),
            "ip:192.0.2.1"
        );
        assert_eq!(
            limit_key(&from(Some("2001:DB8::0:1")), None),
            "ip:2001:db8::1"
        );
        assert_eq!(limit_key(&from(Some("junk")), None), "ip:?");
        assert_eq!(limit_key(&from(None), None), "ip:-");
    }
}
