//! The proxy's `/v2/auth`: learn the upstream's realm from its challenge, then ask its token
//! service for a token with the client's parameters, rewritten for the upstream.

use super::body::{read_bounded, Unread};
use super::exchange::{Answer, Exchange};
use super::memo;
use super::proxy_users;
use super::respond::{self, has, header, new_headers, set};
use super::rewrite::token_answer;
use super::send::{send, timer, Outgoing};
use super::upstream_token::{challenge, Probe};
use crate::cache_settings::CacheMode;
use crate::challenge::bearer_challenge;
use crate::credentials::Credentials;
use crate::credentials::ANONYMOUS_MARK;
use crate::error::ProxyError;
use crate::failover::{stand_in_token, stands_in};
use crate::log::Verdict;
use crate::log::{iso8601, Outcome};
use crate::namespace::resolve_token;
use crate::plan::TokenRoute;
use crate::token::{open_registry_answer, reusable_ms, token_of, ScopeMap, TokenEndpoint};
use worker::js_sys;
use worker::wasm_bindgen::JsValue;

/// The OAuth2 form containerd posts to `/v2/auth` is tiny; refuse anything large.
const MAX_TOKEN_FORM: usize = 16 * 1024;

pub async fn answer(x: &mut Exchange, route: TokenRoute<'static>) -> Answer {
    let form = if x.method == "POST" {
        Some(read_form(x).await?)
    } else {
        None
    };
    // the query and the form: the registry may be named by the form's scopes as well
    let params = format!(
        "{}&{}",
        x.url.query().unwrap_or(""),
        form.as_deref().unwrap_or("")
    );
    let route = match route {
        TokenRoute::Fixed(route) => route,
        TokenRoute::ByParams => resolve_token(x.config, &params)?,
    };
    let base = route.upstream.base.as_str();
    x.trace.route = Some(base);
    let credentials = Credentials::for_route(x.config, route);
    // access: a token for a repository the policy refuses is refused before any upstream
    if x.config.policy.judges_names() {
        for name in ScopeMap::new(route, credentials).repositories(&params) {
            x.config.policy.repository(&route.upstream.name, &name)?;
        }
    }
    if let Some(users) = &x.config.users {
        return proxy_users::token(x, users, route, form.as_deref(), &params).await;
    }
    // an anonymous client's token may be one another anonymous client got for the same request
    let memo = x.config.cache != CacheMode::Off;
    let anonymous = memo && form.is_none() && !has(&x.req.headers(), "authorization");
    let token_key = anonymous.then(|| format!("{base} {}", x.url.query().unwrap_or("")));
    if let Some(body) = token_key.as_deref().and_then(memo::token) {
        x.trace.cache = Some(Verdict::Hit);
        return Ok((respond::json(200, &body)?, Outcome::Token));
    }

    // an anonymous client's token request, which the proxy answers itself while the upstream
    // or its token service cannot, where reads can still be served (failover.rs)
    let stale = x.config.stale_answers();
    let asks_anonymously = form.is_none()
        && (!credentials.to_token_service() || !has(&x.req.headers(), "authorization"));
    let may_stand_in =
        |status: Option<u16>| asks_anonymously && stands_in(route.upstream, stale, status);
    // the realm, from the upstream's challenge (remembered for a while)
    let www = match challenge(x, base, memo).await {
        Ok(Probe::Challenge(www)) => www,
        // no token needed upstream, but the client asked for one
        Ok(Probe::Open) => {
            let body = open_registry_answer(&iso8601(js_sys::Date::now()));
            return Ok((respond::json(200, &body)?, Outcome::Token));
        }
        Ok(Probe::Trouble(answer)) if may_stand_in(Some(answer.status())) => return stand_in(),
        Err(_) if may_stand_in(None) => return stand_in(),
        // the upstream's trouble is the client's to see
        Ok(Probe::Trouble(answer)) => return Ok((answer, Outcome::Proxied)),
        Err(e) => return Err(e),
    };
    let challenge = bearer_challenge(
        Some(&www).filter(|w| !w.is_empty()).map(String::as_str),
        base,
    )?
    .ok_or_else(|| ProxyError::BadChallenge {
        upstream: base.to_string(),
        reason:
            "no Bearer challenge (the client should authenticate with the upstream's own scheme)"
                .into(),
    })?;
    let endpoint = TokenEndpoint::from_challenge(&challenge, base)?;

    // the token
    let request = endpoint.request(
        x.url.query(),
        form.as_deref(),
        ScopeMap::new(route, credentials),
    );
    let realm_origin = request.url().origin().ascii_serialization();
    let headers = new_headers()?;
    if request.form().is_some() {
        set(
            &headers,
            "content-type",
            "application/x-www-form-urlencoded",
        )?;
    }
    let client_auth = request
        .sends_credentials()
        .then(|| header(&x.req.headers(), "authorization"))
        .flatten();
    // the client's own credentials, else the proxy's account (if any) for reading
    let own = client_auth.is_some() || request.form().is_some();
    let account = x
        .config
        .accounts
        .for_token_request(base, request.url(), own, &params);
    let sent = client_auth.as_deref().or(account);
    if let Some(auth) = sent {
        set(&headers, "authorization", auth)?;
    }
    // nothing of the client's or the proxy's went: the client is anonymous, and its token says so
    let marked = sent.is_none() && !own;
    let out = Outgoing {
        url: request.url().as_str(),
        method: request.method(),
        headers,
        body: request.form().map(JsValue::from_str),
        follow: request.follows_redirects(),
        home: &realm_origin,
        // the token service is named in errors
        upstream: &realm_origin,
        timeout_ms: x.config.timeout_ms,
    };
    let sent = send(&mut x.trace, out).await;
    let status = sent.as_ref().ok().map(|(_, status)| *status);
    if may_stand_in(status) {
        return stand_in();
    }
    let (resp, _) = sent?;
    let (resp, body) = token_answer(
        resp,
        request.answers_oauth(),
        marked,
        &realm_origin,
        x.config.timeout_ms,
    )
    .await?;
    if let (true, Some(token)) = (marked, body.as_deref().and_then(|b| token_of(b.as_bytes()))) {
        // the upstream's part, as it will go upstream: known here to be no one's
        let upstream = format!(
            "Bearer {}",
            token.strip_prefix(ANONYMOUS_MARK).unwrap_or(&token)
        );
        let ms = body
            .as_deref()
            .and_then(|b| reusable_ms(b.as_bytes()))
            .unwrap_or(60_000.0);
        memo::remember_anonymous(&upstream, ms * 2.0);
    }
    if let (Some(key), Some(body)) = (token_key, body) {
        if let Some(ms) = reusable_ms(body.as_bytes()) {
            memo::remember_token(&key, body, ms);
        }
    }
    Ok((resp, Outcome::Token))
}

/// The stand-in token (failover.rs): marked anonymous, with nothing for the upstream.
fn stand_in() -> Answer {
    Ok((respond::json(200, &stand_in_token())?, Outcome::Token))
}

/// The body of a POST token request: an OAuth2 form, at most `MAX_TOKEN_FORM` bytes, read as
/// a stream (a chunked body has no `Content-Length` to refuse early).
async fn read_form(x: &Exchange) -> Result<String, ProxyError> {
    let too_big =
        || ProxyError::BadRequest(format!("token form larger than {MAX_TOKEN_FORM} bytes"));
    if let Some(len) = header(&x.req.headers(), "content-length") {
        if len
            .trim()
            .parse::<usize>()
            .map_or(true, |n| n > MAX_TOKEN_FORM)
        {
            return Err(too_big());
        }
    }
    let ms = x.config.timeout_ms;
    let form = read_bounded(x.req.body(), MAX_TOKEN_FORM, &timer(ms))
        .await
        .map_err(|e| match e {
            Unread::TooLarge => too_big(),
            Unread::Failed => ProxyError::BadRequest("token form cut short".into()),
            Unread::TimedOut => {
                ProxyError::BadRequest(format!("token form not received within {ms} ms"))
            }
        })?;
    String::from_utf8(form.to_vec())
        .map_err(|_| ProxyError::BadRequest("token form is not UTF-8".into()))
}
