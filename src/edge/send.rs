//! Sending to an upstream: one fetch raced against the configured time to response headers,
//! redirects followed by hand with the credentials kept on their own origin, the runtime's
//! timer.

use super::exchange::Trace;
use super::respond::{copy_headers, header};
use crate::error::ProxyError;
use crate::failover::retried;
use crate::redirect::{is_redirect, keeps_credentials, next_hop, CREDENTIAL_HEADERS, MAX_HOPS};
use std::cell::OnceCell;
use url::Url;
use worker::js_sys::{self, Promise};
use worker::wasm_bindgen::{self, closure::Closure, JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{self, Headers, RequestRedirect, Response};

/// A request for the upstream.
pub struct Outgoing<'a> {
    pub url: &'a str,
    pub method: &'a str,
    pub headers: Headers,
    pub body: Option<JsValue>,
    /// Redirects are followed (else the answer is the redirect).
    pub follow: bool,
    /// The origin the credentials are for: a hop anywhere else goes without them.
    pub home: &'a str,
    /// The upstream that errors name.
    pub upstream: &'a str,
    /// How long to wait for the response headers (`UPSTREAM_TIMEOUT_MS`).
    pub timeout_ms: u32,
}

/// An upstream's final answer, and the request it answered.
pub struct Reply {
    pub resp: Response,
    pub status: u16,
    /// The URL the answer came from when redirects were followed to it (`None`: the request's
    /// own), and the headers that went there: what a second `GET` of the same bytes asks.
    pub from: Option<String>,
    pub headers: Headers,
}

/// Sends a request, following its redirects if asked to: the final answer and its status.
pub async fn send(trace: &mut Trace, out: Outgoing<'_>) -> Result<(Response, u16), ProxyError> {
    let r = reply(trace, out).await?;
    Ok((r.resp, r.status))
}

/// `send`, saying where the answer came from.
pub async fn reply(trace: &mut Trace, out: Outgoing<'_>) -> Result<Reply, ProxyError> {
    let sent = fetched(trace, out.url, &out.headers, out.body.as_ref(), &out).await;
    let (resp, status) = settle(trace, sent, &out)?;
    if !(out.follow && is_redirect(status)) {
        return Ok(Reply {
            resp,
            status,
            from: None,
            headers: out.headers,
        });
    }
    follow(trace, resp, out).await
}

/// Follows redirects by hand from `resp`, the redirect that answered `out`: at most
/// `MAX_HOPS`, with credentials only while a hop stays on `out.home`.
async fn follow(
    trace: &mut Trace,
    mut resp: Response,
    out: Outgoing<'_>,
) -> Result<Reply, ProxyError> {
    let bad = |reason: String| ProxyError::BadRedirect {
        upstream: out.upstream.to_string(),
        reason,
    };
    let mut current = Url::parse(out.url).map_err(|e| bad(e.to_string()))?;
    let mut stripped: Option<Headers> = None;
    for _ in 0..MAX_HOPS {
        let location = header(&resp.headers(), "location");
        let next = next_hop(&current, location.as_deref(), out.upstream)?;
        if stripped.is_none() && !keeps_credentials(out.home, &next) {
            let headers = copy_headers(&out.headers)?;
            for name in CREDENTIAL_HEADERS {
                let _ = headers.delete(name);
            }
            stripped = Some(headers);
        }
        trace.hops += 1;
        let headers = stripped.as_ref().unwrap_or(&out.headers);
        let sent = fetched(trace, next.as_str(), headers, None, &out).await;
        let (answer, status) = settle(trace, sent, &out)?;
        if !is_redirect(status) {
            return Ok(Reply {
                resp: answer,
                status,
                from: Some(next.into()),
                headers: stripped.unwrap_or(out.headers),
            });
        }
        resp = answer;
        current = next;
    }
    Err(bad(format!("more than {MAX_HOPS} redirects")))
}

/// One fetch of `url` for `out`, sent once more if its connection failed before any answer
/// and `failover::retried` allows it (a `GET` or `HEAD` without a body).
async fn fetched(
    trace: &mut Trace,
    url: &str,
    headers: &Headers,
    body: Option<&JsValue>,
    out: &Outgoing<'_>,
) -> Result<JsValue, JsValue> {
    let ms = out.timeout_ms;
    let first = JsFuture::from(fetch(url, out.method, headers, body, ms)).await;
    let failed = matches!(&first, Ok(v) if v.is_null());
    if !failed || !retried(out.method, body.is_some()) {
        return first;
    }
    trace.retries = trace.retries.saturating_add(1);
    JsFuture::from(fetch(url, out.method, headers, body, ms)).await
}

/// What `fetch`'s promise resolved to, as the upstream's answer or the proxy's error.
fn settle(
    trace: &mut Trace,
    sent: Result<JsValue, JsValue>,
    out: &Outgoing<'_>,
) -> Result<(Response, u16), ProxyError> {
    match sent {
        Ok(v) if v.is_object() => {
            let resp: Response = v.unchecked_into();
            let status = resp.status();
            trace.upstream_status = Some(status);
            Ok((resp, status))
        }
        Ok(v) if v.is_undefined() => Err(ProxyError::Timeout {
            upstream: out.upstream.to_string(),
            ms: out.timeout_ms,
        }),
        _ => Err(ProxyError::Unreachable {
            upstream: out.upstream.to_string(),
        }),
    }
}

/// One fetch, redirects not followed, raced against `ms` to response headers (never to the
/// end of the body). The promise resolves to the `Response`, to `null` if the fetch failed,
/// or to `undefined` if the time ran out first; it never rejects.
pub fn fetch(
    url: &str,
    method: &str,
    headers: &Headers,
    body: Option<&JsValue>,
    ms: u32,
) -> Promise {
    let init = web_sys::RequestInit::new();
    if method != "GET" {
        // GET is the default: one string less across the boundary on the hot path
        init.set_method(method);
    }
    init.set_headers(headers);
    if let Some(body) = body {
        init.set_body(body);
    }
    init.set_redirect(RequestRedirect::Manual);
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let fetch = global.fetch_with_str_and_init(url, &init);
    let fetch = REJECTED_AS_NULL.with(|f| fetch.unchecked_ref::<Thenable>().catch_with(f));
    // The runtime's own timer, raced in JavaScript. A timer that loses keeps nothing alive (it
    // resolves a promise nobody awaits).
    Promise::race(&js_sys::Array::of2(&fetch, &timer(ms)))
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// A promise, for `catch` with a plain function (js-sys's own takes a closure).
    #[wasm_bindgen(js_name = Promise)]
    type Thenable;
    #[wasm_bindgen(method, js_name = catch)]
    fn catch_with(this: &Thenable, f: &JsValue) -> Promise;
}

thread_local! {
    /// `catch` handler that turns a failed fetch into `null`, made once per isolate.
    static REJECTED_AS_NULL: JsValue =
        Closure::<dyn FnMut(JsValue) -> JsValue>::new(|_| JsValue::NULL).into_js_value();
    /// `scheduler.wait` of the Workers runtime, looked up once.
    static WAIT: OnceCell<Option<(JsValue, js_sys::Function)>> = const { OnceCell::new() };
}

/// A promise that resolves (to `undefined`) after `ms`: `scheduler.wait`, else `setTimeout`.
pub fn timer(ms: u32) -> Promise {
    if let Some(p) = runtime_wait(ms) {
        return p;
    }
    Promise::new(&mut |resolve, _reject| {
        let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
        let _ = global.set_timeout_with_callback_and_timeout_and_arguments_0(
            resolve.unchecked_ref(),
            ms.min(i32::MAX as u32) as i32,
        );
    })
}

/// `scheduler.wait(ms)`: a promise that resolves (to `undefined`) after `ms`.
fn runtime_wait(ms: u32) -> Option<Promise> {
    WAIT.with(|cell| {
        let (scheduler, wait) = cell
            .get_or_init(|| {
                let scheduler = js_sys::Reflect::get(&js_sys::global(), &"scheduler".into())
                    .ok()
                    .filter(JsValue::is_object)?;
                let wait = js_sys::Reflect::get(&scheduler, &"wait".into())
                    .ok()?
                    .dyn_into::<js_sys::Function>()
                    .ok()?;
                Some((scheduler, wait))
            })
            .as_ref()?;
        // a promise by the runtime's contract: no `instanceof` check per request
        wait.call1(scheduler, &JsValue::from(ms))
            .ok()
            .map(JsCast::unchecked_into)
    })
}
