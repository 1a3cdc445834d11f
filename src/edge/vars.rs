//! The configuration from wrangler vars, read and validated once per isolate.

use crate::config::{bucket_bound, limiter_bound, stats_bound, Binding, Config};
use crate::error::ProxyError;
use std::cell::OnceCell;
use worker::wasm_bindgen::JsValue;
use worker::{js_sys, Env};

thread_local! {
    // Vars are fixed for an isolate's life: parse and validate them once, and keep them for
    // good, so that plans borrowing from them can outlive the request that made them.
    static CONFIG: OnceCell<Result<&'static Config, ProxyError>> = const { OnceCell::new() };
}

pub fn config(env: &Env) -> Result<&'static Config, ProxyError> {
    CONFIG.with(|cell| {
        cell.get_or_init(|| {
            let mut config = Config::from_vars(|name| read_var(env, name))?;
            bucket_bound(binding(env, BUCKET))?;
            config.policy.rate_limited = limiter_bound(binding(env, LIMITER))?;
            config.stats_bound = stats_bound(binding(env, super::stats::STATS))?;
            Ok(&*Box::leak(Box::new(config)))
        })
        .clone()
    })
}

/// A var as a string: wrangler passes a TOML table in `[vars]` as an object, so serialize it.
fn read_var(env: &Env, name: &str) -> Option<String> {
    let v = js_sys::Reflect::get(env, &JsValue::from_str(name)).ok()?;
    if v.is_undefined() || v.is_null() {
        return None;
    }
    v.as_string()
        .or_else(|| js_sys::JSON::stringify(&v).ok().map(String::from))
}

/// The binding name of the R2 bucket the cache may use (`[[r2_buckets]]` in wrangler.toml).
const BUCKET: &str = "CACHE_BUCKET";

fn binding(env: &Env, name: &str) -> Binding {
    match js_sys::Reflect::get(env, &JsValue::from_str(name)) {
        Ok(v) if v.is_string() => Binding::Text,
        Ok(v) if v.is_object() => Binding::Bound,
        _ => Binding::Absent,
    }
}

/// The R2 bucket bound as `CACHE_BUCKET`, if any (checked to be no var by `config`).
pub fn bucket(env: &Env) -> Option<JsValue> {
    js_sys::Reflect::get(env, &JsValue::from_str(BUCKET))
        .ok()
        .filter(JsValue::is_object)
}

/// The binding name of the rate limiter (`[[ratelimits]]` in wrangler.toml).
const LIMITER: &str = "RATE_LIMITER";

/// The rate limiter bound as `RATE_LIMITER`, if any (checked to be no var by `config`).
pub fn limiter(env: &Env) -> Option<JsValue> {
    js_sys::Reflect::get(env, &JsValue::from_str(LIMITER))
        .ok()
        .filter(JsValue::is_object)
}
