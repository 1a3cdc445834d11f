//! The fallback phase: a read its primary could not answer, asked of the route's fallback
//! upstreams in order (failover.rs decides when and what), each with its own anonymous token
//! and nothing of the client's credentials. What one serves is checked before the client has
//! it whole: a manifest is read and hashed, a blob passes through checked.js.

use super::body::read_answer;
use super::exchange::Exchange;
use super::memo;
use super::respond::{copy_headers, header, set};
use super::send::{reply, Outgoing, Reply};
use super::upstream_token::fallback_authorization;
use crate::credentials::FOR_THE_PROXY;
use crate::digest::{hex, sha256};
use crate::error::ProxyError;
use crate::failover::{ask, checks_blob, serves, Ask, Check};
use crate::plan::{Forward, MAX_UNSIZED_ANSWER};
use worker::js_sys::Uint8Array;
use worker::wasm_bindgen::{self, JsValue};
use worker::web_sys::{Headers, ReadableStream, Response, ResponseInit};

#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/edge/checked.js")]
extern "C" {
    fn checked(
        ctx: &JsValue,
        body: &ReadableStream,
        digest: &str,
        length: JsValue,
    ) -> ReadableStream;
}

/// The header that names the fallback that served an answer.
const SERVED_BY: &str = "x-proxy-upstream";

/// What a fallback served: the client's answer, and where it came from (for keeping it).
pub struct Served {
    pub resp: Response,
    /// The URL the answer came from and the headers that went there.
    pub from: String,
    pub headers: Headers,
    /// A manifest's bytes, read whole to be checked: what is kept of it.
    pub bytes: Option<Uint8Array>,
}

/// The first fallback that serves `f`, if any does; `x.trace.fallback` names it. A fallback's
/// refusal or trouble sends the request to the next; after the last, the client gets the
/// primary's answer (the caller's).
pub async fn ask_fallbacks(x: &mut Exchange, f: &Forward<'static>) -> Option<Served> {
    for fallback in &f.route.upstream.fallbacks {
        let ask = ask(f, fallback);
        if let Ok(Some(served)) = one(x, fallback, &ask).await {
            x.trace.fallback = Some(fallback.as_str());
            return Some(served);
        }
    }
    None
}

async fn one(x: &mut Exchange, fallback: &str, ask: &Ask) -> Result<Option<Served>, ProxyError> {
    let auth = fallback_authorization(x, fallback, &ask.scope, &ask.token_key).await?;
    let headers = headers_for(x, ask, auth.as_deref())?;
    let Reply {
        resp,
        status,
        from,
        headers,
    } = reply(
        &mut x.trace,
        Outgoing {
            url: &ask.url,
            method: ask.method,
            headers,
            body: None,
            follow: true,
            home: fallback,
            upstream: fallback,
            timeout_ms: x.config.timeout_ms,
        },
    )
    .await?;
    if status == 401 {
        // its token was refused: the next request asks for a new one
        memo::remember_token(&ask.token_key, String::new(), 0.0);
    }
    if !serves(status) {
        return Ok(None);
    }
    let (resp, bytes) = match (&ask.check, ask.whole) {
        (Check::None, _) => (
            labelled(&resp, &copy_headers(&resp.headers())?, fallback, None)?,
            None,
        ),
        (Check::Digest(digest), true) => (blob(x, &resp, digest, fallback)?, None),
        (check, _) => match manifest(x, resp, check, ask.head, fallback).await? {
            Some((resp, bytes)) => (resp, Some(bytes)),
            None => return Ok(None),
        },
    };
    Ok(Some(Served {
        resp,
        from: from.unwrap_or_else(|| ask.url.clone()),
        headers,
        bytes,
    }))
}

/// The client's headers for a fallback: less every credential and what is for the proxy's
/// host, less `Range` where the body is checked whole, with the fallback's own token.
fn headers_for(x: &Exchange, ask: &Ask, auth: Option<&str>) -> Result<Headers, ProxyError> {
    let headers = copy_headers(&x.req.headers())?;
    let _ = headers.delete("authorization");
    for name in FOR_THE_PROXY {
        let _ = headers.delete(name);
    }
    if ask.whole {
        let _ = headers.delete("range");
        let _ = headers.delete("if-range");
    }
    if let Some(auth) = auth {
        set(&headers, "authorization", auth)?;
    }
    Ok(headers)
}

/// A manifest read whole and hashed: one asked by digest must be of it (else the next
/// fallback is asked), a tag's is served with the digest it hashes to.
async fn manifest(
    x: &Exchange,
    resp: Response,
    check: &Check,
    head: bool,
    fallback: &str,
) -> Result<Option<(Response, Uint8Array)>, ProxyError> {
    let ms = x.config.timeout_ms;
    let body = read_answer(resp.body(), MAX_UNSIZED_ANSWER, ms, fallback, "manifest").await?;
    let digest = format!("sha256:{}", hex(&sha256(&body.to_vec())));
    if matches!(check, Check::Digest(d) if *d != digest) {
        return Ok(None);
    }
    let headers = copy_headers(&resp.headers())?;
    set(&headers, "docker-content-digest", &digest)?;
    set(&headers, "content-length", &body.length().to_string())?;
    let init = ResponseInit::new();
    init.set_status(200);
    set(&headers, SERVED_BY, fallback)?;
    init.set_headers(&headers);
    let made = if head {
        Response::new_with_opt_str_and_init(None, &init)
    } else {
        Response::new_with_opt_js_u8_array_and_init(Some(&body), &init)
    };
    made.map(|resp| Some((resp, body)))
        .map_err(|_| ProxyError::Internal("a fallback's manifest".into()))
}

/// A blob: checked against `digest` on its way (checked.js) where the Worker may pay for it
/// (`failover::checks_blob`), else passed untouched for the client to check.
fn blob(
    x: &Exchange,
    resp: &Response,
    digest: &str,
    fallback: &str,
) -> Result<Response, ProxyError> {
    let Some(body) = resp.body() else {
        return Err(ProxyError::BadAnswer {
            upstream: fallback.to_string(),
            reason: "a blob without a body".into(),
        });
    };
    let headers = copy_headers(&resp.headers())?;
    set(&headers, "docker-content-digest", digest)?;
    let length = header(&headers, "content-length").and_then(|l| l.trim().parse::<u64>().ok());
    if !checks_blob(length, x.config.cache_limits.verify_max) {
        return labelled(resp, &headers, fallback, None);
    }
    let length = length.map_or(JsValue::NULL, |n| JsValue::from(n as f64));
    let body = checked(x.ctx_js(), &body, digest, length);
    labelled(resp, &headers, fallback, Some(body))
}

/// The answer with `X-Proxy-Upstream`, its body (or `body` in its place) untouched.
fn labelled(
    resp: &Response,
    headers: &Headers,
    fallback: &str,
    body: Option<ReadableStream>,
) -> Result<Response, ProxyError> {
    set(headers, SERVED_BY, fallback)?;
    let init = ResponseInit::new();
    init.set_status(resp.status());
    init.set_headers(headers);
    let body = body.or_else(|| resp.body());
    Response::new_with_opt_readable_stream_and_init(body.as_ref(), &init)
        .map_err(|_| ProxyError::Internal("a fallback's answer".into()))
}
