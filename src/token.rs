//! The proxy's `/v2/auth`: turning a client's token request into one for the upstream's realm.

use crate::challenge::Challenge;
use crate::credentials::{mark, Credentials};
use crate::error::ProxyError;
use crate::namespace::strip_scopes;
use crate::routes::Route;
use crate::routes::Via;
use crate::scope::complete_scopes;
use url::{form_urlencoded, Url};

/// How the client's token parameters become the upstream's: the registry prefix of a
/// path-routing host comes off the scopes, Docker Hub names get `library/`, and an anonymous
/// request loses every credential and account parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScopeMap<'a> {
    pub docker_hub: bool,
    pub via: Option<Via<'a>>,
    /// The client's credentials are not for this registry (see `namespace::credentials_for`).
    pub anonymous: bool,
}

/// The only parameters of an anonymous token request besides `service`: every other one may
/// carry or reveal credentials (`password`, `refresh_token`, `client_secret`, `assertion`,
/// `code`, `username`, `account`, in any spelling), so none of them is passed on.
const ANONYMOUS_PARAMS: [&str; 2] = ["scope", "client_id"];

impl<'a> ScopeMap<'a> {
    pub fn new(route: Route<'a>, credentials: Credentials) -> Self {
        ScopeMap {
            docker_hub: route.upstream.docker_hub,
            via: route.via,
            anonymous: !credentials.to_token_service(),
        }
    }

    /// The repository names, as the upstream knows them, that the `scope` parameters of
    /// `params` (a query or a form) ask for: what the access phase judges of a token request.
    pub fn repositories(&self, params: &str) -> Vec<String> {
        self.repository_scopes(params)
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    /// The `repository` scopes of `params`: each name as the upstream knows it, with its
    /// actions (`pull`, `push`, …).
    pub fn repository_scopes(&self, params: &str) -> Vec<(String, Vec<String>)> {
        let mut out = vec![];
        for (key, value) in form_urlencoded::parse(params.as_bytes()) {
            if key != "scope" {
                continue;
            }
            for scope in self.apply(&value).split(' ') {
                let Some((kind, rest)) = scope.split_once(':') else {
                    continue;
                };
                if let Some((name, actions)) = rest.rsplit_once(':') {
                    if kind.starts_with("repository") && !name.is_empty() {
                        let actions = actions
                            .split(',')
                            .map(str::trim)
                            .filter(|a| !a.is_empty())
                            .map(str::to_string)
                            .collect();
                        out.push((name.to_string(), actions));
                    }
                }
            }
        }
        out
    }

    fn apply(&self, scopes: &str) -> String {
        match self.via {
            Some(via) => complete_scopes(&strip_scopes(scopes, via), self.docker_hub),
            None => complete_scopes(scopes, self.docker_hub),
        }
    }
}

/// How the proxy asks the upstream's token service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRequest {
    /// A GET of the realm with the client's parameters, rewritten; `credentials`: the client's
    /// `Authorization` goes along.
    Get { url: Url, credentials: bool },
    /// The client's OAuth2 form (containerd), rewritten and POSTed to the realm.
    Post { url: Url, form: String },
    /// An OAuth2 form whose credentials are not for this registry: sent as an anonymous GET,
    /// whose answer gains the `access_token` OAuth2 clients read (see `answer_for_client`).
    AnonymousForm { url: Url },
}

impl TokenRequest {
    pub fn url(&self) -> &Url {
        match self {
            TokenRequest::Get { url, .. }
            | TokenRequest::Post { url, .. }
            | TokenRequest::AnonymousForm { url } => url,
        }
    }

    pub fn method(&self) -> &'static str {
        match self {
            TokenRequest::Post { .. } => "POST",
            _ => "GET",
        }
    }

    /// The form to POST.
    pub fn form(&self) -> Option<&str> {
        match self {
            TokenRequest::Post { form, .. } => Some(form),
            _ => None,
        }
    }

    /// Whether the client's `Authorization` goes along.
    pub fn sends_credentials(&self) -> bool {
        matches!(
            self,
            TokenRequest::Get {
                credentials: true,
                ..
            } | TokenRequest::Post { .. }
        )
    }

    /// Redirects are followed, within the realm's origin for the credentials; a POST's form is
    /// sent once, so its redirects go back to the client.
    pub fn follows_redirects(&self) -> bool {
        !matches!(self, TokenRequest::Post { .. })
    }

    /// The answer is for an OAuth2 client that got a GET's answer: it gains `access_token`.
    pub fn answers_oauth(&self) -> bool {
        matches!(self, TokenRequest::AnonymousForm { .. })
    }
}

/// Where and for which service the upstream issues tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEndpoint {
    pub realm: Url,
    pub service: Option<String>,
}

impl TokenEndpoint {
    pub fn from_challenge(c: &Challenge, upstream: &str) -> Result<Self, ProxyError> {
        let bad = |reason: String| ProxyError::BadChallenge {
            upstream: upstream.to_string(),
            reason,
        };
        let realm = c
            .param("realm")
            .ok_or_else(|| bad("Bearer challenge without realm".into()))?;
        let realm = Url::parse(realm).map_err(|e| bad(format!("realm {realm:?}: {e}")))?;
        if !matches!(realm.scheme(), "http" | "https") {
            return Err(bad(format!("realm {realm} is not http(s)")));
        }
        Ok(TokenEndpoint {
            realm,
            service: c
                .param("service")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        })
    }

    /// Rewrites the client's token parameters for the upstream: its `service` replaces the
    /// proxy's, every `scope` is completed, everything else (`account`, `client_id`,
    /// `offline_token`, `grant_type`, credentials of a POST form) is kept in order; an
    /// anonymous request keeps `scope` and `client_id` only.
    fn rewrite(
        &self,
        client: &str,
        scopes: ScopeMap<'_>,
        out: &mut form_urlencoded::Serializer<'_, String>,
    ) {
        if let Some(service) = &self.service {
            out.append_pair("service", service);
        }
        for (k, v) in form_urlencoded::parse(client.as_bytes()) {
            match &*k {
                // ours: the proxy's service name, the registry hint of a path-routing host
                "service" | "ns" => {}
                k if scopes.anonymous && !ANONYMOUS_PARAMS.contains(&k) => {}
                "scope" => {
                    out.append_pair("scope", &scopes.apply(&v));
                }
                _ => {
                    out.append_pair(&k, &v);
                }
            }
        }
    }

    /// The request for the client's token request: `query` of a GET, `form` of a POST.
    pub fn request(
        &self,
        query: Option<&str>,
        form: Option<&str>,
        scopes: ScopeMap<'_>,
    ) -> TokenRequest {
        match form {
            Some(form) if !scopes.anonymous => TokenRequest::Post {
                url: self.realm.clone(),
                form: self.post_form(form, scopes),
            },
            Some(form) => TokenRequest::AnonymousForm {
                url: self.get_url(Some(form), scopes),
            },
            None => TokenRequest::Get {
                url: self.get_url(query, scopes),
                credentials: !scopes.anonymous,
            },
        }
    }

    /// The URL for a GET token request (the client's query string, or an OAuth2 form turned
    /// into an anonymous GET, rewritten).
    fn get_url(&self, client_query: Option<&str>, scopes: ScopeMap<'_>) -> Url {
        let mut url = self.realm.clone();
        let mut query = form_urlencoded::Serializer::new(url.query().unwrap_or("").to_string());
        self.rewrite(client_query.unwrap_or(""), scopes, &mut query);
        let query = query.finish();
        url.set_query((!query.is_empty()).then_some(query.as_str()));
        url
    }

    /// The body of a POST token request (OAuth2 form, as containerd sends).
    fn post_form(&self, client_form: &str, scopes: ScopeMap<'_>) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        self.rewrite(client_form, scopes, &mut form);
        form.finish()
    }
}

/// The token the proxy hands out for a registry that needs none (its `/v2/` answers 200):
/// clients that ask for a token must get one, and such a registry ignores it. On a
/// path-routing host this is the common case: one realm serves every registry of the host,
/// open ones included. It is no secret and grants nothing.
pub const OPEN_REGISTRY_TOKEN: &str = "registry-proxy.no-auth-needed";

/// The token answer for a registry that needs no token, issued at `issued_at` (ISO 8601).
pub fn open_registry_answer(issued_at: &str) -> String {
    serde_json::json!({
        "token": OPEN_REGISTRY_TOKEN,
        "access_token": OPEN_REGISTRY_TOKEN,
        "expires_in": 300,
        "issued_at": issued_at,
    })
    .to_string()
}

/// The most of a token answer the proxy reads (Docker Hub's are a few KiB).
pub const MAX_TOKEN_ANSWER: usize = 1 << 20;

/// A token service's successful answer, checked before it reaches the client: a JSON object
/// with a `token` or an `access_token` string, else the token service failed (an HTML error
/// page, garbage, a cut body) and the client gets a 502 naming it rather than a token it
/// cannot read. `oauth`: the client is an OAuth2 client that got a GET's answer, so
/// `access_token` is added when missing. `Ok(None)`: the body goes as it came.
pub fn answer_for_client(body: &[u8], oauth: bool) -> Result<Option<String>, String> {
    answer_for(body, oauth, false)
}

/// `answer_for_client` of a token the client got without credentials: both its token fields
/// marked anonymous (credentials.rs), always rewritten.
pub fn anonymous_answer(body: &[u8], oauth: bool) -> Result<Option<String>, String> {
    answer_for(body, oauth, true)
}

fn answer_for(body: &[u8], oauth: bool, marked: bool) -> Result<Option<String>, String> {
    let mut v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("token answer is not JSON ({e})"))?;
    let obj = v
        .as_object_mut()
        .ok_or("token answer is not a JSON object")?;
    let token = ["token", "access_token"]
        .iter()
        .find_map(|k| {
            obj.get(*k)
                .filter(|t| t.as_str().is_some_and(|t| !t.is_empty()))
        })
        .cloned()
        .ok_or("token answer has no token")?;
    let add = oauth && !obj.contains_key("access_token");
    if !add && !marked {
        return Ok(None);
    }
    if add {
        obj.insert("access_token".into(), token);
    }
    if marked {
        for key in ["token", "access_token"] {
            if let Some(serde_json::Value::String(t)) = obj.get_mut(key) {
                *t = mark(t);
            }
        }
    }
    Ok(Some(v.to_string()))
}

/// The token of a token service's answer (`token`, else `access_token`).
pub fn token_of(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["token", "access_token"].iter().find_map(|k| {
        v.get(*k)
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    })
}

/// How long an anonymous token answer may be given to other anonymous clients asking the
/// same (ms): half its `expires_in` (60 s when absent, as the token spec says), so that a
/// client still gets at least half the lifetime it reads; at most 10 minutes; not at all when
/// that is under 10 s.
pub fn reusable_ms(body: &[u8]) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let expires_in = match v.get("expires_in") {
        None => 60.0,
        Some(e) => e.as_f64()?,
    };
    let half = (expires_in / 2.0).min(600.0);
    (half >= 10.0).then_some(half * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenge::bearer_challenge;
    use crate::routes::By;

    const HUB: ScopeMap<'static> = ScopeMap {
        docker_hub: true,
        via: None,
        anonymous: false,
    };

    #[test]
    fn an_anonymous_token_is_marked_in_both_fields() {
        let marked = anonymous_answer(br#"{"token":"t","expires_in":300}"#, true)
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&marked).unwrap();
        assert_eq!(v["token"], "anon~t");
        assert_eq!(v["access_token"], "anon~t");
        assert_eq!(v["expires_in"], 300);
        let v: serde_json::Value = serde_json::from_str(
            &anonymous_answer(br#"{"token":"a","access_token":"b"}"#, false)
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (v["token"].as_str(), v["access_token"].as_str()),
            (Some("anon~a"), Some("anon~b"))
        );
        assert!(anonymous_answer(b"<html>", false).is_err());
    }

    #[test]
    fn the_token_of_an_answer_and_the_scopes_of_a_request() {
        assert_eq!(
            token_of(br#"{"token":"t","access_token":"u"}"#).as_deref(),
            Some("t")
        );
        assert_eq!(token_of(br#"{"access_token":"u"}"#).as_deref(), Some("u"));
        assert_eq!(token_of(br#"{"token":""}"#), None);
        assert_eq!(token_of(b"<html>"), None);
        let scopes = HUB.repository_scopes(
            "scope=repository%3Abusybox%3Apull%2Cpush&scope=registry%3Acatalog%3A*+repository%3Aorg%2Fapp%3Apull",
        );
        assert_eq!(
            scopes,
            vec![
                (
                    "library/busybox".to_string(),
                    vec!["pull".to_string(), "push".to_string()]
                ),
                ("org/app".to_string(), vec!["pull".to_string()]),
            ]
        );
    }

    #[test]
    fn anonymous_requests_carry_no_credentials() {
        let e = ep(r#"Bearer realm="https://ghcr.io/token",service="ghcr.io""#);
        let anonymous = ScopeMap {
            docker_hub: false,
            via: None,
            anonymous: true,
        };
        let url = e.get_url(
            Some("grant_type=password&username=alice&password=secret&refresh_token=r&account=alice&access_type=offline&scope=repository%3Aa%3Apull&client_id=containerd-client"),
            anonymous,
        );
        assert_eq!(
            url.query(),
            Some("service=ghcr.io&scope=repository%3Aa%3Apull&client_id=containerd-client")
        );
        assert_eq!(
            answer_for_client(br#"{"token":"t","expires_in":300}"#, true).unwrap(),
            Some(r#"{"access_token":"t","expires_in":300,"token":"t"}"#.into())
        );
        assert_eq!(
            answer_for_client(br#"{"token":"t","access_token":"t"}"#, true),
            Ok(None)
        );
        assert_eq!(
            answer_for_client(br#"{"token":"t","expires_in":300}"#, false),
            Ok(None)
        );
    }

    #[test]
    fn the_token_request_is_a_get_a_post_or_an_oauth_form_sent_anonymously() {
        let e = ep(r#"Bearer realm="https://auth.example/token",service="reg""#);
        let own = ScopeMap::default();
        let anonymous = ScopeMap {
            anonymous: true,
            ..ScopeMap::default()
        };
        let get = e.request(Some("scope=repository%3Aa%3Apull"), None, own);
        assert_eq!(
            get,
            TokenRequest::Get {
                url: Url::parse(
                    "https://auth.example/token?service=reg&scope=repository%3Aa%3Apull"
                )
                .unwrap(),
                credentials: true
            }
        );
        assert_eq!(get.method(), "GET");
        assert!(get.sends_credentials() && get.follows_redirects() && !get.answers_oauth());
        let get = e.request(Some("scope=repository%3Aa%3Apull"), None, anonymous);
        assert!(!get.sends_credentials());

        let form = "grant_type=password&username=u&password=p&scope=repository%3Aa%3Apull";
        let post = e.request(None, Some(form), own);
        assert_eq!(post.method(), "POST");
        assert_eq!(
            post.form(),
            Some(
                "service=reg&grant_type=password&username=u&password=p&scope=repository%3Aa%3Apull"
            )
        );
        assert_eq!(post.url().as_str(), "https://auth.example/token");
        assert!(post.sends_credentials() && !post.follows_redirects() && !post.answers_oauth());

        let converted = e.request(None, Some(form), anonymous);
        assert_eq!(converted.method(), "GET");
        assert_eq!(converted.form(), None);
        assert_eq!(
            converted.url().query(),
            Some("service=reg&scope=repository%3Aa%3Apull")
        );
        assert!(!converted.sends_credentials() && converted.follows_redirects());
        assert!(converted.answers_oauth());
    }

    #[test]
    fn a_token_service_that_answers_no_token_is_the_upstream_s_failure() {
        assert_eq!(
            answer_for_client(br#"{"access_token":"t"}"#, false),
            Ok(None)
        );
        for bad in [
            &b"<html><body>Service temporarily unavailable</body></html>"[..],
            b"",
            b"{\"token\":\"eyJhbGciOiJFUzI1NiJ9.",
            b"[\"token\"]",
            b"{\"token\":\"\"}",
            b"{\"token\":42}",
            b"{\"expires_in\":300}",
            b"\xff\xfe",
        ] {
            assert!(answer_for_client(bad, false).is_err(), "{bad:?}");
            assert!(answer_for_client(bad, true).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_open_registry_gets_a_token_that_grants_nothing() {
        let v: serde_json::Value =
            serde_json::from_str(&open_registry_answer("2026-12-03T10:00:00.000Z")).unwrap();
        assert_eq!(v["token"], OPEN_REGISTRY_TOKEN);
        assert_eq!(v["access_token"], OPEN_REGISTRY_TOKEN);
        assert_eq!(v["expires_in"], 300);
        assert_eq!(v["issued_at"], "2026-12-03T10:00:00.000Z");
    }

    #[test]
    fn an_anonymous_request_keeps_no_field_that_may_carry_a_credential() {
        let e = ep(r#"Bearer realm="https://ghcr.io/token",service="ghcr.io""#);
        let anonymous = ScopeMap {
            anonymous: true,
            ..ScopeMap::default()
        };
        let form = "Password=secret&PASSWORD=secret&client_secret=s3&Client_Secret=s4&grant_type=client_credentials&assertion=jwt&client_assertion=jwt&code=c&code_verifier=v&refresh_token=r&Refresh_Token=r&access_token=t&subject_token=t&username=alice&account=alice&offline_token=true&scope=repository%3Aa%3Apull&client_id=containerd-client";
        for request in [
            e.request(None, Some(form), anonymous),
            e.request(Some(form), None, anonymous),
        ] {
            assert!(!request.sends_credentials());
            assert_eq!(
                request.url().query(),
                Some("service=ghcr.io&scope=repository%3Aa%3Apull&client_id=containerd-client"),
                "{request:?}"
            );
            assert_eq!(request.form(), None);
        }
    }

    #[test]
    fn path_routed_scopes_lose_their_prefix_and_ns_stays_here() {
        let e = ep(r#"Bearer realm="https://ghcr.io/token",service="ghcr.io""#);
        let via = Via {
            registry: "ghcr.io",
            by: By::Prefix,
        };
        let url = e.get_url(
            Some("ns=ghcr.io&scope=repository%3Aghcr.io%2Forg%2Fapp%3Apull&service=x"),
            ScopeMap {
                docker_hub: false,
                via: Some(via),
                anonymous: false,
            },
        );
        assert_eq!(
            url.query(),
            Some("service=ghcr.io&scope=repository%3Aorg%2Fapp%3Apull")
        );
    }

    #[test]
    fn the_repositories_a_token_request_asks_for_are_the_upstream_s_names() {
        let params = "scope=repository%3Abusybox%3Apull&service=x&scope=repository%3Aorg%2Fapp%3Apull%2Cpush+registry%3Acatalog%3A%2A&scope=repository(plugin)%3Ap%3Apull&scope=junk&account=a";
        assert_eq!(
            HUB.repositories(params),
            ["library/busybox", "org/app", "library/p"]
        );
        let via = Via {
            registry: "ghcr.io",
            by: By::Prefix,
        };
        let ghcr = ScopeMap {
            docker_hub: false,
            via: Some(via),
            anonymous: true,
        };
        let form = "grant_type=password&scope=repository%3Aghcr.io%2Forg%2Fapp%3Apull";
        assert_eq!(ghcr.repositories(form), ["org/app"]);
        assert!(HUB.repositories("").is_empty());
    }

    fn ep(header: &str) -> TokenEndpoint {
        let c = bearer_challenge(Some(header), "up").unwrap().unwrap();
        TokenEndpoint::from_challenge(&c, "up").unwrap()
    }

    #[test]
    fn get_url_rewrites_service_and_scopes_keeps_the_rest() {
        let e = ep(r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#);
        let url = e.get_url(
            Some("account=alice&scope=repository%3Abusybox%3Apull&service=cloudflare-docker-proxy&scope=repository%3Aorg%2Fapp%3Apull&client_id=docker&offline_token=true"),
            HUB,
        );
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let expect = [
            ("service", "registry.docker.io"),
            ("account", "alice"),
            ("scope", "repository:library/busybox:pull"),
            ("scope", "repository:org/app:pull"),
            ("client_id", "docker"),
            ("offline_token", "true"),
        ];
        assert_eq!(pairs, expect.map(|(a, b)| (a.to_string(), b.to_string())));
        assert_eq!(url.host_str(), Some("auth.docker.io"));
    }

    #[test]
    fn realm_query_is_kept_and_no_service_is_fine() {
        let e = ep(r#"Bearer realm="http://127.0.0.1:5002/token?x=1""#);
        assert_eq!(
            e.get_url(None, ScopeMap::default()).as_str(),
            "http://127.0.0.1:5002/token?x=1"
        );
        assert_eq!(
            e.get_url(Some("scope=repository:busybox:pull"), ScopeMap::default())
                .query(),
            Some("x=1&scope=repository%3Abusybox%3Apull")
        );
    }

    #[test]
    fn post_form_is_rewritten() {
        let e = ep(r#"Bearer realm="https://t/token",service="reg""#);
        assert_eq!(
            e.post_form("grant_type=password&username=u&password=p%26w&service=cloudflare-docker-proxy&scope=repository%3Ahello%3Apull&client_id=containerd-client", HUB),
            "service=reg&grant_type=password&username=u&password=p%26w&scope=repository%3Alibrary%2Fhello%3Apull&client_id=containerd-client"
        );
    }

    #[test]
    fn unusable_challenges_are_errors() {
        assert!(matches!(
            bearer_challenge(None, "u"),
            Err(ProxyError::BadChallenge { .. })
        ));
        assert!(matches!(
            bearer_challenge(Some("Bearer realm=\"x"), "u"),
            Err(ProxyError::BadChallenge { .. })
        ));
        assert_eq!(bearer_challenge(Some("Basic realm=\"r\""), "u"), Ok(None));
        for h in [
            "Bearer service=\"s\"",
            "Bearer realm=\"/token\"",
            "Bearer realm=\"file:///etc/passwd\"",
        ] {
            let c = bearer_challenge(Some(h), "u").unwrap().unwrap();
            let e = TokenEndpoint::from_challenge(&c, "https://quay.io").unwrap_err();
            assert!(e.to_string().contains("https://quay.io"), "{e}");
        }
    }

    #[test]
    fn anonymous_tokens_are_reused_for_half_their_life() {
        assert_eq!(
            reusable_ms(br#"{"token":"t","expires_in":300}"#),
            Some(150_000.0)
        );
        assert_eq!(reusable_ms(br#"{"token":"t"}"#), Some(30_000.0));
        assert_eq!(
            reusable_ms(br#"{"token":"t","expires_in":86400}"#),
            Some(600_000.0)
        );
        assert_eq!(reusable_ms(br#"{"token":"t","expires_in":15}"#), None);
        assert_eq!(reusable_ms(br#"{"token":"t","expires_in":"300"}"#), None);
        assert_eq!(reusable_ms(b"not json"), None);
    }
}
