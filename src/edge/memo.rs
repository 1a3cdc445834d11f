//! The isolate's memory between requests (memo.rs): upstream challenges to anonymous clients
//! and anonymous token answers, each for a bounded time.

use crate::memo::{accepted_key, confirmed_key, Memo, ACCEPTED_MS, CHALLENGE_MS, CONFIRMED_MS};
use std::cell::RefCell;
use worker::js_sys;

thread_local! {
    static CHALLENGES: RefCell<Memo<String>> = RefCell::new(Memo::new(32));
    static TOKENS: RefCell<Memo<String>> = RefCell::new(Memo::new(256));
    /// When the upstream said yes, per credentials and repository, and per digest there.
    static ACCEPTED: RefCell<Memo<f64>> = RefCell::new(Memo::new(1024));
    static CONFIRMED: RefCell<Memo<f64>> = RefCell::new(Memo::new(8192));
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

/// The upstream's yes to `authorization` (as it went upstream) for `repository`, and to
/// `digest` being there, if any; kept for `stale_ms` when that is longer than their windows.
pub fn vouch(
    base: &str,
    repository: &str,
    authorization: Option<&str>,
    digest: Option<&str>,
    stale_ms: f64,
) {
    let t = now();
    ACCEPTED.with(|m| {
        m.borrow_mut().put(
            &accepted_key(base, repository, authorization),
            t,
            t + ACCEPTED_MS.max(stale_ms),
            t,
        )
    });
    if let Some(d) = digest {
        CONFIRMED.with(|m| {
            m.borrow_mut().put(
                &confirmed_key(base, repository, d),
                t,
                t + CONFIRMED_MS.max(stale_ms),
                t,
            )
        });
    }
}

/// Whether the upstream accepted these credentials for the repository within `accepted_ms`
/// and has shown the digest to be in it within `confirmed_ms`: then it need not be asked
/// again (`ACCEPTED_MS`, `CONFIRMED_MS`), or its answer may be done without while it cannot
/// give one (the stale age).
pub fn vouched(
    base: &str,
    repository: &str,
    authorization: Option<&str>,
    digest: &str,
    accepted_ms: f64,
    confirmed_ms: f64,
) -> bool {
    let t = now();
    let within = |at: Option<f64>, ms: f64| at.is_some_and(|at| at > t - ms);
    within(
        ACCEPTED.with(|m| {
            m.borrow_mut()
                .get(&accepted_key(base, repository, authorization), t)
        }),
        accepted_ms,
    ) && within(
        CONFIRMED.with(|m| {
            m.borrow_mut()
                .get(&confirmed_key(base, repository, digest), t)
        }),
        confirmed_ms,
    )
}
