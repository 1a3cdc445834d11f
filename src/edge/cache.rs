//! The cache store, between the access phase and the upstream: where a request can be
//! answered without asking the upstream, and where upstream answers are kept.
//!
//! Nothing is stored yet, so every lookup misses and every request goes upstream.

use super::entry::Exchange;
use crate::log::Outcome;
use crate::plan::Forward;
use worker::web_sys::Response;

/// A stored answer for this request, if the store has one the client may read.
pub async fn lookup(_x: &Exchange, _forward: &Forward<'_>) -> Option<(Response, Outcome)> {
    None
}
