//! Proxy users (`PROXY_USERS`, a secret): who may use the proxy at all when it is set, and the
//! proxy's own tokens, HMAC-signed with `PROXY_TOKEN_SECRET`, that `/v2/auth` issues to them
//! and every request is checked against without a round trip.
//!
//! A token is `rp1.<payload>.<mac>` (base64url): the payload is JSON with the user, the
//! proxy host, the registry, the repositories and actions granted, the expiry, and a
//! fingerprint of the user's key, so that changing or removing a user's key ends its tokens.

use crate::classify::Access;
use crate::digest::{base64_decode, base64url, hex, hmac_sha256, same, sha256};
use crate::error::ProxyError;
use crate::policy::Names;
use crate::routes::Upstream;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// How long a proxy token is good for (s): Docker Hub's own lifetime; clients ask again.
pub const TOKEN_SECONDS: u64 = 300;

/// The shortest `PROXY_TOKEN_SECRET` accepted: 32 characters of a generated secret.
const MIN_SECRET: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Users {
    entries: Vec<User>,
    secret: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    key_sha256: [u8; 32],
    /// Pull only: no push, no delete.
    pub pull_only: bool,
    /// When set, only these registries and repositories.
    repositories: Option<Names>,
}

/// What a valid proxy token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The user.
    pub u: String,
    /// The proxy host it was issued on (lower case, no port).
    pub h: String,
    /// The registry (its name in the route table).
    pub r: String,
    /// Repository (upstream name) -> actions granted.
    pub a: BTreeMap<String, Vec<String>>,
    /// Expiry, seconds since the epoch.
    pub x: u64,
    /// The first 8 bytes of the user's key hash, hex.
    pub k: String,
}

/// Why a token is not taken, for the client's `error` and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    BadSignature,
    Expired,
    OtherHost,
    /// The user is gone, or its key changed.
    Revoked,
}

impl Users {
    /// `PROXY_USERS` and `PROXY_TOKEN_SECRET`; `None` when no users are set (everyone is
    /// served, as before).
    pub fn from_vars(
        var: impl Fn(&'static str) -> Option<String>,
        registries: &[(String, Upstream)],
    ) -> Result<Option<Users>, ProxyError> {
        let Some(raw) = var("PROXY_USERS") else {
            return Ok(None);
        };
        let bad = |reason: String| ProxyError::Config {
            var: "PROXY_USERS",
            reason,
        };
        // serde_json's Value, not derived parsers: they would cost the wasm kilobytes
        let expected = || {
            bad("expected a JSON object of user -> {\"sha256\": \"…\"}, as scripts/proxy-user.mjs makes".into())
        };
        let table = match serde_json::from_str::<Value>(&raw) {
            Ok(Value::Object(table)) => table,
            _ => return Err(expected()),
        };
        if table.is_empty() {
            return Err(bad("lists no user: leave it unset to serve everyone".into()));
        }
        let mut entries = vec![];
        for (name, e) in table {
            if name.is_empty() || name.contains([':', ' ']) {
                return Err(bad(format!(
                    "{name:?} is not a user name (no ':' or space)"
                )));
            }
            let Value::Object(e) = e else {
                return Err(expected());
            };
            if let Some(k) = e
                .keys()
                .find(|k| !["sha256", "pull_only", "repositories"].contains(&k.as_str()))
            {
                return Err(bad(format!(
                    "{name}: unknown field {k:?} (sha256, pull_only, repositories)"
                )));
            }
            let key_sha256 = e
                .get("sha256")
                .and_then(Value::as_str)
                .and_then(unhex32)
                .ok_or_else(|| {
                    bad(format!(
                        "{name}: sha256 is not 64 hex digits (the SHA-256 of the user's key)"
                    ))
                })?;
            let pull_only = match e.get("pull_only") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(bad(format!("{name}: pull_only is not true or false"))),
            };
            let repositories = match e.get("repositories") {
                Some(v) => Some(Names::parse("PROXY_USERS", &v.to_string(), registries)?),
                None => None,
            };
            entries.push(User {
                name,
                key_sha256,
                pull_only,
                repositories,
            });
        }
        let secret = var("PROXY_TOKEN_SECRET").unwrap_or_default();
        if secret.trim().len() < MIN_SECRET {
            return Err(ProxyError::Config {
                var: "PROXY_TOKEN_SECRET",
                reason: format!(
                    "must be set, at least {MIN_SECRET} characters, with PROXY_USERS (node scripts/proxy-user.mjs secret)"
                ),
            });
        }
        Ok(Some(Users {
            entries,
            secret: secret.trim().as_bytes().to_vec(),
        }))
    }

    /// The user whose name and key these are. The key's hash is compared in constant time;
    /// an unknown name costs the same hash.
    pub fn login(&self, name: &str, key: &str) -> Option<&User> {
        let hash = sha256(key.as_bytes());
        let user = self.entries.iter().find(|u| u.name == name)?;
        same(&hash, &user.key_sha256).then_some(user)
    }

    /// A `Basic` `Authorization` value's user, if its name and key are right.
    pub fn basic(&self, authorization: &str) -> Option<&User> {
        let (scheme, rest) = authorization.trim().split_once([' ', '\t'])?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64_decode(rest.trim(), false)?;
        let text = String::from_utf8(decoded).ok()?;
        let (name, key) = text.split_once(':')?;
        self.login(name, key)
    }

    /// The token for `user` on `host` for `registry`, granting `access` (repository ->
    /// actions), good from `now` (s) for `TOKEN_SECONDS`.
    pub fn issue(
        &self,
        user: &User,
        host: &str,
        registry: &str,
        access: BTreeMap<String, Vec<String>>,
        now: u64,
    ) -> String {
        let claims = Claims {
            u: user.name.clone(),
            h: host.to_ascii_lowercase(),
            r: registry.to_string(),
            a: access,
            x: now + TOKEN_SECONDS,
            k: user.fingerprint(),
        };
        let payload = base64url(claims.to_json().as_bytes());
        let mac = base64url(&hmac_sha256(&self.secret, payload.as_bytes()));
        format!("rp1.{payload}.{mac}")
    }

    /// The claims of a token presented on `host` at `now` (s), if it is one of ours, intact,
    /// unexpired, for this host, and its user and key are still in `PROXY_USERS`.
    pub fn verify(&self, token: &str, host: &str, now: u64) -> Result<(Claims, &User), Refusal> {
        let rest = token.strip_prefix("rp1.").ok_or(Refusal::Malformed)?;
        let (payload, mac) = rest.split_once('.').ok_or(Refusal::Malformed)?;
        let mac = base64_decode(mac, true).ok_or(Refusal::Malformed)?;
        if !same(&hmac_sha256(&self.secret, payload.as_bytes()), &mac) {
            return Err(Refusal::BadSignature);
        }
        let json = base64_decode(payload, true).ok_or(Refusal::Malformed)?;
        let claims = Claims::from_json(&json).ok_or(Refusal::Malformed)?;
        if claims.x <= now {
            return Err(Refusal::Expired);
        }
        if !claims.h.eq_ignore_ascii_case(host.trim_end_matches('.')) {
            return Err(Refusal::OtherHost);
        }
        let user = self
            .entries
            .iter()
            .find(|u| u.name == claims.u && u.fingerprint() == claims.k)
            .ok_or(Refusal::Revoked)?;
        Ok((claims, user))
    }
}

/// The access phase's decision for a request when proxy users are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door<'u> {
    /// A user who may make this request.
    Pass(&'u User),
    /// No login, or none good for this: `401` with the proxy's challenge.
    Login,
    /// A user who may not: `403 DENIED`.
    Deny,
}

impl Users {
    /// Whether the request with `authorization` (a proxy token, or `Basic` name and key) on
    /// `host` may make a request of `access` to `repository` (as the upstream names it) of
    /// `registry`; `None`: a request of no repository (the version check, `_catalog`).
    pub fn door(
        &self,
        authorization: Option<&str>,
        host: &str,
        registry: &str,
        repository: Option<&str>,
        access: Access,
        now: u64,
    ) -> Door<'_> {
        let Some(auth) = authorization.map(str::trim) else {
            return Door::Login;
        };
        let (user, claims) = match auth.split_once([' ', '\t']) {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                match self.verify(token.trim(), host, now) {
                    Ok((claims, user)) => (user, Some(claims)),
                    Err(_) => return Door::Login,
                }
            }
            _ => match self.basic(auth) {
                Some(user) => (user, None),
                None => return Door::Login,
            },
        };
        let Some(name) = repository else {
            return Door::Pass(user);
        };
        let action = access.action();
        if !user.may(registry, name, action) {
            return Door::Deny;
        }
        match claims {
            Some(c) if !c.allows(registry, name, access) => Door::Login,
            _ => Door::Pass(user),
        }
    }
}

impl User {
    fn fingerprint(&self) -> String {
        hex(&self.key_sha256[..8])
    }

    /// Whether this user may do `action` (`pull`, `push`, `delete`, …) on `name` of `registry`.
    pub fn may(&self, registry: &str, name: &str, action: &str) -> bool {
        if self.pull_only && action != "pull" {
            return false;
        }
        self.repositories
            .as_ref()
            .is_none_or(|r| r.has(registry, name))
    }

    /// Whether this user is limited to some registries or repositories (then requests that
    /// name no repository, such as `_catalog`, are not for it).
    pub fn restricted(&self) -> bool {
        self.repositories.is_some()
    }

    /// Of the `(repository, actions)` asked for, what this user is granted: the actions it
    /// may do, `read_only` taking every action but `pull`.
    pub fn grant(
        &self,
        registry: &str,
        asked: &[(String, Vec<String>)],
        read_only: bool,
    ) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, actions) in asked {
            for action in actions {
                let ok = (!read_only || action == "pull") && self.may(registry, name, action);
                let entry = out.entry(name.clone()).or_default();
                if ok && !entry.contains(action) {
                    entry.push(action.clone());
                }
            }
        }
        out.retain(|_, actions| !actions.is_empty());
        out
    }
}

impl Claims {
    fn to_json(&self) -> String {
        json!({"u": self.u, "h": self.h, "r": self.r, "a": self.a, "x": self.x, "k": self.k})
            .to_string()
    }

    fn from_json(json: &[u8]) -> Option<Claims> {
        let v: Value = serde_json::from_slice(json).ok()?;
        let text = |k: &str| v.get(k)?.as_str().map(str::to_string);
        let mut a = BTreeMap::new();
        for (name, actions) in v.get("a")?.as_object()? {
            let actions = actions
                .as_array()?
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()?;
            a.insert(name.clone(), actions);
        }
        Some(Claims {
            u: text("u")?,
            h: text("h")?,
            r: text("r")?,
            a,
            x: v.get("x")?.as_u64()?,
            k: text("k")?,
        })
    }

    /// Whether the token lets its holder make a request of `access` to `name` of `registry`.
    pub fn allows(&self, registry: &str, name: &str, access: Access) -> bool {
        let action = access.action();
        self.r.eq_ignore_ascii_case(registry)
            && self
                .a
                .get(name)
                .is_some_and(|actions| actions.iter().any(|a| a == action || a == "*"))
    }
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "rpk_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
    const SECRET: &str = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t";

    fn registries() -> Vec<(String, Upstream)> {
        vec![
            (
                "docker.io".into(),
                Upstream::parse("ROUTES", "https://registry-1.docker.io", None).unwrap(),
            ),
            (
                "ghcr.io".into(),
                Upstream::parse("ROUTES", "https://ghcr.io", None).unwrap(),
            ),
        ]
    }

    fn users(table: &str, secret: Option<&str>) -> Result<Option<Users>, ProxyError> {
        let table = table.to_string();
        let secret = secret.map(str::to_string);
        Users::from_vars(
            move |name| match name {
                "PROXY_USERS" => Some(table.clone()),
                "PROXY_TOKEN_SECRET" => secret.clone(),
                _ => None,
            },
            &registries(),
        )
    }

    fn two() -> Users {
        let h = hex(&sha256(KEY.as_bytes()));
        let table = format!(
            r#"{{"alice": {{"sha256": "{h}"}},
                "bob": {{"sha256": "{h}", "pull_only": true,
                         "repositories": {{"docker.io": ["library/*"]}}}}}}"#
        );
        users(&table, Some(SECRET)).unwrap().unwrap()
    }

    fn basic(user: &str, key: &str) -> String {
        let raw = format!("{user}:{key}");
        let b64 = base64url(raw.as_bytes())
            .replace('-', "+")
            .replace('_', "/");
        format!("Basic {b64}")
    }

    #[test]
    fn no_users_is_everyone_and_bad_tables_name_the_var() {
        let none = Users::from_vars(|_| None, &registries()).unwrap();
        assert!(none.is_none());
        let h = hex(&sha256(KEY.as_bytes()));
        for (table, secret, var, word) in [
            ("{}", Some(SECRET), "PROXY_USERS", "no user"),
            ("[1]", Some(SECRET), "PROXY_USERS", "JSON object"),
            (
                r#"{"a": {"sha256": "abc"}}"#,
                Some(SECRET),
                "PROXY_USERS",
                "64 hex",
            ),
            (
                r#"{"a:b": {"sha256": "abc"}}"#,
                Some(SECRET),
                "PROXY_USERS",
                "user name",
            ),
            (
                r#"{"a": {"sha256": "x", "admin": true}}"#,
                Some(SECRET),
                "PROXY_USERS",
                "admin",
            ),
            (
                &format!(r#"{{"a": {{"sha256": "{h}"}}}}"#),
                None,
                "PROXY_TOKEN_SECRET",
                "32",
            ),
            (
                &format!(r#"{{"a": {{"sha256": "{h}"}}}}"#),
                Some("short"),
                "PROXY_TOKEN_SECRET",
                "32",
            ),
            (
                &format!(r#"{{"a": {{"sha256": "{h}", "repositories": {{"quay.io": ["*"]}}}}}}"#),
                Some(SECRET),
                "PROXY_USERS",
                "quay.io",
            ),
        ] {
            let e = users(table, secret).unwrap_err();
            let msg = e.to_string();
            assert!(
                matches!(e, ProxyError::Config { var: v, .. } if v == var),
                "{table}: {msg}"
            );
            assert!(msg.contains(word), "{table}: {msg}");
            assert!(!msg.contains(SECRET));
        }
    }

    #[test]
    fn a_login_needs_the_name_and_its_key() {
        let u = two();
        assert_eq!(
            u.login("alice", KEY).map(|u| u.name.as_str()),
            Some("alice")
        );
        assert!(u.login("alice", "rpk_wrong").is_none());
        assert!(u.login("carol", KEY).is_none());
        assert!(u.login("alice", "").is_none());
        assert_eq!(
            u.basic(&basic("bob", KEY)).map(|u| u.name.as_str()),
            Some("bob")
        );
        assert!(u
            .basic(&format!("basic\t{}", &basic("bob", KEY)[6..]))
            .is_some());
        assert!(u.basic(&basic("bob", "nope")).is_none());
        assert!(u.basic("Bearer x").is_none());
        assert!(u.basic("Basic !!!").is_none());
    }

    #[test]
    fn grants_are_what_the_user_may_do() {
        let u = two();
        let asked = vec![
            (
                "library/busybox".to_string(),
                vec!["pull".into(), "push".into()],
            ),
            ("org/app".to_string(), vec!["pull".into()]),
        ];
        let alice = u.login("alice", KEY).unwrap();
        let all = alice.grant("docker.io", &asked, false);
        assert_eq!(all["library/busybox"], vec!["pull", "push"]);
        assert_eq!(all["org/app"], vec!["pull"]);
        let read_only = alice.grant("docker.io", &asked, true);
        assert_eq!(read_only["library/busybox"], vec!["pull"]);
        let bob = u.login("bob", KEY).unwrap();
        let some = bob.grant("docker.io", &asked, false);
        assert_eq!(some.len(), 1);
        assert_eq!(some["library/busybox"], vec!["pull"]);
        assert!(bob.grant("ghcr.io", &asked, false).is_empty());
        assert!(bob.restricted() && !alice.restricted());
    }

    #[test]
    fn the_door_lets_in_a_token_for_the_request_or_a_right_basic_login() {
        let u = two();
        let host = "docker.example.com";
        let alice = u.login("alice", KEY).unwrap();
        let mut access = BTreeMap::new();
        access.insert("library/busybox".to_string(), vec!["pull".to_string()]);
        let t = format!(
            "Bearer {}",
            u.issue(alice, host, "docker.io", access.clone(), 1000)
        );
        let door = |auth: Option<&str>, repo: Option<&str>, access| {
            u.door(auth, host, "docker.io", repo, access, 1000)
        };
        assert_eq!(
            door(None, Some("library/busybox"), Access::Read),
            Door::Login
        );
        assert_eq!(door(Some("Bearer junk"), None, Access::Read), Door::Login);
        assert!(matches!(door(Some(&t), None, Access::Read), Door::Pass(a) if a.name == "alice"));
        assert!(matches!(
            door(Some(&t), Some("library/busybox"), Access::Read),
            Door::Pass(_)
        ));
        // a token without this scope: log in again for it
        assert_eq!(
            door(Some(&t), Some("library/busybox"), Access::Write),
            Door::Login
        );
        assert_eq!(
            door(Some(&t), Some("library/other"), Access::Read),
            Door::Login
        );
        let b = basic("alice", KEY);
        assert!(matches!(
            door(Some(&b), Some("org/app"), Access::Write),
            Door::Pass(_)
        ));
        assert_eq!(
            door(Some(&basic("alice", "x")), None, Access::Read),
            Door::Login
        );
        // bob may pull library/* only: the rest is denied, whatever he holds
        let bob = basic("bob", KEY);
        assert!(matches!(
            door(Some(&bob), Some("library/busybox"), Access::Read),
            Door::Pass(_)
        ));
        assert_eq!(
            door(Some(&bob), Some("library/busybox"), Access::Write),
            Door::Deny
        );
        assert_eq!(door(Some(&bob), Some("org/app"), Access::Read), Door::Deny);
        let bobs = u.login("bob", KEY).unwrap();
        let tb = format!("Bearer {}", u.issue(bobs, host, "docker.io", access, 1000));
        assert_eq!(door(Some(&tb), Some("org/app"), Access::Read), Door::Deny);
    }

    #[test]
    fn tokens_verify_only_intact_unexpired_on_their_host_for_a_current_key() {
        let u = two();
        let alice = u.login("alice", KEY).unwrap();
        let mut access = BTreeMap::new();
        access.insert("library/busybox".to_string(), vec!["pull".to_string()]);
        let t = u.issue(alice, "Docker.Example.com", "docker.io", access, 1000);
        let (claims, user) = u.verify(&t, "docker.example.com", 1000).unwrap();
        assert_eq!(user.name, "alice");
        assert!(claims.allows("docker.io", "library/busybox", Access::Read));
        assert!(!claims.allows("docker.io", "library/busybox", Access::Write));
        assert!(!claims.allows("docker.io", "library/other", Access::Read));
        assert!(!claims.allows("ghcr.io", "library/busybox", Access::Read));
        assert_eq!(
            u.verify(&t, "docker.example.com", 1000 + TOKEN_SECONDS)
                .unwrap_err(),
            Refusal::Expired
        );
        assert_eq!(
            u.verify(&t, "ghcr.example.com", 1000).unwrap_err(),
            Refusal::OtherHost
        );
        // tampered: another user's name in the payload, the signature kept
        let (payload, mac) = t["rp1.".len()..].split_once('.').unwrap();
        let json = String::from_utf8(base64_decode(payload, true).unwrap()).unwrap();
        let forged = base64url(json.replace("alice", "bob").as_bytes());
        assert_eq!(
            u.verify(&format!("rp1.{forged}.{mac}"), "docker.example.com", 1000)
                .unwrap_err(),
            Refusal::BadSignature
        );
        // signed with another secret
        let other = users(
            &format!(
                r#"{{"alice": {{"sha256": "{}"}}}}"#,
                hex(&sha256(KEY.as_bytes()))
            ),
            Some("another-secret-another-secret-another"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            other.verify(&t, "docker.example.com", 1000).unwrap_err(),
            Refusal::BadSignature
        );
        for junk in ["", "rp1.", "rp1.a.b", "Zm9v.YmFy", "rp1.!!.??"] {
            assert!(
                u.verify(junk, "docker.example.com", 1000).is_err(),
                "{junk}"
            );
        }
        // the key changed: the token is over
        let rotated = users(
            &format!(
                r#"{{"alice": {{"sha256": "{}"}}}}"#,
                hex(&sha256(b"rpk_new"))
            ),
            Some(SECRET),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            rotated.verify(&t, "docker.example.com", 1000).unwrap_err(),
            Refusal::Revoked
        );
    }
}
