//! The entry and the order of a request's phases (`phases`): route → access → proxy users →
//! rate limit → the plan's own answers → upstream credentials → cache lookup → upstream
//! request → upstream response → client response → log.

use super::exchange::{Answer, Exchange, Trace};
use super::send::Reply;
use super::{
    cache, fallback, limit, proxy_users, respond, rewrite, search, stats, token_endpoint, upstream,
    upstream_token, vars,
};
use crate::access;
use crate::credentials::Credentials;
use crate::error::ProxyError;
use crate::failover;
use crate::landing::{page, page_all, wants_html};
use crate::log::{failed, iso8601, upstream_bytes, LogLevel, Outcome, RequestLog};
use crate::plan::Forward;
use crate::plan::{plan, Plan};
use url::Url;
use worker::web_sys::{self, Request, Response};
use worker::{js_sys, wasm_bindgen::JsValue, Context, Env};
use worker_macros::event;

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let started = js_sys::Date::now();
    let method = req.method();
    let url = Url::parse(&req.url());
    let (config, url) = match (vars::config(&env), url) {
        (Ok(config), Ok(url)) => (config, url),
        // nothing can be routed: a var is broken (the runtime's URLs always parse)
        (config, url) => {
            let error = config.err().unwrap_or(ProxyError::NotFound);
            let line = Line {
                level: LogLevel::Error,
                host: url.as_ref().ok().and_then(|u| u.host_str()).unwrap_or(""),
                path: url.as_ref().map_or("", |u| u.path()),
                method: &method,
                trace: &Trace::default(),
                started,
            };
            return finish(Err(error), line);
        }
    };
    let mut x = Exchange {
        config,
        url,
        method,
        req,
        env,
        ctx,
        started,
        trace: Trace::default(),
    };
    let answer = phases(&mut x).await;
    let line = Line {
        level: x.config.log_level,
        host: x.url.host_str().unwrap_or(""),
        path: x.url.path(),
        method: &x.method,
        trace: &x.trace,
        started: x.started,
    };
    finish(answer, line)
}

/// Not even an error response could be built: workers-rs answers a plain 500.
fn unanswerable(e: ProxyError) -> worker::Error {
    worker::Error::RustError(e.to_string())
}

/// The client response (the answer, or the error's registry JSON) and the log phase.
fn finish(answer: Answer, line: Line<'_>) -> worker::Result<Response> {
    let (resp, outcome, error) = match answer {
        Ok((resp, outcome)) => (resp, outcome, None),
        Err(e) => (
            respond::error(&e).map_err(unanswerable)?,
            Outcome::Error,
            Some(e.status_code().1),
        ),
    };
    line.write(&resp, outcome, error);
    Ok(resp)
}

/// The phases of a routed request, in order:
/// - route: the core's plan for it (plan.rs);
/// - access: the operator's policy (access.rs, policy.rs);
/// - proxy users: who the client is, when `PROXY_USERS` is set (users.rs);
/// - rate limit: the client counted, when a `RATE_LIMITER` is bound;
/// - the plan's own answers: a redirect, the landing page, `/v1/search`, `/v2/auth`;
/// - upstream credentials: for a proxy user, the proxy's own upstream token, once;
/// - cache lookup: the store's answer once the upstream says this client may have it;
/// - upstream request, then the upstream response, kept after it passes on a miss.
///
/// The client response and the log line follow (`finish`).
async fn phases(x: &mut Exchange) -> Answer {
    // route
    let mut plan = route(x)?;
    x.trace.route = plan.upstream().map(|u| u.base.as_str());
    x.trace.stats = stats::pending(x, &plan);
    // access
    let (ip, user_agent) = client_facts(x);
    let client = access::Client {
        host: x.url.host_str().unwrap_or(""),
        ip: ip.as_deref(),
        user_agent: user_agent.as_deref(),
    };
    access::check(&x.config.policy, &plan, &client)?;
    // proxy users: who the client is, before anything is asked upstream
    let mut user = None;
    if let Some(users) = &x.config.users {
        match &mut plan {
            Plan::Upstream(forward) => {
                let (name, answered) = proxy_users::admit(x, users, forward)?;
                if let Some(answer) = answered {
                    return answer;
                }
                user = name;
            }
            Plan::Search(s) => user = Some(proxy_users::admit_search(x, users, s.upstream)?),
            _ => {}
        }
        if let (Some(p), Some(name)) = (&mut x.trace.stats, &user) {
            p.user.clone_from(name);
        }
    }
    // rate limit
    if x.config.policy.rate_limited {
        limit::count(&x.env, &access::limit_key(&client, user.as_deref())).await?;
    }
    // the plan's own answers
    let forward = match plan {
        Plan::Redirect { status, location } => {
            return Ok((respond::redirect(status, &location)?, Outcome::Redirect));
        }
        Plan::Landing(upstream) => return landing(x, upstream),
        Plan::Stats => return stats::page(x).await,
        Plan::Search(s) => return search::answer(x, &s).await,
        // two upstream requests of its own (the realm, then the token)
        Plan::Token(route) => return token_endpoint::answer(x, route).await,
        Plan::Upstream(forward) => forward,
    };
    // upstream credentials: a proxy user's request goes with the proxy's own token
    let proxy = match forward.credentials {
        Credentials::Proxy => upstream_token::proxy_authorization(x, &forward).await?,
        Credentials::Client | Credentials::Anonymous => None,
    };
    let proxy = proxy.as_deref();
    // cache lookup
    let keep = match cache::lookup(x, &forward, proxy).await {
        Ok(cache::Lookup::Answered(resp, outcome)) => {
            return Ok((cache::labelled(x.trace.cache, resp), outcome))
        }
        Ok(cache::Lookup::Miss(keep)) => Some(keep),
        Ok(cache::Lookup::Bypass) => None,
        // the upstream could not answer the cache's question: a fallback may
        Err(e) => {
            return match fall_back(x, &forward, None).await {
                Some(served) => Ok(served_by_fallback(x, &forward, None, served)),
                None => Err(e),
            }
        }
    };
    // upstream request
    let primary = upstream::forward(x, &forward, proxy).await;
    if let Ok(reply) = &primary {
        if reply.status == 401 && forward.credentials == Credentials::Proxy {
            upstream_token::refused(&forward);
        }
        if forward.asks_manifest() {
            x.trace.rate_limit(&reply.resp.headers());
        }
    }
    // fallback: an anonymous read the primary failed, asked of the route's fallbacks
    let status = primary.as_ref().ok().map(|r| r.status);
    if let Some(served) = fall_back(x, &forward, status).await {
        return Ok(served_by_fallback(x, &forward, keep, served));
    }
    if let Some(answer) = stand_in(x, &forward, status) {
        return answer;
    }
    let Reply {
        resp,
        status,
        from,
        headers,
    } = primary?;
    // upstream response, kept after it on a miss
    let (resp, outcome) = rewrite::answer(x, &forward, resp, status).await?;
    let resp = match keep {
        Some(keep) if outcome == Outcome::Proxied => {
            let source = cache::Source {
                status,
                fallback: None,
                bytes: None,
                from: from.as_deref(),
                headers: &headers,
            };
            cache::keep(x, &forward, keep, resp, source)
        }
        _ => {
            cache::passed(x, &forward, &resp, status);
            resp
        }
    };
    Ok((cache::labelled(x.trace.cache, resp), outcome))
}

/// The fallback phase: when the primary failed (`status`: its answer's, `None` for none) a
/// read that may fall back (failover.rs) is asked of the route's fallbacks. If none serves it,
/// the log line keeps the primary's status.
async fn fall_back(
    x: &mut Exchange,
    f: &Forward<'static>,
    status: Option<u16>,
) -> Option<fallback::Served> {
    if f.route.upstream.fallbacks.is_empty()
        || !failover::primary_failed(status)
        || !failover::may_fall_back(f, upstream::anonymous(x, f))
    {
        return None;
    }
    let served = fallback::ask_fallbacks(x, f).await;
    if served.is_none() {
        x.trace.upstream_status = status;
    }
    served
}

/// The proxy's own challenge to an anonymous client's version check while the upstream cannot
/// give one, where reads can still be served (failover.rs `stands_in`).
fn stand_in(x: &Exchange, f: &Forward<'_>, status: Option<u16>) -> Option<Answer> {
    let stale = x.config.stale_answers();
    if !f.is_version_check()
        || !failover::stands_in(f.route.upstream, stale, status)
        || !upstream::anonymous(x, f)
    {
        return None;
    }
    let ours = crate::challenge::stand_in(f.route, &x.origin());
    Some(respond::challenge(&ours).map(|resp| (resp, Outcome::Challenge)))
}

/// A fallback's answer to the client, kept on a miss like the primary's would be.
fn served_by_fallback(
    x: &mut Exchange,
    f: &Forward<'_>,
    keep: Option<cache::Keep>,
    served: fallback::Served,
) -> (Response, Outcome) {
    let resp = match keep {
        Some(keep) => {
            let source = cache::Source {
                status: 200,
                fallback: x.trace.fallback,
                bytes: served.bytes.as_ref(),
                from: Some(&served.from),
                headers: &served.headers,
            };
            cache::keep(x, f, keep, served.resp, source)
        }
        None => served.resp,
    };
    (cache::labelled(x.trace.cache, resp), Outcome::Proxied)
}

/// The landing page: a host's recipes, or every registry's on a path-routing host.
fn landing(x: &Exchange, upstream: Option<&crate::routes::Upstream>) -> Answer {
    let origin = x.origin();
    let html = match upstream {
        Some(upstream) => {
            let search = upstream.search.is_some() && x.config.users.is_none();
            page(&origin, upstream, search)
        }
        None => page_all(&origin, x.config.landing_registries()),
    };
    Ok((respond::page(&html)?, Outcome::Page))
}

/// The client's address and `User-Agent`, each read only when the policy asks for it.
fn client_facts(x: &Exchange) -> (Option<String>, Option<String>) {
    let policy = &x.config.policy;
    if !policy.needs_ip() && !policy.needs_user_agent() {
        return (None, None);
    }
    let headers = x.req.headers();
    let read = |name, wanted: bool| wanted.then(|| respond::header(&headers, name)).flatten();
    (
        read("cf-connecting-ip", policy.needs_ip()),
        read("user-agent", policy.needs_user_agent()),
    )
}

/// The route phase: the core's plan for this request.
fn route(x: &Exchange) -> Result<Plan<'static>, ProxyError> {
    // only `/` can be a page: `Accept` is not read on the API's hot path
    let html =
        x.url.path() == "/" && wants_html(respond::header(&x.req.headers(), "accept").as_deref());
    plan(x.config, &x.method, &x.url, html)
}

/// The log phase: one JSON line (`log.rs`), at the configured level.
struct Line<'a> {
    level: LogLevel,
    host: &'a str,
    path: &'a str,
    method: &'a str,
    trace: &'a Trace,
    started: f64,
}

impl Line<'_> {
    fn write(&self, resp: &Response, outcome: Outcome, error: Option<&'static str>) {
        // A proxied answer is the upstream's own: its status is known (one call less).
        let status = match (outcome, self.trace.upstream_status) {
            (Outcome::Proxied | Outcome::Limited, Some(status)) => status,
            _ => resp.status(),
        };
        let end = js_sys::Date::now();
        let duration_ms = (end - self.started).max(0.0) as u64;
        let upstream_bytes = upstream_bytes(self.trace.cache, self.trace.upstream_length);
        if let Some(pending) = &self.trace.stats {
            let answered = stats::Answered {
                method: self.method,
                status,
                outcome,
                cache: self.trace.cache,
                resp,
                upstream_bytes,
                duration_ms,
                ratelimit_remaining: self.trace.ratelimit_remaining,
            };
            stats::write(pending, &answered);
        }
        if !self.level.wants(outcome, status) {
            return;
        }
        let line = RequestLog {
            time: &iso8601(end),
            host: self.host,
            route: self.trace.route,
            method: self.method,
            path: self.path,
            status,
            upstream_status: self.trace.upstream_status,
            // reading the answer's headers is a cost of its own: only when asked for
            bytes: (self.level == LogLevel::Debug)
                .then(|| {
                    respond::header(&resp.headers(), "content-length")?
                        .parse()
                        .ok()
                })
                .flatten(),
            duration_ms,
            hops: self.trace.hops,
            outcome,
            error,
            cache: self.trace.cache,
            ratelimit_limit: self.trace.ratelimit_limit,
            ratelimit_remaining: self.trace.ratelimit_remaining,
            upstream_bytes,
            retries: self.trace.retries,
            fallback: self.trace.fallback,
        };
        let json = JsValue::from_str(&line.to_json());
        if failed(outcome, status) {
            web_sys::console::error_1(&json);
        } else {
            web_sys::console::log_1(&json);
        }
    }
}
