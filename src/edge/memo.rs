//! The isolate's memory between requests (memo.rs): upstream challenges to anonymous clients
//! and anonymous token answers, each for a bounded time.

use crate::memo::{Memo, CHALLENGE_MS};
use std::cell::RefCell;
use worker::js_sys;

thread_local! {
    static CHALLENGES: RefCell<Memo<String>> = const { RefCell::new(Memo::new(32)) };
    static TOKENS: RefCell<Memo<String>> = const { RefCell::new(Memo::new(256)) };
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
        m.borrow_mut()
            .put(base, www_authenticate.to_string(), now() + CHALLENGE_MS)
    });
}

/// An anonymous token answer for the same request, if one is still good to give.
pub fn token(key: &str) -> Option<String> {
    TOKENS.with(|m| m.borrow_mut().get(key, now()))
}

pub fn remember_token(key: &str, body: String, for_ms: f64) {
    TOKENS.with(|m| m.borrow_mut().put(key, body, now() + for_ms));
}
