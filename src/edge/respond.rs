//! Response constructors: the proxy's own answers, and upstream answers with other headers.

use crate::error::ProxyError;
use crate::landing::CONTENT_SECURITY_POLICY;
use worker::js_sys::Uint8Array;
use worker::web_sys::{Headers, Response, ResponseInit};

/// An error in the registry's JSON form, with its status.
pub fn error(e: &ProxyError) -> Result<Response, ProxyError> {
    let (status, _) = e.status_code();
    let allow = e.allow();
    let mut headers = vec![
        ("content-type", "application/json"),
        ("docker-distribution-api-version", "registry/2.0"),
    ];
    if let Some(allow) = &allow {
        headers.push(("allow", allow));
    }
    let retry = e.retry_after().map(|s| s.to_string());
    if let Some(retry) = &retry {
        headers.push(("retry-after", retry));
    }
    if let Some(www) = e.challenge() {
        headers.push(("www-authenticate", www));
    }
    build(status, &headers, Some(&e.body()))
}

/// A JSON answer of the proxy's own.
pub fn json(status: u16, body: &str) -> Result<Response, ProxyError> {
    build(status, &[("content-type", "application/json")], Some(body))
}

/// A 401 with the proxy's challenge, for a request the upstream refused to a `HEAD` (which
/// has no body to pass on).
pub fn challenge(www_authenticate: &str) -> Result<Response, ProxyError> {
    let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
    let headers = [
        ("content-type", "application/json"),
        ("docker-distribution-api-version", "registry/2.0"),
        ("www-authenticate", www_authenticate),
    ];
    build(401, &headers, Some(body))
}

pub fn redirect(status: u16, location: &str) -> Result<Response, ProxyError> {
    build(status, &[("location", location)], None)
}

/// The landing page.
pub fn page(html: &str) -> Result<Response, ProxyError> {
    let headers = [
        ("content-type", "text/html; charset=utf-8"),
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "public, max-age=300"),
    ];
    build(200, &headers, Some(html))
}

fn build(
    status: u16,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<Response, ProxyError> {
    let h = new_headers()?;
    for (name, value) in headers {
        set(&h, name, value)?;
    }
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_headers(&h);
    Response::new_with_opt_str_and_init(body, &init)
        .map_err(|_| ProxyError::Internal(format!("a {status} response")))
}

/// The same body stream under another status and headers (headers of a fetched response are
/// immutable).
pub fn rebuild(resp: &Response, status: u16, headers: &Headers) -> Result<Response, ProxyError> {
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_status_text(&resp.status_text());
    init.set_headers(headers);
    Response::new_with_opt_readable_stream_and_init(resp.body().as_ref(), &init)
        .map_err(|_| ProxyError::Internal(format!("a {status} response")))
}

/// A text body in place of the answer's, with its status and headers (a rewritten token
/// answer); the old length no longer applies.
pub fn replace_body(resp: &Response, body: &str) -> Result<Response, ProxyError> {
    let headers = copy_headers(&resp.headers())?;
    let _ = headers.delete("content-length");
    let init = ResponseInit::new();
    init.set_status(resp.status());
    init.set_headers(&headers);
    Response::new_with_opt_str_and_init(Some(body), &init)
        .map_err(|_| ProxyError::Internal("a rewritten token answer".into()))
}

/// The answer's status and headers around a body read whole; its length is the body's.
pub fn with_body(resp: &Response, body: &Uint8Array) -> Result<Response, ProxyError> {
    let headers = copy_headers(&resp.headers())?;
    let _ = headers.delete("content-length");
    let init = ResponseInit::new();
    init.set_status(resp.status());
    init.set_status_text(&resp.status_text());
    init.set_headers(&headers);
    Response::new_with_opt_js_u8_array_and_init(Some(body), &init)
        .map_err(|_| ProxyError::Internal("an answer read whole".into()))
}

pub fn new_headers() -> Result<Headers, ProxyError> {
    Headers::new().map_err(|_| ProxyError::Internal("headers".into()))
}

/// A mutable copy.
pub fn copy_headers(headers: &Headers) -> Result<Headers, ProxyError> {
    Headers::new_with_headers(headers).map_err(|_| ProxyError::Internal("headers".into()))
}

pub fn set(headers: &Headers, name: &str, value: &str) -> Result<(), ProxyError> {
    headers
        .set(name, value)
        .map_err(|_| ProxyError::Internal(format!("header {name}")))
}

pub fn header(headers: &Headers, name: &str) -> Option<String> {
    headers.get(name).ok().flatten()
}

/// Whether a header is present (its value never crosses into wasm).
pub fn has(headers: &Headers, name: &str) -> bool {
    headers.has(name).unwrap_or(false)
}
