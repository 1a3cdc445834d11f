//! The edge shell: turns the core's decisions into fetches. It works on `web_sys` objects
//! directly so that bodies stay JavaScript streams (they never enter wasm) and each request
//! crosses the JS/wasm boundary as few times as possible.

use crate::challenge::proxy_challenge;
use crate::config::Config;
use crate::error::ProxyError;
use crate::landing::{page, wants_html, CONTENT_SECURITY_POLICY};
use crate::log::{LogLevel, Outcome, RequestLog};
use crate::plan::{plan, proxy_origin, Plan};
use crate::redirect::{is_redirect, keeps_credentials, next_hop, rewrite_location, MAX_HOPS};
use crate::routes::Upstream;
use crate::token::{bearer_challenge, TokenEndpoint};
use std::cell::{Cell, OnceCell};
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;
use url::Url;
use worker::js_sys;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{self, Headers, RequestRedirect, Response, ResponseInit};
use worker::{event, Context, Delay, Env};

/// The OAuth2 form containerd posts to `/v2/auth` is tiny; refuse anything large.
const MAX_TOKEN_FORM: usize = 16 * 1024;

thread_local! {
    // Vars are fixed for an isolate's life: parse and validate them once.
    static CONFIG: OnceCell<Result<Rc<Config>, ProxyError>> = const { OnceCell::new() };
}

#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    console_error_panic_hook::set_once();
    let start = js_sys::Date::now();
    let trace = Trace::default();
    let config = config(&env);
    let url = Url::parse(&req.url()).map_err(|_| ProxyError::NotFound);
    let result = match (&config, &url) {
        (Ok(config), Ok(url)) => handle(&req, config, url, &trace).await,
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
    };
    let (resp, outcome, error) = match result {
        Ok((resp, outcome)) => (resp, outcome, None),
        Err(e) => (error_response(&e), Outcome::Error, Some(e.status_code().1)),
    };
    // A broken configuration is itself worth a line, whatever level it asked for.
    let level = config.as_ref().map_or(LogLevel::Error, |c| c.log_level);
    if level != LogLevel::Off {
        let url = url.ok();
        let route = match (&config, &url) {
            (Ok(c), Some(u)) => c.route(u.host_str().unwrap_or("")).ok(),
            _ => None,
        };
        let time = String::from(js_sys::Date::new_0().to_iso_string());
        let line = RequestLog {
            time: &time,
            host: url.as_ref().and_then(|u| u.host_str()).unwrap_or(""),
            route: route.map(|u| u.base.as_str()),
            method: &req.method(),
            path: url.as_ref().map_or("", |u| u.path()),
            status: resp.status(),
            upstream_status: trace.upstream_status.get(),
            bytes: header(&resp.headers(), "content-length").and_then(|v| v.parse().ok()),
            duration_ms: (js_sys::Date::now() - start).max(0.0) as u64,
            hops: trace.hops.get(),
            outcome,
            error,
        };
        if line.wanted(level) {
            let json = JsValue::from_str(&line.to_json());
            if outcome == Outcome::Error || line.status >= 500 {
                web_sys::console::error_1(&json);
            } else {
                web_sys::console::log_1(&json);
            }
        }
    }
    Ok(resp)
}

/// What the upstream side of one request did, for its log line.
#[derive(Default)]
struct Trace {
    upstream_status: Cell<Option<u16>>,
    hops: Cell<u8>,
}

fn config(env: &Env) -> Result<Rc<Config>, ProxyError> {
    CONFIG.with(|cell| {
        cell.get_or_init(|| Config::from_vars(|name| read_var(env, name)).map(Rc::new))
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

async fn handle(
    req: &web_sys::Request,
    config: &Config,
    url: &Url,
    trace: &Trace,
) -> Result<(Response, Outcome), ProxyError> {
    let method = req.method();
    let accept = header(&req.headers(), "accept");
    let cx = Exchange { config, trace };
    match plan(config, &method, url, wants_html(accept.as_deref()))? {
        Plan::Redirect { status, location } => {
            Ok((redirect_response(status, &location), Outcome::Redirect))
        }
        Plan::Landing { upstream } => Ok((
            landing_response(&page(&proxy_origin(url), upstream)),
            Outcome::Page,
        )),
        Plan::Base { upstream } => base(req, &cx, upstream, url).await,
        Plan::Auth { upstream } => auth(req, &cx, upstream, url, &method).await,
        Plan::Forward { upstream, target } => {
            forward(req, &cx, upstream, url, &method, &target).await
        }
    }
}

/// Per request: the configuration and where to note what the upstream did.
struct Exchange<'a> {
    config: &'a Config,
    trace: &'a Trace,
}

/// `/v2/`: the upstream decides whether the client must authenticate; the proxy's challenge
/// sends it to the proxy's own `/v2/auth`.
async fn base(
    req: &web_sys::Request,
    cx: &Exchange<'_>,
    upstream: &Upstream,
    url: &Url,
) -> Result<(Response, Outcome), ProxyError> {
    let headers = new_headers();
    copy_header(&req.headers(), &headers, "authorization");
    let target = format!("{}/v2/", upstream.base);
    let resp =
        fetch_following(&target, "GET", &headers, &upstream.base, &upstream.base, cx).await?;
    if resp.status() == 401 {
        return challenge_response(resp, upstream, url);
    }
    Ok((resp, Outcome::Proxied))
}

/// `/v2/auth`: learn the upstream's realm from its challenge, then ask it for a token with the
/// client's credentials and parameters (rewritten for the upstream).
async fn auth(
    req: &web_sys::Request,
    cx: &Exchange<'_>,
    upstream: &Upstream,
    url: &Url,
    method: &str,
) -> Result<(Response, Outcome), ProxyError> {
    let probe_url = format!("{}/v2/", upstream.base);
    let probe = fetch_following(
        &probe_url,
        "GET",
        &new_headers(),
        &upstream.base,
        &upstream.base,
        cx,
    )
    .await?;
    if probe.status() != 401 {
        // No auth needed upstream: its answer is the answer, as in the original.
        return Ok((probe, Outcome::Proxied));
    }
    let challenge = bearer_challenge(
        header(&probe.headers(), "www-authenticate").as_deref(),
        &upstream.base,
    )?
    .ok_or_else(|| ProxyError::BadChallenge {
        upstream: upstream.base.clone(),
        reason:
            "no Bearer challenge (the client should authenticate with the upstream's own scheme)"
                .into(),
    })?;
    let endpoint = TokenEndpoint::from_challenge(&challenge, &upstream.base)?;
    let realm_origin = endpoint.realm.origin().ascii_serialization();
    let headers = new_headers();
    copy_header(&req.headers(), &headers, "authorization");
    let resp = if method == "POST" {
        let form = read_form(req).await?;
        let body = endpoint.post_form(&form, upstream.docker_hub);
        let _ = headers.set("content-type", "application/x-www-form-urlencoded");
        let body = JsValue::from_str(&body);
        send(
            endpoint.realm.as_str(),
            "POST",
            &headers,
            Some(&body),
            &upstream.base,
            cx,
        )
        .await
    } else {
        let target = endpoint.get_url(url.query(), upstream.docker_hub);
        fetch_following(
            target.as_str(),
            "GET",
            &headers,
            &realm_origin,
            &upstream.base,
            cx,
        )
        .await
    }?;
    Ok((resp, Outcome::Token))
}

async fn read_form(req: &web_sys::Request) -> Result<String, ProxyError> {
    let too_big =
        || ProxyError::BadRequest(format!("token form larger than {MAX_TOKEN_FORM} bytes"));
    if let Some(len) = header(&req.headers(), "content-length") {
        if len
            .trim()
            .parse::<usize>()
            .map_or(true, |n| n > MAX_TOKEN_FORM)
        {
            return Err(too_big());
        }
    }
    let promise = req
        .text()
        .map_err(|_| ProxyError::BadRequest("unreadable token form".into()))?;
    let text = JsFuture::from(promise)
        .await
        .ok()
        .and_then(|v| v.as_string())
        .ok_or_else(|| ProxyError::BadRequest("unreadable token form".into()))?;
    if text.len() > MAX_TOKEN_FORM {
        return Err(too_big());
    }
    Ok(text)
}

/// Everything else of the API: method, headers and body go upstream as they came; the answer
/// comes back untouched unless it is a 401 (the proxy's challenge) or names the upstream in
/// `Location` (upload sessions).
async fn forward(
    req: &web_sys::Request,
    cx: &Exchange<'_>,
    upstream: &Upstream,
    url: &Url,
    method: &str,
    target: &str,
) -> Result<(Response, Outcome), ProxyError> {
    let headers = req.headers();
    let resp = if matches!(method, "GET" | "HEAD") {
        fetch_following(target, method, &headers, &upstream.base, &upstream.base, cx).await?
    } else {
        // A streamed body cannot be sent twice, so redirects go back to the client.
        let body = req.body().map(JsValue::from);
        send(target, method, &headers, body.as_ref(), &upstream.base, cx).await?
    };
    match resp.status() {
        401 => challenge_response(resp, upstream, url),
        _ if !matches!(method, "GET" | "HEAD") => {
            Ok((relocate(resp, upstream, url)?, Outcome::Proxied))
        }
        _ => Ok((resp, Outcome::Proxied)),
    }
}

/// Sends a request and follows redirects by hand: at most `MAX_HOPS`, with credentials only
/// while the hop stays on `home` (the origin they were meant for).
async fn fetch_following(
    target: &str,
    method: &str,
    headers: &Headers,
    home: &str,
    upstream: &str,
    cx: &Exchange<'_>,
) -> Result<Response, ProxyError> {
    let mut resp = send(target, method, headers, None, upstream, cx).await?;
    if !is_redirect(resp.status()) {
        return Ok(resp);
    }
    let mut current = Url::parse(target).map_err(|e| ProxyError::BadRedirect {
        upstream: upstream.to_string(),
        reason: e.to_string(),
    })?;
    let mut hop_headers: Option<Headers> = None;
    for _ in 0..MAX_HOPS {
        let next = next_hop(
            &current,
            header(&resp.headers(), "location").as_deref(),
            upstream,
        )?;
        if hop_headers.is_none() && !keeps_credentials(home, &next) {
            let stripped = Headers::new_with_headers(headers).unwrap_or_else(|_| new_headers());
            for name in ["authorization", "cookie"] {
                let _ = stripped.delete(name);
            }
            hop_headers = Some(stripped);
        }
        cx.trace.hops.set(cx.trace.hops.get() + 1);
        resp = send(
            next.as_str(),
            method,
            hop_headers.as_ref().unwrap_or(headers),
            None,
            upstream,
            cx,
        )
        .await?;
        if !is_redirect(resp.status()) {
            return Ok(resp);
        }
        current = next;
    }
    Err(ProxyError::BadRedirect {
        upstream: upstream.to_string(),
        reason: format!("more than {MAX_HOPS} redirects"),
    })
}

/// One fetch, redirects not followed, bounded by the configured time to response headers.
async fn send(
    url: &str,
    method: &str,
    headers: &Headers,
    body: Option<&JsValue>,
    upstream: &str,
    cx: &Exchange<'_>,
) -> Result<Response, ProxyError> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_headers(headers);
    if let Some(body) = body {
        init.set_body(body);
    }
    init.set_redirect(RequestRedirect::Manual);
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let fetch = JsFuture::from(global.fetch_with_str_and_init(url, &init));
    let timeout = Delay::from(Duration::from_millis(cx.config.timeout_ms.into()));
    match first(fetch, timeout).await {
        Some(Ok(resp)) => {
            let resp: Response = resp.unchecked_into();
            cx.trace.upstream_status.set(Some(resp.status()));
            Ok(resp)
        }
        Some(Err(_)) => Err(ProxyError::Unreachable {
            upstream: upstream.to_string(),
        }),
        None => Err(ProxyError::Timeout {
            upstream: upstream.to_string(),
            ms: cx.config.timeout_ms,
        }),
    }
}

/// `Some(a's output)` if `a` finishes first, `None` if `b` does.
async fn first<A: Future, B: Future>(a: A, b: B) -> Option<A::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if b.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

/// An upstream 401 re-issued with the proxy's challenge, so the client comes to the proxy's
/// `/v2/auth`. A non-Bearer challenge (Basic) passes through: the client answers it directly.
fn challenge_response(
    resp: Response,
    upstream: &Upstream,
    url: &Url,
) -> Result<(Response, Outcome), ProxyError> {
    let upstream_headers = resp.headers();
    let www = header(&upstream_headers, "www-authenticate");
    let Some(challenge) = bearer_challenge(www.as_deref(), &upstream.base)? else {
        return Ok((resp, Outcome::Proxied));
    };
    let realm = format!("{}/v2/auth", proxy_origin(url));
    let headers = Headers::new_with_headers(&upstream_headers).unwrap_or_else(|_| new_headers());
    let _ = headers.set(
        "www-authenticate",
        &proxy_challenge(&realm, Some(&challenge), upstream.docker_hub),
    );
    Ok((rebuild(&resp, 401, &headers), Outcome::Challenge))
}

/// Points a `Location` that names the upstream at the proxy instead.
fn relocate(resp: Response, upstream: &Upstream, url: &Url) -> Result<Response, ProxyError> {
    let upstream_headers = resp.headers();
    let Some(location) = header(&upstream_headers, "location") else {
        return Ok(resp);
    };
    let Some(rewritten) = rewrite_location(&location, &upstream.base, &proxy_origin(url)) else {
        return Ok(resp);
    };
    let headers = Headers::new_with_headers(&upstream_headers).unwrap_or_else(|_| new_headers());
    let _ = headers.set("location", &rewritten);
    Ok(rebuild(&resp, resp.status(), &headers))
}

/// A new response around the same body stream (headers of a fetched response are immutable).
fn rebuild(resp: &Response, status: u16, headers: &Headers) -> Response {
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_status_text(&resp.status_text());
    init.set_headers(headers);
    Response::new_with_opt_readable_stream_and_init(resp.body().as_ref(), &init)
        .unwrap_or_else(|_| error_response(&ProxyError::BadRequest("response".into())))
}

fn landing_response(html: &str) -> Response {
    let headers = new_headers();
    let _ = headers.set("content-type", "text/html; charset=utf-8");
    let _ = headers.set("content-security-policy", CONTENT_SECURITY_POLICY);
    let _ = headers.set("x-content-type-options", "nosniff");
    let _ = headers.set("referrer-policy", "no-referrer");
    let _ = headers.set("cache-control", "public, max-age=300");
    let init = ResponseInit::new();
    init.set_status(200);
    init.set_headers(&headers);
    Response::new_with_opt_str_and_init(Some(html), &init)
        .unwrap_or_else(|_| Response::new().unwrap())
}

fn redirect_response(status: u16, location: &str) -> Response {
    let headers = new_headers();
    let _ = headers.set("location", location);
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_headers(&headers);
    Response::new_with_opt_str_and_init(None, &init).unwrap_or_else(|_| Response::new().unwrap())
}

fn error_response(e: &ProxyError) -> Response {
    let (status, _) = e.status_code();
    let headers = new_headers();
    let _ = headers.set("content-type", "application/json");
    let _ = headers.set("docker-distribution-api-version", "registry/2.0");
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_headers(&headers);
    Response::new_with_opt_str_and_init(Some(&e.body()), &init)
        .unwrap_or_else(|_| Response::new().unwrap())
}

fn new_headers() -> Headers {
    Headers::new().unwrap()
}

fn header(headers: &Headers, name: &str) -> Option<String> {
    headers.get(name).ok().flatten()
}

fn copy_header(from: &Headers, to: &Headers, name: &str) {
    if let Some(v) = header(from, name) {
        let _ = to.set(name, &v);
    }
}
