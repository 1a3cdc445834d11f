//! The isolate's memory between requests (memo.rs): upstream challenges to anonymous clients,
//! anonymous token answers and the upstream's recent yeses, each for a bounded time.

use crate::memo::{Memo, Yeses, CHALLENGE_MS};
use std::cell::RefCell;
use worker::js_sys;

thread_local! {
    static CHALLENGES: RefCell<Memo<String>> = RefCell::new(Memo::new(32));
    static TOKENS: RefCell<Memo<String>> = RefCell::new(Memo::new(256));
    /// Upstream tokens this isolate's `/v2/auth` got for clients without credentials.
    /// (a `Memo<String>` as `TOKENS` is: one generic instance less in the wasm)
    static ANONYMOUS: RefCell<Memo<String>> = RefCell::new(Memo::new(256));
    /// When the upstream said yes, per credentials and repository, and per digest there.
    static YESES: RefCell<Yeses> = RefCell::new(Yeses::default());
}

fn now() -> f64 {
    js_sys::Date::now()
}

/// The `WWW-Authenticate` the upstream at `base` last answered an anonymous `/v2/` with.
pub fn challenge(base: &str) -> Option<String> {
    CHALLENGES.with(|m| m.borrow_mut().get(base, now()))
}

pub fn remember_challenge(base: &str, www_authenticate: &str) {
    CHALLENGES.with(|m| {
        m.borrow_mut().put(
            base,
            www_authenticate.to_string(),
            now() + CHALLENGE_MS,
            now(),
        )
    });
}

/// An anonymous token answer for the same request, if one is still good to give.
pub fn token(key: &str) -> Option<String> {
    TOKENS.with(|m| m.borrow_mut().get(key, now()))
}

pub fn remember_token(key: &str, body: String, for_ms: f64) {
    TOKENS.with(|m| m.borrow_mut().put(key, body, now() + for_ms, now()));
}

/// That `/v2/auth` got this upstream `Authorization` (`Bearer …`) anonymously, for `for_ms`.
pub fn remember_anonymous(authorization: &str, for_ms: f64) {
    ANONYMOUS.with(|m| {
        m.borrow_mut()
            .put(authorization, String::new(), now() + for_ms, now())
    });
}

/// Whether this isolate's `/v2/auth` got this upstream `Authorization` anonymously.
pub fn issued_anonymously(authorization: &str) -> bool {
    ANONYMOUS.with(|m| m.borrow_mut().get(authorization, now()).is_some())
}

/// The upstream's yes to `authorization` (as it went upstream) for `repository`, and to
/// `digest` being there (memo.rs `Yeses`).
pub fn vouch(
    base: &str,
    repository: &str,
    authorization: Option<&str>,
    digest: Option<&str>,
    stale_ms: f64,
) {
    YESES.with(|y| {
        y.borrow_mut()
            .vouch(now(), base, repository, authorization, digest, stale_ms)
    });
}

/// Whether the upstream's yes to these credentials and this digest in the repository is
/// recent enough (memo.rs `Yeses::vouched`).
pub fn vouched(
    base: &str,
    repository: &str,
    authorization: Option<&str>,
    digest: &str,
    accepted_ms: f64,
    confirmed_ms: f64,
) -> bool {
    YESES.with(|y| {
        y.borrow_mut().vouched(
            now(),
            base,
            repository,
            authorization,
            digest,
            accepted_ms,
            confirmed_ms,
        )
    })
}
