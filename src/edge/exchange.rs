//! One routed request on its way through the phases: what every phase reads (the
//! configuration, the request) and what the log line will say (`Trace`). The phases import it;
//! the entry (entry.rs) makes it and runs them in order.

use super::respond::header;
use crate::config::Config;
use crate::error::ProxyError;
use crate::log::{rate_limit_number, Outcome, Verdict};
use crate::plan::proxy_origin;
use url::Url;
use worker::wasm_bindgen::JsValue;
use worker::web_sys::{Headers, Request, Response};
use worker::{Context, Env};

/// What the proxy answers, and how it came to it (for the log line).
pub type Answer = Result<(Response, Outcome), ProxyError>;

/// One routed request on its way through the phases.
pub struct Exchange {
    pub config: &'static Config,
    pub url: Url,
    pub method: String,
    pub req: Request,
    /// The Worker's bindings and the request's execution context, for the phases that store
    /// (the cache's bindings, `waitUntil`) or count (the rate limiter).
    pub env: Env,
    pub ctx: Context,
    /// When the request came in (ms since the epoch, the runtime's clock).
    pub started: f64,
    /// What the log line will say of the upstream.
    pub trace: Trace,
}

#[derive(Debug, Default)]
pub struct Trace {
    /// The upstream's base URL, borrowed from the configuration.
    pub route: Option<&'static str>,
    /// The status of the last upstream answer, if the upstream was asked.
    pub upstream_status: Option<u16>,
    /// Upstream redirects followed.
    pub hops: u8,
    /// Where a cacheable answer came from.
    pub cache: Option<Verdict>,
    /// The length of a cacheable request's upstream answer, when the cache phase read it.
    pub upstream_length: Option<u64>,
    /// The upstream's rate limit and what is left of it, from a manifest answer's headers.
    pub ratelimit_limit: Option<u64>,
    pub ratelimit_remaining: Option<u64>,
    /// Upstream connections that failed before any answer and were tried once more.
    pub retries: u8,
    /// The fallback upstream that served the answer, if one did (failover.rs).
    pub fallback: Option<&'static str>,
    /// A data point's facts, when a `STATS` dataset is bound (edge/stats.rs).
    pub stats: Option<super::stats::Pending>,
}

impl Trace {
    /// The upstream's `RateLimit-Limit` and `RateLimit-Remaining` (two header reads: only for
    /// manifest requests, which Docker Hub counts).
    pub fn rate_limit(&mut self, headers: &Headers) {
        self.ratelimit_limit = rate_limit_number(header(headers, "ratelimit-limit").as_deref());
        self.ratelimit_remaining =
            rate_limit_number(header(headers, "ratelimit-remaining").as_deref());
    }
}

impl Exchange {
    /// The execution context as JavaScript sees it, for store.js, checked.js and stats.js
    /// (`waitUntil`).
    pub fn ctx_js(&self) -> &JsValue {
        self.ctx.as_ref()
    }

    pub fn origin(&self) -> String {
        proxy_origin(&self.url)
    }
}
