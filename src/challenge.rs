//! `WWW-Authenticate` (RFC 7235): parsing upstream challenges and writing the proxy's own.

use crate::error::ProxyError;
use crate::namespace::{prefix_scopes, realm};
use crate::routes::Route;
use crate::routes::Via;
use crate::scope::complete_scopes;

/// The service name the proxy announces in its challenges, as the original did.
pub const PROXY_SERVICE: &str = "cloudflare-docker-proxy";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Auth scheme as sent (compare case-insensitively).
    pub scheme: String,
    /// Parameter names lower-cased; values unquoted and unescaped.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_bearer(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("bearer")
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_ws_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| std::str::from_utf8(&self.s[start..self.i]).unwrap_or(""))
    }
    fn quoted(&mut self) -> Result<String, String> {
        // at the opening quote
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated quoted string".into()),
                Some(b'"') => {
                    self.i += 1;
                    return String::from_utf8(out).map_err(|_| "invalid UTF-8".into());
                }
                Some(b'\\') => {
                    let Some(&c) = self.s.get(self.i + 1) else {
                        return Err("unterminated quoted string".into());
                    };
                    out.push(c);
                    self.i += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

/// Parses every challenge in a header value (several may be joined by commas).
pub fn parse(header: &str) -> Result<Vec<Challenge>, String> {
    let mut c = Cursor {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    c.skip_ws_commas();
    while c.peek().is_some() {
        let scheme = c
            .token()
            .ok_or_else(|| format!("expected an auth scheme at byte {}", c.i))?;
        let mut ch = Challenge {
            scheme: scheme.to_string(),
            params: Vec::new(),
        };
        // auth-params (or a token68) until the next scheme
        loop {
            c.skip_ws_commas();
            let save = c.i;
            let Some(name) = c.token() else {
                if c.peek().is_some() {
                    return Err(format!("unexpected character at byte {}", c.i));
                }
                break;
            };
            c.skip_ws();
            if c.peek() != Some(b'=') {
                // a new challenge's scheme
                c.i = save;
                break;
            }
            c.i += 1;
            c.skip_ws();
            match c.peek() {
                // token68 (`Basic abc==`): keep it whole, it is never needed here
                None | Some(b'=' | b',') if ch.params.is_empty() => {
                    while c.peek() == Some(b'=') {
                        c.i += 1;
                    }
                }
                Some(b'"') => {
                    let v = c.quoted()?;
                    ch.params.push((name.to_ascii_lowercase(), v));
                }
                _ => {
                    let v = c
                        .token()
                        .ok_or_else(|| format!("parameter {name} has no value"))?;
                    ch.params.push((name.to_ascii_lowercase(), v.to_string()));
                }
            }
            // list elements are separated by commas: `realm="a"x` is not two things
            c.skip_ws();
            if !matches!(c.peek(), None | Some(b',')) {
                return Err(format!("expected ',' at byte {}", c.i));
            }
        }
        out.push(ch);
    }
    if out.is_empty() {
        return Err("empty challenge".into());
    }
    Ok(out)
}

/// Reads the upstream's Bearer challenge. `Ok(None)`: the upstream uses another scheme (Basic),
/// so clients must authenticate with it directly and its challenge passes through.
pub fn bearer_challenge(
    header: Option<&str>,
    upstream: &str,
) -> Result<Option<Challenge>, ProxyError> {
    let bad = |reason: String| ProxyError::BadChallenge {
        upstream: upstream.to_string(),
        reason,
    };
    let header = header.ok_or_else(|| bad("401 without WWW-Authenticate".into()))?;
    let challenges = parse(header).map_err(bad)?;
    Ok(challenges.into_iter().find(Challenge::is_bearer))
}

/// The upstream response phase's decision on a 401: the proxy's challenge (a
/// `WWW-Authenticate` value) that sends the client to this host's `/v2/auth`, or `None` when
/// the upstream's is not a Bearer challenge (Basic): the client answers that one directly.
pub fn for_client(
    header: Option<&str>,
    route: Route<'_>,
    origin: &str,
) -> Result<Option<String>, ProxyError> {
    let Some(upstream) = bearer_challenge(header, &route.upstream.base)? else {
        return Ok(None);
    };
    Ok(Some(proxy_challenge(
        &realm(origin, route.via),
        Some(&upstream),
        route.upstream.docker_hub,
        route.via,
    )))
}

/// The proxy's challenge for an upstream that cannot give its own (failover.rs's stand-in):
/// to this host's `/v2/auth`, with nothing of the upstream's.
pub fn stand_in(route: Route<'_>, origin: &str) -> String {
    proxy_challenge(
        &realm(origin, route.via),
        None,
        route.upstream.docker_hub,
        route.via,
    )
}

/// Writes a quoted-string, escaping `\` and `"`.
fn quote(out: &mut String, v: &str) {
    out.push('"');
    for ch in v.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
}

/// The proxy's own Bearer challenge, sending clients to `realm` (the proxy's `/v2/auth`). The
/// upstream's `scope` (completed for Docker Hub) and `error` are kept so clients ask for the
/// right token and report the right failure.
/// On a path-routing host (`via`), scope names get the registry prefix the client uses.
pub fn proxy_challenge(
    realm: &str,
    upstream: Option<&Challenge>,
    docker_hub: bool,
    via: Option<Via<'_>>,
) -> String {
    let mut out = String::with_capacity(128);
    out.push_str("Bearer realm=");
    quote(&mut out, realm);
    out.push_str(",service=");
    quote(&mut out, PROXY_SERVICE);
    if let Some(up) = upstream {
        if let Some(scope) = up.param("scope") {
            out.push_str(",scope=");
            let scope = complete_scopes(scope, docker_hub);
            match via {
                Some(via) => quote(&mut out, &prefix_scopes(&scope, via)),
                None => quote(&mut out, &scope),
            }
        }
        if let Some(error) = up.param("error") {
            out.push_str(",error=");
            quote(&mut out, error);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::By;
    use crate::routes::Upstream;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn path_routed_challenge_carries_the_registry() {
        let up = &parse(r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:busybox:pull""#).unwrap()[0];
        let via = Via {
            registry: "docker.io",
            by: By::Prefix,
        };
        assert_eq!(
            proxy_challenge("https://p/v2/auth?ns=docker.io", Some(up), true, Some(via)),
            r#"Bearer realm="https://p/v2/auth?ns=docker.io",service="cloudflare-docker-proxy",scope="repository:docker.io/library/busybox:pull""#
        );
    }

    #[test]
    fn a_401_gets_the_proxy_s_challenge_for_this_host() {
        let hub = Upstream::parse("T", "https://registry-1.docker.io", None).unwrap();
        let up = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:busybox:pull""#;
        assert_eq!(
            for_client(Some(up), Route::host(&hub), "https://d.example.com:8443").unwrap(),
            Some(r#"Bearer realm="https://d.example.com:8443/v2/auth",service="cloudflare-docker-proxy",scope="repository:library/busybox:pull""#.into())
        );
        // a path-routing host: the prefix in the scope names the registry, so the realm
        // does not; a mirror request's realm carries its `ns`
        for (by, realm, scope) in [
            (
                By::Prefix,
                "https://p/v2/auth",
                "repository:docker.io/library/busybox:pull",
            ),
            (
                By::Ns,
                "https://p/v2/auth?ns=docker.io",
                "repository:library/busybox:pull",
            ),
            (
                By::Default,
                "https://p/v2/auth",
                "repository:library/busybox:pull",
            ),
        ] {
            let route = Route {
                upstream: &hub,
                via: Some(Via {
                    registry: "docker.io",
                    by,
                }),
            };
            let ours = for_client(Some(up), route, "https://p").unwrap().unwrap();
            let back = parse(&ours).unwrap();
            assert_eq!(back[0].param("realm"), Some(realm), "{by:?}");
            assert_eq!(back[0].param("scope"), Some(scope), "{by:?}");
        }
        // Basic passes as it is; no challenge at all is the upstream's fault
        assert_eq!(
            for_client(Some(r#"Basic realm="r""#), Route::host(&hub), "https://p"),
            Ok(None)
        );
        assert!(matches!(
            for_client(None, Route::host(&hub), "https://p"),
            Err(ProxyError::BadChallenge { .. })
        ));
    }

    #[test]
    fn docker_hub_challenge() {
        let c = parse(r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#).unwrap();
        assert_eq!(c.len(), 1);
        assert!(c[0].is_bearer());
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/busybox:pull"));
    }

    #[test]
    fn any_order_tokens_spaces_and_escapes() {
        let c = parse(
            r#"bearer  service = reg , REALM="https://a/t?x=\"y\"",error=insufficient_scope"#,
        )
        .unwrap();
        assert_eq!(
            c[0].params,
            p(&[
                ("service", "reg"),
                ("realm", "https://a/t?x=\"y\""),
                ("error", "insufficient_scope")
            ])
        );
        assert!(c[0].is_bearer());
    }

    #[test]
    fn several_challenges() {
        let c = parse(r#"Basic realm="basic", Bearer realm="https://t",service="s""#).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "Basic");
        assert_eq!(c[0].params, p(&[("realm", "basic")]));
        assert_eq!(c[1].param("service"), Some("s"));
        let c = parse("Negotiate abc==, Bearer realm=x").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].param("realm"), Some("x"));
        assert_eq!(parse("Bearer").unwrap()[0].params, vec![]);
    }

    #[test]
    fn malformed_is_an_error_not_a_panic() {
        for bad in [
            "",
            "  ,",
            "Bearer realm=\"open",
            "Bearer realm=\"a\\",
            "=x",
            "Bearer realm=\"a\" @",
            "Bearer realm=\"a,service=\"x",
            "Bearer realm=a\"b\"",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        // a token68 by the grammar: parses, but carries no realm
        assert_eq!(parse("Bearer realm=").unwrap()[0].param("realm"), None);
    }

    #[test]
    fn the_stand_in_sends_clients_to_the_proxy_s_own_token_endpoint() {
        let hub = crate::routes::Upstream::parse("X", crate::routes::DOCKER_HUB, None).unwrap();
        let ours = stand_in(Route::host(&hub), "https://docker.example.com");
        assert!(
            ours.starts_with(r#"Bearer realm="https://docker.example.com/v2/auth""#),
            "{ours}"
        );
        assert!(
            !ours.contains("registry-1.docker.io") && !ours.contains("scope"),
            "{ours}"
        );
    }

    #[test]
    fn proxy_challenge_keeps_completed_scope_and_error() {
        let up = &parse(r#"Bearer realm="r",service="s",scope="repository:busybox:pull",error="insufficient_scope""#).unwrap()[0];
        assert_eq!(
            proxy_challenge(
                "https://docker.example.com:8443/v2/auth",
                Some(up),
                true,
                None
            ),
            r#"Bearer realm="https://docker.example.com:8443/v2/auth",service="cloudflare-docker-proxy",scope="repository:library/busybox:pull",error="insufficient_scope""#
        );
        assert_eq!(
            proxy_challenge("https://h/v2/auth", None, false, None),
            r#"Bearer realm="https://h/v2/auth",service="cloudflare-docker-proxy""#
        );
        // what we write, we can read back
        let back = parse(&proxy_challenge(
            "https://h/v2/\"auth",
            Some(up),
            false,
            None,
        ))
        .unwrap();
        assert_eq!(back[0].param("realm"), Some("https://h/v2/\"auth"));
    }
}
