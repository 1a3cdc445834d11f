//! The edge shell: turns the core's decisions into fetches. It works on `web_sys` objects
//! directly so that bodies stay JavaScript streams (they never enter wasm) and each request
//! crosses the JS/wasm boundary as few times as possible.

use crate::challenge::proxy_challenge;
use crate::config::Config;
use crate::error::ProxyError;
use crate::landing::{page, page_all, wants_html, CONTENT_SECURITY_POLICY};
use crate::log::{iso8601, LogLevel, Outcome, RequestLog};
use crate::namespace::{credentials_for, prefix_path, realm, resolve_auth, Via};
use crate::plan::{plan, proxy_origin, Plan};
use crate::redirect::{is_redirect, keeps_credentials, next_hop, rewrite_location, MAX_HOPS};
use crate::routes::Upstream;
use crate::token::{bearer_challenge, oauth_compatible, ScopeMap, TokenEndpoint};
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
    let config = config(&env);
    let trace = Trace::default();
    let method = req.method();
    let url = Url::parse(&req.url()).map_err(|_| ProxyError::NotFound);
    let result = match (&config, &url) {
        (Ok(config), Ok(url)) => handle(&req, config, url, &method, &trace).await,
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
    };
    let (resp, outcome, error) = match result {
        Ok((resp, outcome)) => (resp, outcome, None),
        Err(e) => (error_response(&e), Outcome::Error, Some(e.status_code().1)),
    };
    // A broken configuration is itself worth a line, whatever level it asked for.
    let level = config.as_ref().map_or(LogLevel::Error, |c| c.log_level);
    let status = resp.status();
    let failed = outcome == Outcome::Error || status >= 500;
    if level >= LogLevel::Info || (level == LogLevel::Error && failed) {
        let url = url.ok();
        let end = js_sys::Date::now();
        let route = trace.route.get();
        let line = RequestLog {
            time: &iso8601(end),
            host: url.as_ref().and_then(|u| u.host_str()).unwrap_or(""),
            route,
            method: &method,
            path: url.as_ref().map_or("", |u| u.path()),
            status,
            upstream_status: trace.upstream_status.get(),
            // reading the answer's headers is a cost of its own: only when asked for
            bytes: (level == LogLevel::Debug)
                .then(|| header(&resp.headers(), "content-length")?.parse().ok())
                .flatten(),
            duration_ms: (end - start).max(0.0) as u64,
            hops: trace.hops.get(),
            outcome,
            error,
        };
        let json = JsValue::from_str(&line.to_json());
        if failed {
            web_sys::console::error_1(&json);
        } else {
            web_sys::console::log_1(&json);
        }
    }
    Ok(resp)
}

/// What the upstream side of one request did, for its log line.
#[derive(Default)]
struct Trace<'c> {
    /// The upstream's base URL, borrowed from the configuration (no copy per request).
    route: Cell<Option<&'c str>>,
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

async fn handle<'c>(
    req: &web_sys::Request,
    config: &'c Config,
    url: &Url,
    method: &str,
    trace: &Trace<'c>,
) -> Result<(Response, Outcome), ProxyError> {
    // only `/` can be a page: don't read `Accept` on the API's hot path
    let html = url.path() == "/" && wants_html(header(&req.headers(), "accept").as_deref());
    let cx = Exchange { config, trace };
    let plan = plan(config, method, url, html)?;
    if config.log_level != LogLevel::Off {
        trace.route.set(plan.upstream().map(|u| u.base.as_str()));
    }
    match plan {
        Plan::Redirect { status, location } => {
            Ok((redirect_response(status, &location), Outcome::Redirect))
        }
        Plan::Landing { upstream } => Ok((
            landing_response(&page(&proxy_origin(url), upstream)),
            Outcome::Page,
        )),
        Plan::LandingAll => Ok((
            landing_response(&page_all(&proxy_origin(url), config)),
            Outcome::Page,
        )),
        Plan::Base { upstream, via } => base(req, &cx, upstream, via, url).await,
        Plan::Auth { upstream } => {
            let form = read_form_if_post(req, method).await?;
            auth(req, &cx, upstream, None, url, form).await
        }
        Plan::AuthAny => {
            // the registry may be named by the form's scopes of a POST as well as the query
            let form = read_form_if_post(req, method).await?;
            let params = format!(
                "{}&{}",
                url.query().unwrap_or(""),
                form.as_deref().unwrap_or("")
            );
            let (upstream, via) = resolve_auth(config, &params)?;
            if config.log_level != LogLevel::Off {
                trace.route.set(Some(upstream.base.as_str()));
            }
            auth(req, &cx, upstream, Some(via), url, form).await
        }
        Plan::Forward {
            upstream,
            target,
            via,
        } => forward(req, &cx, upstream, via, url, method, &target).await,
    }
}

/// Per request: the configuration and where to note what the upstream did.
struct Exchange<'a, 'c> {
    config: &'c Config,
    trace: &'a Trace<'c>,
}

/// `/v2/`: the upstream decides whether the client must authenticate; the proxy's challenge
/// sends it to the proxy's own `/v2/auth`.
async fn base(
    req: &web_sys::Request,
    cx: &Exchange<'_, '_>,
    upstream: &Upstream,
    via: Option<Via<'_>>,
    url: &Url,
) -> Result<(Response, Outcome), ProxyError> {
    let headers = new_headers();
    if credentials_for(cx.config, upstream, via) {
        copy_header(&req.headers(), &headers, "authorization");
    }
    let target = format!("{}/v2/", upstream.base);
    let resp =
        fetch_following(&target, "GET", &headers, &upstream.base, &upstream.base, cx).await?;
    if resp.status() == 401 {
        return challenge_response(resp, upstream, via, url);
    }
    Ok((resp, Outcome::Proxied))
}

/// `/v2/auth`: learn the upstream's realm from its challenge, then ask it for a token with the
/// client's credentials and parameters (rewritten for the upstream).
/// `form`: the body of a POST token request (OAuth2), already read.
async fn auth(
    req: &web_sys::Request,
    cx: &Exchange<'_, '_>,
    upstream: &Upstream,
    via: Option<Via<'_>>,
    url: &Url,
    form: Option<String>,
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
    let anonymous = !credentials_for(cx.config, upstream, via);
    let headers = new_headers();
    if !anonymous {
        copy_header(&req.headers(), &headers, "authorization");
    }
    let scopes = ScopeMap {
        docker_hub: upstream.docker_hub,
        via,
        anonymous,
    };
    match form {
        Some(form) if !anonymous => {
            let body = endpoint.post_form(&form, scopes);
            let _ = headers.set("content-type", "application/x-www-form-urlencoded");
            let body = JsValue::from_str(&body);
            let resp = send(
                endpoint.realm.as_str(),
                "POST",
                &headers,
                Some(&body),
                &upstream.base,
                cx,
            )
            .await?;
            Ok((resp, Outcome::Token))
        }
        _ => {
            // an OAuth2 form without its credentials becomes an anonymous GET
            let converted = form.is_some();
            let target = endpoint.get_url(form.as_deref().or(url.query()), scopes);
            let resp = fetch_following(
                target.as_str(),
                "GET",
                &headers,
                &realm_origin,
                &upstream.base,
                cx,
            )
            .await?;
            if converted && resp.ok() {
                return Ok((as_oauth_answer(resp).await, Outcome::Token));
            }
            Ok((resp, Outcome::Token))
        }
    }
}

/// A GET token answer given to an OAuth2 client: `access_token` is added when missing.
async fn as_oauth_answer(resp: Response) -> Response {
    let text = match resp.text() {
        Ok(p) => JsFuture::from(p).await.ok().and_then(|v| v.as_string()),
        Err(_) => None,
    };
    let Some(text) = text else {
        return error_response(&ProxyError::BadRequest("unreadable token answer".into()));
    };
    let body = oauth_compatible(&text).unwrap_or(text);
    let headers = Headers::new_with_headers(&resp.headers()).unwrap_or_else(|_| new_headers());
    let _ = headers.delete("content-length");
    let init = ResponseInit::new();
    init.set_status(resp.status());
    init.set_headers(&headers);
    Response::new_with_opt_str_and_init(Some(&body), &init)
        .unwrap_or_else(|_| Response::new().unwrap())
}

/// The OAuth2 form of a POST token request; `None` for a GET.
async fn read_form_if_post(
    req: &web_sys::Request,
    method: &str,
) -> Result<Option<String>, ProxyError> {
    if method == "POST" {
        read_form(req).await.map(Some)
    } else {
        Ok(None)
    }
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
    cx: &Exchange<'_, '_>,
    upstream: &Upstream,
    via: Option<Via<'_>>,
    url: &Url,
    method: &str,
    target: &str,
) -> Result<(Response, Outcome), ProxyError> {
    let mut headers = req.headers();
    // A password the client gave the proxy's host is for the default registry only (bearer
    // tokens come from the registry's own realm, scoped by it).
    if !credentials_for(cx.config, upstream, via) {
        if let Some(auth) = header(&headers, "authorization") {
            if auth
                .get(..6)
                .is_some_and(|s| s.eq_ignore_ascii_case("basic "))
            {
                let stripped =
                    Headers::new_with_headers(&headers).unwrap_or_else(|_| new_headers());
                let _ = stripped.delete("authorization");
                headers = stripped;
            }
        }
    }
    let resp = if matches!(method, "GET" | "HEAD") {
        fetch_following(target, method, &headers, &upstream.base, &upstream.base, cx).await?
    } else {
        // A streamed body cannot be sent twice, so redirects go back to the client.
        let body = req.body().map(JsValue::from);
        send(target, method, &headers, body.as_ref(), &upstream.base, cx).await?
    };
    match resp.status() {
        401 => challenge_response(resp, upstream, via, url),
        _ if !matches!(method, "GET" | "HEAD") => {
            Ok((relocate(resp, upstream, via, url)?, Outcome::Proxied))
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
    cx: &Exchange<'_, '_>,
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
    cx: &Exchange<'_, '_>,
) -> Result<Response, ProxyError> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_headers(headers);
    if let Some(body) = body {
        init.set_body(body);
    }
    init.set_redirect(RequestRedirect::Manual);
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let fetch = global.fetch_with_str_and_init(url, &init);
    let ms = cx.config.timeout_ms;
    // The runtime's own timer raced in JavaScript: no wasm closure per request. A timer that
    // loses keeps nothing alive (it resolves a promise nobody awaits).
    let answer = match runtime_wait(ms) {
        Some(timer) => JsFuture::from(js_sys::Promise::race(&js_sys::Array::of2(&fetch, &timer)))
            .await
            .map(|v| (!v.is_undefined()).then_some(v)),
        None => match first(
            JsFuture::from(fetch),
            Delay::from(Duration::from_millis(ms.into())),
        )
        .await
        {
            Some(r) => r.map(Some),
            None => Ok(None),
        },
    };
    match answer {
        Ok(Some(resp)) => {
            let resp: Response = resp.unchecked_into();
            cx.trace.upstream_status.set(Some(resp.status()));
            Ok(resp)
        }
        Ok(None) => Err(ProxyError::Timeout {
            upstream: upstream.to_string(),
            ms,
        }),
        Err(_) => Err(ProxyError::Unreachable {
            upstream: upstream.to_string(),
        }),
    }
}

thread_local! {
    // `scheduler.wait` of the Workers runtime, looked up once.
    static WAIT: OnceCell<Option<(JsValue, js_sys::Function)>> = const { OnceCell::new() };
}

/// `scheduler.wait(ms)`: a promise that resolves (to `undefined`) after `ms`.
fn runtime_wait(ms: u32) -> Option<js_sys::Promise> {
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
        wait.call1(scheduler, &JsValue::from(ms))
            .ok()?
            .dyn_into()
            .ok()
    })
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
    via: Option<Via<'_>>,
    url: &Url,
) -> Result<(Response, Outcome), ProxyError> {
    let upstream_headers = resp.headers();
    let www = header(&upstream_headers, "www-authenticate");
    let Some(challenge) = bearer_challenge(www.as_deref(), &upstream.base)? else {
        return Ok((resp, Outcome::Proxied));
    };
    let realm = realm(&proxy_origin(url), via);
    let headers = Headers::new_with_headers(&upstream_headers).unwrap_or_else(|_| new_headers());
    let _ = headers.set(
        "www-authenticate",
        &proxy_challenge(&realm, Some(&challenge), upstream.docker_hub, via),
    );
    Ok((rebuild(&resp, 401, &headers), Outcome::Challenge))
}

/// Points a `Location` that names the upstream at the proxy instead.
fn relocate(
    resp: Response,
    upstream: &Upstream,
    via: Option<Via<'_>>,
    url: &Url,
) -> Result<Response, ProxyError> {
    let upstream_headers = resp.headers();
    let Some(location) = header(&upstream_headers, "location") else {
        return Ok(resp);
    };
    let origin = proxy_origin(url);
    let Some(mut rewritten) = rewrite_location(&location, &upstream.base, &origin) else {
        return Ok(resp);
    };
    if let Some(via) = via {
        rewritten = format!("{origin}{}", prefix_path(&rewritten[origin.len()..], via));
    }
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
