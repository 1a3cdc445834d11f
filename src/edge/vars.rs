//! The configuration from wrangler vars, read and validated once per isolate.

use crate::config::Config;
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
            Config::from_vars(|name| read_var(env, name)).map(|c| &*Box::leak(Box::new(c)))
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
