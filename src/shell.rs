//! The edge shell: turns the core's decisions into fetches. It works on `web_sys` objects
//! directly so that bodies stay JavaScript streams (they never enter wasm) and each request
//! crosses the JS/wasm boundary as few times as possible.
//!
//! The entry is a plain `#[wasm_bindgen]` export that hands the runtime a promise, not
//! workers-rs' `#[event(fetch)]`: that macro makes an `async` export, which runs every request
//! through wasm-bindgen's executor (a spawned task and a `queueMicrotask` turn per wake-up,
//! ~0.015 ms of CPU per request in workerd). Here a request that needs one upstream answer is
//! finished in a JavaScript continuation; only the token endpoint (two upstream requests) and
//! redirect chains run as Rust futures.

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
use std::rc::Rc;
use url::Url;
use worker::js_sys::{self, Promise};
use worker::wasm_bindgen::closure::Closure;
use worker::wasm_bindgen::{self, JsCast, JsValue};
use worker::wasm_bindgen_futures::{future_to_promise, JsFuture};
use worker::web_sys::{self, Headers, RequestRedirect, Response, ResponseInit};
use worker::Env;

/// The OAuth2 form containerd posts to `/v2/auth` is tiny; refuse anything large.
const MAX_TOKEN_FORM: usize = 16 * 1024;

/// What the proxy answers, and how it came to it (for the log line).
type Answer = Result<(Response, Outcome), ProxyError>;

thread_local! {
    // Vars are fixed for an isolate's life: parse and validate them once, and keep them for
    // good, so that plans borrowing from them can outlive the call that made them.
    static CONFIG: OnceCell<Result<&'static Config, ProxyError>> = const { OnceCell::new() };
}

/// The Worker's fetch handler (worker-build's entry calls the export named `fetch`). Returns a
/// `Response`, or a promise of one.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn fetch(req: web_sys::Request, env: Env, _ctx: JsValue) -> JsValue {
    console_error_panic_hook::set_once();
    let start = js_sys::Date::now();
    let config = config(&env);
    let ex = Rc::new(Exchange {
        method: req.method(),
        url: Url::parse(&req.url()).ok(),
        req,
        config: config.as_ref().ok().copied(),
        start,
        route: Cell::new(None),
        upstream_status: Cell::new(None),
        hops: Cell::new(0),
    });
    let step = match (config, &ex.url) {
        (Ok(config), Some(url)) => begin(&ex, config, url),
        (Err(e), _) => Err(e),
        (_, None) => Err(ProxyError::NotFound),
    };
    match step {
        Ok(Step::Answered(resp, outcome)) => ex.finish(Ok((resp, outcome))).into(),
        Ok(Step::Pending(promise)) => promise.into(),
        Err(e) => ex.finish(Err(e)).into(),
    }
}

fn config(env: &Env) -> Result<&'static Config, ProxyError> {
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

/// One request on its way through the phases, shared with the continuations that answer it.
struct Exchange {
    req: web_sys::Request,
    method: String,
    url: Option<Url>,
    config: Option<&'static Config>,
    start: f64,
    /// The upstream's base URL, borrowed from the configuration.
    route: Cell<Option<&'static str>>,
    /// The status of the last upstream answer, if the upstream was asked.
    upstream_status: Cell<Option<u16>>,
    /// Upstream redirects followed.
    hops: Cell<u8>,
}

impl Exchange {
    /// The URL of a request that got past `fetch` (only routed requests reach the phases).
    fn url(&self) -> &Url {
        self.url.as_ref().expect("routed requests have a URL")
    }

    fn timeout_ms(&self) -> u32 {
        self.config
            .map_or(crate::config::DEFAULT_TIMEOUT_MS, |c| c.timeout_ms)
    }

    /// The client response phase: the answer (or the error's registry JSON) and its log line.
    fn finish(&self, answer: Answer) -> Response {
        let (resp, outcome, error) = match answer {
            Ok((resp, outcome)) => (resp, outcome, None),
            Err(e) => (error_response(&e), Outcome::Error, Some(e.status_code().1)),
        };
        // A broken configuration is itself worth a line, whatever level it asked for.
        let level = self.config.map_or(LogLevel::Error, |c| c.log_level);
        // A proxied answer is the upstream's own: its status is known (one call less).
        let status = match (outcome, self.upstream_status.get()) {
            (Outcome::Proxied, Some(status)) => status,
            _ => resp.status(),
        };
        let failed = outcome == Outcome::Error || status >= 500;
        if level >= LogLevel::Info || (level == LogLevel::Error && failed) {
            let end = js_sys::Date::now();
            let url = self.url.as_ref();
            let line = RequestLog {
                time: &iso8601(end),
                host: url.and_then(|u| u.host_str()).unwrap_or(""),
                route: self.route.get(),
                method: &self.method,
                path: url.map_or("", |u| u.path()),
                status,
                upstream_status: self.upstream_status.get(),
                // reading the answer's headers is a cost of its own: only when asked for
                bytes: (level == LogLevel::Debug)
                    .then(|| header(&resp.headers(), "content-length")?.parse().ok())
                    .flatten(),
                duration_ms: (end - self.start).max(0.0) as u64,
                hops: self.hops.get(),
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
        resp
    }
}

/// How `begin` left a request: answered already, or waiting for the upstream (the promise
/// resolves to the finished response).
enum Step {
    Answered(Response, Outcome),
    Pending(Promise),
}

/// The route phase: plan the request, answer what needs no upstream, send the rest on.
fn begin(ex: &Rc<Exchange>, config: &'static Config, url: &Url) -> Result<Step, ProxyError> {
    // only `/` can be a page: don't read `Accept` on the API's hot path
    let html = url.path() == "/" && wants_html(header(&ex.req.headers(), "accept").as_deref());
    let plan = plan(config, &ex.method, url, html)?;
    ex.route.set(plan.upstream().map(|u| u.base.as_str()));
    Ok(match plan {
        Plan::Redirect { status, location } => {
            Step::Answered(redirect_response(status, &location), Outcome::Redirect)
        }
        Plan::Landing { upstream } => Step::Answered(
            landing_response(&page(&proxy_origin(url), upstream)),
            Outcome::Page,
        ),
        Plan::LandingAll => Step::Answered(
            landing_response(&page_all(&proxy_origin(url), config)),
            Outcome::Page,
        ),
        // `/v2/`: the upstream decides whether the client must authenticate; the proxy's
        // challenge sends it to the proxy's own `/v2/auth`.
        Plan::Base { upstream, via } => {
            let headers = new_headers();
            if credentials_for(config, upstream, via) {
                copy_header(&ex.req.headers(), &headers, "authorization");
            }
            let target = format!("{}/v2/", upstream.base);
            Step::Pending(relay(ex, upstream, via, target, "GET", headers, None))
        }
        Plan::Auth { upstream } => {
            let cx = Rc::clone(ex);
            Step::Pending(in_future(ex, async move {
                let form = read_form_if_post(&cx).await?;
                auth(&cx, config, upstream, None, form).await
            }))
        }
        Plan::AuthAny => {
            let cx = Rc::clone(ex);
            Step::Pending(in_future(ex, async move {
                // the registry may be named by the form's scopes of a POST as well as the query
                let form = read_form_if_post(&cx).await?;
                let params = format!(
                    "{}&{}",
                    cx.url().query().unwrap_or(""),
                    form.as_deref().unwrap_or("")
                );
                let (upstream, via) = resolve_auth(config, &params)?;
                cx.route.set(Some(upstream.base.as_str()));
                auth(&cx, config, upstream, Some(via), form).await
            }))
        }
        Plan::Forward {
            upstream,
            target,
            via,
        } => Step::Pending(forward(ex, config, upstream, via, target)),
    })
}

/// Runs a multi-step phase as a Rust future; the promise resolves to the finished response.
fn in_future(ex: &Rc<Exchange>, work: impl Future<Output = Answer> + 'static) -> Promise {
    let ex = Rc::clone(ex);
    future_to_promise(async move {
        let answer = work.await;
        Ok(ex.finish(answer).into())
    })
}

/// Everything else of the API: method, headers and body go upstream as they came; the answer
/// comes back untouched unless it is a 401 (the proxy's challenge) or names the upstream in
/// `Location` (upload sessions).
fn forward(
    ex: &Rc<Exchange>,
    config: &Config,
    upstream: &'static Upstream,
    via: Option<Via<'static>>,
    target: String,
) -> Promise {
    let mut headers = ex.req.headers();
    // A password the client gave the proxy's host is for the default registry only (bearer
    // tokens come from the registry's own realm, scoped by it).
    if !credentials_for(config, upstream, via) {
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
    // A streamed body cannot be sent twice, so its redirects go back to the client.
    let body = match ex.method.as_str() {
        "GET" | "HEAD" => None,
        _ => ex.req.body().map(JsValue::from),
    };
    relay(
        ex,
        upstream,
        via,
        target,
        &ex.method,
        headers,
        body.as_ref(),
    )
}

/// The upstream request and response phases of a request that needs one upstream answer:
/// sends it, and answers in a continuation. Redirects of a GET or HEAD are followed (in a
/// Rust future, as they may take several requests).
fn relay(
    ex: &Rc<Exchange>,
    upstream: &'static Upstream,
    via: Option<Via<'static>>,
    target: String,
    method: &str,
    headers: Headers,
    body: Option<&JsValue>,
) -> Promise {
    let sent = send(&target, method, &headers, body, ex.timeout_ms());
    let follows = match (method, body) {
        ("GET", None) => Some("GET"),
        ("HEAD", None) => Some("HEAD"),
        _ => None,
    };
    let ex = Rc::clone(ex);
    and_then(&sent, move |sent| {
        match (ex.settle(sent, &upstream.base), follows) {
            (Ok((resp, status)), Some(method)) if is_redirect(status) => {
                let cx = Rc::clone(&ex);
                in_future(&ex, async move {
                    let base = &upstream.base;
                    let (resp, status) =
                        follow(&cx, resp, &target, method, &headers, base, base).await?;
                    answer(&cx, resp, status, upstream, via)
                })
                .into()
            }
            (settled, _) => ex
                .finish(settled.and_then(|(resp, status)| answer(&ex, resp, status, upstream, via)))
                .into(),
        }
    })
}

/// The upstream response phase of a forward: a 401 gets the proxy's challenge, a `Location`
/// of an upload session points back at the proxy, anything else passes as it is.
fn answer(
    ex: &Exchange,
    resp: Response,
    status: u16,
    upstream: &Upstream,
    via: Option<Via<'_>>,
) -> Answer {
    match status {
        401 => challenge_response(resp, upstream, via, ex.url()),
        _ if !matches!(ex.method.as_str(), "GET" | "HEAD") => {
            Ok((relocate(resp, upstream, via, ex.url())?, Outcome::Proxied))
        }
        _ => Ok((resp, Outcome::Proxied)),
    }
}

/// `/v2/auth`: learn the upstream's realm from its challenge, then ask it for a token with the
/// client's credentials and parameters (rewritten for the upstream).
/// `form`: the body of a POST token request (OAuth2), already read.
async fn auth(
    ex: &Exchange,
    config: &Config,
    upstream: &Upstream,
    via: Option<Via<'_>>,
    form: Option<String>,
) -> Answer {
    let probe_url = format!("{}/v2/", upstream.base);
    let (probe, status) = fetch_following(
        ex,
        &probe_url,
        "GET",
        &new_headers(),
        &upstream.base,
        &upstream.base,
    )
    .await?;
    if status != 401 {
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
    let anonymous = !credentials_for(config, upstream, via);
    let headers = new_headers();
    if !anonymous {
        copy_header(&ex.req.headers(), &headers, "authorization");
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
            let sent = send(
                endpoint.realm.as_str(),
                "POST",
                &headers,
                Some(&body),
                ex.timeout_ms(),
            );
            let (resp, _) = ex.settle(JsFuture::from(sent).await, &upstream.base)?;
            Ok((resp, Outcome::Token))
        }
        _ => {
            // an OAuth2 form without its credentials becomes an anonymous GET
            let converted = form.is_some();
            let target = endpoint.get_url(form.as_deref().or(ex.url().query()), scopes);
            let (resp, _) = fetch_following(
                ex,
                target.as_str(),
                "GET",
                &headers,
                &realm_origin,
                &upstream.base,
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
async fn read_form_if_post(ex: &Exchange) -> Result<Option<String>, ProxyError> {
    if ex.method == "POST" {
        read_form(&ex.req).await.map(Some)
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

/// Sends a GET or HEAD and follows its redirects (see `follow`): the final answer and its
/// status.
async fn fetch_following(
    ex: &Exchange,
    target: &str,
    method: &str,
    headers: &Headers,
    home: &str,
    upstream: &str,
) -> Result<(Response, u16), ProxyError> {
    let sent = send(target, method, headers, None, ex.timeout_ms());
    let (resp, status) = ex.settle(JsFuture::from(sent).await, upstream)?;
    if !is_redirect(status) {
        return Ok((resp, status));
    }
    follow(ex, resp, target, method, headers, home, upstream).await
}

/// Follows redirects by hand from `resp`, the redirect that answered `target`: at most
/// `MAX_HOPS`, with credentials only while the hop stays on `home` (the origin they were meant
/// for). The final answer and its status.
async fn follow(
    ex: &Exchange,
    mut resp: Response,
    target: &str,
    method: &str,
    headers: &Headers,
    home: &str,
    upstream: &str,
) -> Result<(Response, u16), ProxyError> {
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
        ex.hops.set(ex.hops.get() + 1);
        let sent = send(
            next.as_str(),
            method,
            hop_headers.as_ref().unwrap_or(headers),
            None,
            ex.timeout_ms(),
        );
        let (answer, status) = ex.settle(JsFuture::from(sent).await, upstream)?;
        if !is_redirect(status) {
            return Ok((answer, status));
        }
        resp = answer;
        current = next;
    }
    Err(ProxyError::BadRedirect {
        upstream: upstream.to_string(),
        reason: format!("more than {MAX_HOPS} redirects"),
    })
}

/// One fetch, redirects not followed, raced against the configured time to response headers.
/// The promise resolves to the `Response`, to `null` if the fetch failed, or to `undefined` if
/// the time ran out first (see `Exchange::settle`); it never rejects.
fn send(url: &str, method: &str, headers: &Headers, body: Option<&JsValue>, ms: u32) -> Promise {
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

impl Exchange {
    /// What `send`'s promise resolved to, as the upstream's answer or the proxy's error.
    fn settle(
        &self,
        sent: Result<JsValue, JsValue>,
        upstream: &str,
    ) -> Result<(Response, u16), ProxyError> {
        match sent {
            Ok(v) if v.is_object() => {
                let resp: Response = v.unchecked_into();
                let status = resp.status();
                self.upstream_status.set(Some(status));
                Ok((resp, status))
            }
            Ok(v) if v.is_undefined() => Err(ProxyError::Timeout {
                upstream: upstream.to_string(),
                ms: self.timeout_ms(),
            }),
            _ => Err(ProxyError::Unreachable {
                upstream: upstream.to_string(),
            }),
        }
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// A promise, for `then`/`catch` with plain functions (js-sys's own take closures).
    #[wasm_bindgen(js_name = Promise)]
    type Thenable;
    #[wasm_bindgen(method, js_name = then)]
    fn then_with(this: &Thenable, f: &JsValue) -> Promise;
    #[wasm_bindgen(method, js_name = catch)]
    fn catch_with(this: &Thenable, f: &JsValue) -> Promise;
}

thread_local! {
    /// `catch` handler that turns a failed fetch into `null`: one continuation sees every
    /// outcome. Made once per isolate.
    static REJECTED_AS_NULL: JsValue =
        Closure::<dyn FnMut(JsValue) -> JsValue>::new(|_| JsValue::NULL).into_js_value();
    // `scheduler.wait` of the Workers runtime, looked up once.
    static WAIT: OnceCell<Option<(JsValue, js_sys::Function)>> = const { OnceCell::new() };
}

/// `then(promise's value)`, run as a JavaScript continuation. The closure is freed once it
/// has run, or by the garbage collector if the promise never settles (a cancelled request).
fn and_then(
    promise: &Promise,
    then: impl FnOnce(Result<JsValue, JsValue>) -> JsValue + 'static,
) -> Promise {
    let then = Closure::<dyn FnMut(JsValue) -> JsValue>::once(move |v| then(Ok(v))).into_js_value();
    promise.unchecked_ref::<Thenable>().then_with(&then)
}

/// A promise that resolves (to `undefined`) after `ms`: `scheduler.wait`, else `setTimeout`.
fn timer(ms: u32) -> Promise {
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

/// An upstream 401 re-issued with the proxy's challenge, so the client comes to the proxy's
/// `/v2/auth`. A non-Bearer challenge (Basic) passes through: the client answers it directly.
fn challenge_response(
    resp: Response,
    upstream: &Upstream,
    via: Option<Via<'_>>,
    url: &Url,
) -> Answer {
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
