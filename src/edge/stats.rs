//! Usage at a glance (stats.rs decides): a request's data point into the Analytics Engine
//! dataset bound as `STATS`, written by the log phase without waiting, and the `/_stats` page
//! behind its token (drawn by stats.js).

use super::exchange::{Answer, Exchange};
use super::respond::header;
use crate::classify::Resource;
use crate::error::ProxyError;
use crate::log::{Outcome, Verdict};
use crate::plan::Plan;
use crate::stats::{data_point, given_token, kind, Facts};
use worker::js_sys::{Promise, Reflect};
use worker::wasm_bindgen::{self, JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::Response;

#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/edge/stats.js")]
extern "C" {
    #[wasm_bindgen(js_name = writePoint)]
    fn write_point(ctx: &JsValue, dataset: &JsValue, blobs: &str, doubles: &[f64]);
    #[wasm_bindgen(js_name = statsPage)]
    fn stats_page(sql_url: &str, api_token: &str, dataset: &str) -> Promise;
}

/// The binding name of the dataset (`[[analytics_engine_datasets]]` in wrangler.toml).
pub const STATS: &str = "STATS";

/// What a request's data point needs beyond the log line, gathered on the way (only with the
/// dataset bound).
#[derive(Debug)]
pub struct Pending {
    dataset: JsValue,
    ctx: JsValue,
    registry: &'static str,
    repository: String,
    resource: Option<Resource>,
    version_check: bool,
    pub user: String,
    country: String,
}

/// The data point's facts of a planned request, if a dataset is bound.
pub fn pending(x: &Exchange, plan: &Plan<'static>) -> Option<Pending> {
    if !x.config.stats_bound {
        return None;
    }
    let dataset = Reflect::get(&x.env, &JsValue::from_str(STATS))
        .ok()
        .filter(JsValue::is_object)?;
    let (repository, resource, version_check) = match plan {
        Plan::Upstream(f) => (
            f.repository
                .as_ref()
                .map_or(String::new(), |r| r.name.clone()),
            f.repository.as_ref().map(|r| r.resource),
            f.is_version_check(),
        ),
        _ => (String::new(), None, false),
    };
    let country = Reflect::get(&x.req, &JsValue::from_str("cf"))
        .ok()
        .filter(JsValue::is_object)
        .and_then(|cf| Reflect::get(&cf, &JsValue::from_str("country")).ok())
        .and_then(|c| c.as_string())
        .unwrap_or_default();
    Some(Pending {
        dataset,
        ctx: x.ctx_js().clone(),
        registry: plan.upstream().map_or("", |u| u.name.as_str()),
        repository,
        resource,
        version_check,
        user: String::new(),
        country,
    })
}

/// What the log phase knows of the answer.
pub struct Answered<'a> {
    pub method: &'a str,
    pub status: u16,
    pub outcome: Outcome,
    pub cache: Option<Verdict>,
    pub resp: &'a Response,
    pub upstream_bytes: Option<u64>,
    pub duration_ms: u64,
    pub ratelimit_remaining: Option<u64>,
}

/// Writes the data point (one call, its strings joined: one crossing for them).
pub fn write(p: &Pending, a: &Answered<'_>) {
    let bytes = header(&a.resp.headers(), "content-length").and_then(|l| l.trim().parse().ok());
    let point = data_point(&Facts {
        registry: p.registry,
        repository: &p.repository,
        kind: kind(a.outcome, p.resource, p.version_check),
        method: a.method,
        cache: a.cache,
        outcome: a.outcome,
        user: &p.user,
        country: &p.country,
        status: a.status,
        bytes,
        upstream_bytes: a.upstream_bytes,
        duration_ms: a.duration_ms,
        ratelimit_remaining: a.ratelimit_remaining,
    });
    write_point(
        &p.ctx,
        &p.dataset,
        &point.blobs.join("\u{1f}"),
        &point.doubles,
    );
}

/// `/_stats`: the page for its token, else the unknown path's 404 (nothing says it is there).
pub async fn page(x: &Exchange) -> Answer {
    let page = x.config.stats.as_ref().ok_or(ProxyError::NotFound)?;
    let auth = header(&x.req.headers(), "authorization");
    if !page.admits(given_token(x.url.query(), auth.as_deref()).as_deref()) {
        return Err(ProxyError::NotFound);
    }
    let drawn = JsFuture::from(stats_page(&page.sql_url, &page.api_token, &page.dataset))
        .await
        .map_err(|_| ProxyError::Internal("the usage page".into()))?;
    Ok((drawn.unchecked_into(), Outcome::Page))
}
