//! The Rate Limiting binding (`RATE_LIMITER`): one count per request, keyed as access.rs
//! decides.

use super::vars;
use crate::access::RETRY_AFTER_SECONDS;
use crate::error::ProxyError;
use worker::js_sys::{self, Function, Object, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::Env;

/// Counts this request against `key`: `TooManyRequests` once over the limit. A limiter that
/// fails lets the request go on (the binding is best effort, as Cloudflare documents it).
pub async fn count(env: &Env, key: &str) -> Result<(), ProxyError> {
    let Some(limiter) = vars::limiter(env) else {
        return Ok(());
    };
    let call = || -> Option<js_sys::Promise> {
        let limit: Function = Reflect::get(&limiter, &"limit".into())
            .ok()?
            .dyn_into()
            .ok()?;
        let options = Object::new();
        Reflect::set(&options, &"key".into(), &JsValue::from_str(key)).ok()?;
        limit.call1(&limiter, &options).ok()?.dyn_into().ok()
    };
    let Some(promise) = call() else {
        return Ok(());
    };
    let Ok(outcome) = JsFuture::from(promise).await else {
        return Ok(());
    };
    let success = Reflect::get(&outcome, &"success".into()).ok();
    if success.and_then(|s| s.as_bool()) == Some(false) {
        return Err(ProxyError::TooManyRequests {
            retry_after: RETRY_AFTER_SECONDS,
        });
    }
    Ok(())
}
