//! The proxy's own accounts at upstream registries (`UPSTREAM_CREDENTIALS`, a secret): a
//! Docker Hub user and access token, say, so that the proxy's token requests count against
//! that account's limits rather than the Worker's shared addresses'.
//!
//! An account reads whatever it may read: strangers reading as the operator is only safe when
//! someone restricts who uses the proxy, so the configuration refuses accounts unless proxy
//! users, an allow list or `PUBLIC_UPSTREAM_CREDENTIALS = "true"` say who may.

use crate::digest::base64;
use crate::error::ProxyError;
use crate::routes::Upstream;
use serde_json::Value;
use std::fmt;
use url::{form_urlencoded, Url};

const VAR: &str = "UPSTREAM_CREDENTIALS";

#[derive(Clone, PartialEq, Eq, Default)]
pub struct Accounts(Vec<Account>);

#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// The upstream's base URL (one account per upstream, whatever name it is given by).
    base: String,
    /// `Basic …` for its token service.
    authorization: String,
}

/// Never the secret, whoever prints the configuration.
impl fmt::Debug for Accounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|a| (&a.base, "(credentials)")))
            .finish()
    }
}

impl Accounts {
    /// `UPSTREAM_CREDENTIALS`: `{"docker.io": {"username": "…", "password": "…"}, …}`, keyed
    /// by registry names of the route table. `restricted`: proxy users or an allow list decide
    /// who uses the proxy. No error message quotes a value of the secret.
    pub fn from_vars(
        var: impl Fn(&'static str) -> Option<String>,
        registries: &[(String, Upstream)],
        restricted: bool,
    ) -> Result<Accounts, ProxyError> {
        let public = match var("PUBLIC_UPSTREAM_CREDENTIALS").as_deref().map(str::trim) {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(ProxyError::Config {
                    var: "PUBLIC_UPSTREAM_CREDENTIALS",
                    reason: "is neither \"true\" nor \"false\"".into(),
                })
            }
        };
        let Some(raw) = var(VAR) else {
            return Ok(Accounts::default());
        };
        let bad = |reason: String| ProxyError::Config { var: VAR, reason };
        let expected = || {
            bad(
                "expected a JSON object of registry -> {\"username\": \"…\", \"password\": \"…\"}"
                    .into(),
            )
        };
        let table = match serde_json::from_str::<Value>(&raw) {
            Ok(Value::Object(table)) => table,
            _ => return Err(expected()),
        };
        let mut accounts: Vec<Account> = vec![];
        for (name, entry) in table {
            let Some(upstream) = registries
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                .map(|(_, u)| u)
            else {
                return Err(bad(format!(
                    "{:?} is not a registry of the route table (CUSTOM_DOMAIN, ROUTES)",
                    crate::error::echo(&name)
                )));
            };
            let Value::Object(entry) = entry else {
                return Err(expected());
            };
            if let Some(k) = entry
                .keys()
                .find(|k| !["username", "password"].contains(&k.as_str()))
            {
                return Err(bad(format!(
                    "{name}: unknown field {:?} (username, password)",
                    crate::error::echo(k)
                )));
            }
            let field = |key: &str| {
                entry
                    .get(key)
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
            };
            let (Some(user), Some(password)) = (field("username"), field("password")) else {
                return Err(bad(format!(
                    "{name}: needs a username and a password (or access token), as strings"
                )));
            };
            if user.contains(':') || user.chars().chain(password.chars()).any(char::is_control) {
                return Err(bad(format!(
                    "{name}: a username has no ':', neither has control characters"
                )));
            }
            if accounts.iter().any(|a| a.base == upstream.base) {
                return Err(bad(format!(
                    "{name}: a second account for {}, named another way",
                    upstream.base
                )));
            }
            accounts.push(Account {
                base: upstream.base.clone(),
                authorization: format!("Basic {}", base64(format!("{user}:{password}").as_bytes())),
            });
        }
        if !accounts.is_empty() && !restricted && !public {
            return Err(bad(
                "lets anyone who finds this proxy read as these accounts: set PROXY_USERS, \
                 ALLOW_REPOSITORIES or ALLOW_IPS, or PUBLIC_UPSTREAM_CREDENTIALS = \"true\" \
                 to accept that"
                    .into(),
            ));
        }
        Ok(Accounts(accounts))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `Authorization` of a token request to `realm` for the upstream `base`, asked for
    /// `params` (query and form): none when the client brought its own credentials (`own`) or
    /// asks for more than reading, else the upstream's account, if it has one.
    pub fn for_token_request(
        &self,
        base: &str,
        realm: &Url,
        own: bool,
        params: &str,
    ) -> Option<&str> {
        let account = self.of(base).filter(|_| !own)?;
        reads_only(params)
            .then(|| account.authorization(realm))
            .flatten()
    }

    /// The account for an upstream (`base`), if one is configured.
    pub fn of(&self, base: &str) -> Option<&Account> {
        self.0.iter().find(|a| a.base == base)
    }
}

impl Account {
    /// The `Authorization` for a token request to `realm`, if the account may go there: never
    /// over plain HTTP unless the upstream itself is (a test registry on localhost).
    pub fn authorization(&self, realm: &Url) -> Option<&str> {
        (realm.scheme() == "https" || self.base.starts_with("http://"))
            .then_some(self.authorization.as_str())
    }
}

/// Whether an anonymous client's token request (`params`: query and form) asks to read only:
/// every scope a repository's, with `pull` as its only action. The account goes with it then;
/// pushing or deleting as the operator's account takes a proxy user.
pub fn reads_only(params: &str) -> bool {
    form_urlencoded::parse(params.as_bytes())
        .filter(|(k, _)| k == "scope")
        .all(|(_, value)| {
            value.split(' ').filter(|s| !s.is_empty()).all(|scope| {
                let Some((kind, rest)) = scope.split_once(':') else {
                    return false;
                };
                let Some((name, actions)) = rest.rsplit_once(':') else {
                    return false;
                };
                kind == "repository"
                    && !name.is_empty()
                    && actions.split(',').all(|a| a.trim() == "pull")
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::base64_decode;

    fn registries() -> Vec<(String, Upstream)> {
        let hub = Upstream::parse("ROUTES", "https://registry-1.docker.io", Some(true)).unwrap();
        let hub = hub.with_name("ROUTES", "docker.io").unwrap();
        let ghcr = Upstream::parse("ROUTES", "https://ghcr.io", None).unwrap();
        let local = Upstream::parse("ROUTES", "http://127.0.0.1:5000", None).unwrap();
        vec![
            ("docker.io".into(), hub.clone()),
            ("index.docker.io".into(), hub),
            ("ghcr.io".into(), ghcr),
            ("127.0.0.1:5000".into(), local),
        ]
    }

    fn parse(raw: &str, restricted: bool, public: Option<&str>) -> Result<Accounts, ProxyError> {
        let raw = raw.to_string();
        let public = public.map(str::to_string);
        Accounts::from_vars(
            move |name| match name {
                "UPSTREAM_CREDENTIALS" => Some(raw.clone()),
                "PUBLIC_UPSTREAM_CREDENTIALS" => public.clone(),
                _ => None,
            },
            &registries(),
            restricted,
        )
    }

    fn reason(e: ProxyError) -> (String, String) {
        match e {
            ProxyError::Config { var, reason } => (var.to_string(), reason),
            other => panic!("{other:?}"),
        }
    }

    const HUB: &str = r#"{"docker.io": {"username": "me", "password": "dckr_pat_s3cret"}}"#;

    #[test]
    fn an_account_is_basic_for_its_upstream_only() {
        let a = parse(HUB, true, None).unwrap();
        let hub = a.of("https://registry-1.docker.io").unwrap();
        let realm = Url::parse("https://auth.docker.io/token").unwrap();
        let basic = hub.authorization(&realm).unwrap();
        let decoded = base64_decode(basic.strip_prefix("Basic ").unwrap(), false).unwrap();
        assert_eq!(decoded, b"me:dckr_pat_s3cret");
        assert!(a.of("https://ghcr.io").is_none());
        // an https upstream's token service over plain HTTP gets nothing
        let http = Url::parse("http://auth.docker.io/token").unwrap();
        assert_eq!(hub.authorization(&http), None);
        // the same upstream by its other name
        let b = parse(
            r#"{"index.docker.io": {"username": "me", "password": "p"}}"#,
            true,
            None,
        )
        .unwrap();
        assert!(b.of("https://registry-1.docker.io").is_some());
        let local = parse(
            r#"{"127.0.0.1:5000": {"username": "alice", "password": "wonderland"}}"#,
            true,
            None,
        )
        .unwrap();
        let http = Url::parse("http://127.0.0.1:5002/token").unwrap();
        assert!(local
            .of("http://127.0.0.1:5000")
            .unwrap()
            .authorization(&http)
            .is_some());
        assert!(format!("{local:?}").contains("127.0.0.1:5000"));
        assert!(!format!("{local:?} {b:?}").contains("wonderland"));
        assert!(parse("", true, None).is_err());
    }

    #[test]
    fn a_token_request_carries_the_account_only_for_reads_of_clients_without_their_own() {
        let a = parse(HUB, true, None).unwrap();
        let hub = "https://registry-1.docker.io";
        let realm = Url::parse("https://auth.docker.io/token").unwrap();
        let pull = "scope=repository%3Alibrary%2Fnginx%3Apull&service=registry.docker.io";
        assert!(a.for_token_request(hub, &realm, false, pull).is_some());
        assert_eq!(a.for_token_request(hub, &realm, true, pull), None);
        let push = "scope=repository%3Ame%2Fapp%3Apull%2Cpush";
        assert_eq!(a.for_token_request(hub, &realm, false, push), None);
        assert_eq!(
            a.for_token_request("https://ghcr.io", &realm, false, pull),
            None
        );
    }

    #[test]
    fn base64_is_the_standard_padded_alphabet() {
        for (data, want) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"\xfb\xff", "+/8="),
            (b"Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ] {
            assert_eq!(base64(data), want);
        }
    }

    #[test]
    fn unrestricted_accounts_are_refused_unless_the_operator_accepts_a_public_proxy() {
        let (var, why) = reason(parse(HUB, false, None).unwrap_err());
        assert_eq!(var, "UPSTREAM_CREDENTIALS");
        assert!(why.contains("PROXY_USERS") && why.contains("PUBLIC_UPSTREAM_CREDENTIALS"));
        assert!(parse(HUB, false, Some("true")).is_ok());
        assert!(parse(HUB, false, Some("false")).is_err());
        let (var, _) = reason(parse(HUB, false, Some("yes")).unwrap_err());
        assert_eq!(var, "PUBLIC_UPSTREAM_CREDENTIALS");
        // none configured: nothing to restrict
        assert!(parse("{}", false, None).unwrap().is_empty());
    }

    #[test]
    fn bad_tables_are_refused_without_quoting_the_secret() {
        for (raw, part) in [
            ("not json dckr_pat_s3cret", "JSON object"),
            (r#"["dckr_pat_s3cret"]"#, "JSON object"),
            (r#"{"docker.io": "me:dckr_pat_s3cret"}"#, "JSON object"),
            (
                r#"{"quay.io": {"username": "me", "password": "dckr_pat_s3cret"}}"#,
                "quay.io",
            ),
            (
                r#"{"docker.io": {"username": "me"}}"#,
                "needs a username and a password",
            ),
            (
                r#"{"docker.io": {"username": "me", "password": 7}}"#,
                "as strings",
            ),
            (
                r#"{"docker.io": {"username": "", "password": "dckr_pat_s3cret"}}"#,
                "needs",
            ),
            (
                r#"{"docker.io": {"username": "m:e", "password": "dckr_pat_s3cret"}}"#,
                "':'",
            ),
            (
                r#"{"docker.io": {"username": "me", "password": "dckr_pat_s3cret\n"}}"#,
                "control",
            ),
            (
                r#"{"docker.io": {"username": "me", "password": "dckr_pat_s3cret", "token": "dckr_pat_s3cret"}}"#,
                "unknown field \"token\"",
            ),
            (
                r#"{"docker.io": {"username": "me", "password": "dckr_pat_s3cret"}, "index.docker.io": {"username": "me", "password": "dckr_pat_s3cret"}}"#,
                "second account",
            ),
        ] {
            let (var, why) = reason(parse(raw, true, None).unwrap_err());
            assert_eq!(var, "UPSTREAM_CREDENTIALS", "{raw}");
            assert!(why.contains(part), "{raw}: {why}");
            assert!(!why.contains("s3cret"), "{raw}: {why}");
        }
    }

    #[test]
    fn only_pull_scopes_of_repositories_read_only() {
        for reads in [
            "",
            "service=x",
            "scope=repository%3Alibrary%2Fbusybox%3Apull&service=x",
            "scope=repository:a:pull&scope=repository:b/c:pull",
            "scope=repository%3Aa%3Apull%20repository%3Ab%3Apull",
            "scope=repository:127.0.0.1:5000/a:pull",
        ] {
            assert!(reads_only(reads), "{reads}");
        }
        for writes in [
            "scope=repository:a:pull,push",
            "scope=repository:a:push",
            "scope=repository:a:*",
            "scope=repository:a:delete",
            "scope=repository:a:pull&scope=repository:b:pull,push",
            "scope=repository%3Aa%3Apull%20repository%3Ab%3Apush",
            "scope=registry:catalog:*",
            "scope=repository(plugin):a:pull",
            "scope=repository::pull",
            "scope=nonsense",
        ] {
            assert!(!reads_only(writes), "{writes}");
        }
    }
}
