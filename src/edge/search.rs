//! `/v1/search` at the edge (search.rs decides): one GET to the search service with the
//! planned URL and no header of the client's, its answer read whole (with a length, so a cut
//! answer is a 502) and passed on with its status, type and rate-limit headers.

use super::body::read_answer;
use super::exchange::{Answer, Exchange};
use super::respond::{new_headers, set};
use super::send::{send, Outgoing};
use crate::error::ProxyError;
use crate::log::Outcome;
use crate::search::{passes_header, Search, MAX_ANSWER};
use worker::js_sys;
use worker::wasm_bindgen::JsCast;
use worker::web_sys::{Response, ResponseInit};

pub async fn answer(x: &mut Exchange, search: &Search<'_>) -> Answer {
    let headers = new_headers()?;
    set(&headers, "accept", "application/json")?;
    let url = search.url();
    let out = Outgoing {
        url: &url,
        method: "GET",
        headers,
        body: None,
        follow: true,
        home: search.service,
        upstream: search.service,
        timeout_ms: x.config.timeout_ms,
    };
    let (resp, status) = send(&mut x.trace, out).await?;
    let ms = x.config.timeout_ms;
    let body = read_answer(resp.body(), MAX_ANSWER, ms, search.service, "search answer").await?;
    let kept = new_headers()?;
    if let Ok(Some(entries)) = js_sys::try_iter(&resp.headers()) {
        for entry in entries.flatten() {
            let pair: js_sys::Array = entry.unchecked_into();
            let (name, value) = (pair.get(0).as_string(), pair.get(1).as_string());
            if let (Some(name), Some(value)) = (name, value) {
                if passes_header(&name) {
                    set(&kept, &name, &value)?;
                }
            }
        }
    }
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_headers(&kept);
    let body = (x.method != "HEAD").then_some(&body);
    let resp = Response::new_with_opt_js_u8_array_and_init(body, &init)
        .map_err(|_| ProxyError::Internal("a search answer".into()))?;
    Ok((resp, Outcome::Search))
}
