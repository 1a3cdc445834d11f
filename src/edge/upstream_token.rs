//! What an upstream wants and the token the proxy gets for it: the challenge its `/v2/` gives
//! anonymous clients (remembered for a while, for `/v2/auth` and for the proxy's own tokens),
//! and the proxy's own upstream token for its users' forwards (asked anonymously or with the
//! proxy's account, remembered per repository and action, forgotten on the upstream's 401).

use super::exchange::Exchange;
use super::memo;
use super::respond::{self, header, new_headers};
use super::rewrite::token_answer;
use super::send::{send, Outgoing};
use crate::challenge::bearer_challenge;
use crate::error::ProxyError;
use crate::memo::CHALLENGE_MS;
use crate::plan::Forward;
use crate::token::{reusable_ms, token_of, ScopeMap, TokenEndpoint};
use url::form_urlencoded;

/// What an upstream's `/v2/` says to a client without credentials.
pub enum Probe {
    /// `401` with this `WWW-Authenticate` (empty if none).
    Challenge(String),
    /// `200`: no token needed.
    Open,
    /// Anything else, as the upstream answered.
    Trouble(worker::web_sys::Response),
}

/// The upstream's challenge, from memory if `remember` and it is known, else by asking its
/// `/v2/` (a Bearer challenge is then remembered for a while).
pub async fn challenge(x: &mut Exchange, base: &str, remember: bool) -> Result<Probe, ProxyError> {
    if let Some(www) = remember.then(|| memo::challenge(base)).flatten() {
        return Ok(Probe::Challenge(www));
    }
    let probe = Outgoing {
        url: &format!("{base}/v2/"),
        method: "GET",
        headers: new_headers()?,
        body: None,
        follow: true,
        home: base,
        upstream: base,
        timeout_ms: x.config.timeout_ms,
    };
    let (probe, status) = send(&mut x.trace, probe).await?;
    match status {
        401 => {}
        200 => return Ok(Probe::Open),
        _ => return Ok(Probe::Trouble(probe)),
    }
    let www = header(&probe.headers(), "www-authenticate").unwrap_or_default();
    if remember && bearer_challenge(Some(&www), base).is_ok_and(|c| c.is_some()) {
        memo::remember_challenge(base, &www);
    }
    Ok(Probe::Challenge(www))
}

/// The memo key of the proxy's own upstream token for a forward.
fn token_key(f: &Forward<'_>) -> String {
    format!(
        "{} {} proxy",
        f.route.upstream.base,
        upstream_scope(f).unwrap_or_default()
    )
}

fn upstream_scope(f: &Forward<'_>) -> Option<String> {
    let repo = f.repository.as_ref()?;
    Some(format!(
        "repository:{}:{}",
        repo.name,
        f.access.scope_actions()
    ))
}

/// The upstream's 401 to the proxy's own token: it is forgotten, so the next request gets a
/// fresh one.
pub fn refused(f: &Forward<'_>) {
    memo::remember_token(&token_key(f), String::new(), 0.0);
}

/// The `Authorization` the proxy sends upstream for a proxy user's forward: its own token for
/// the forward's repository (remembered for half its life), none for a registry that needs none.
pub async fn proxy_authorization(
    x: &mut Exchange,
    f: &Forward<'_>,
) -> Result<Option<String>, ProxyError> {
    let base = f.route.upstream.base.as_str();
    let account = x.config.accounts.of(base).is_some();
    token_for(x, base, upstream_scope(f), &token_key(f), account).await
}

/// The `Authorization` for a fallback upstream (failover.rs): its own anonymous token for
/// `scope`, remembered under `key`; none if it needs none.
pub async fn fallback_authorization(
    x: &mut Exchange,
    base: &str,
    scope: &str,
    key: &str,
) -> Result<Option<String>, ProxyError> {
    token_for(x, base, Some(scope.to_string()), key, false).await
}

/// A token of `base`'s token service for `scope`, asked with the proxy's account there if
/// `account`, else anonymously; remembered under `key` for half its life.
async fn token_for(
    x: &mut Exchange,
    base: &str,
    scope: Option<String>,
    key: &str,
    account: bool,
) -> Result<Option<String>, ProxyError> {
    if let Some(token) = memo::token(key) {
        return Ok((!token.is_empty()).then(|| format!("Bearer {token}")));
    }
    let www = match challenge(x, base, true).await? {
        Probe::Challenge(www) => www,
        // open, or in trouble the request itself will show
        Probe::Open | Probe::Trouble(_) => {
            memo::remember_token(key, String::new(), CHALLENGE_MS);
            return Ok(None);
        }
    };
    let Some(challenge) = bearer_challenge(Some(www.as_str()).filter(|w| !w.is_empty()), base)?
    else {
        return Ok(None);
    };
    let endpoint = TokenEndpoint::from_challenge(&challenge, base)?;
    let query = scope
        .map(|s| {
            form_urlencoded::Serializer::new(String::new())
                .append_pair("scope", &s)
                .finish()
        })
        .unwrap_or_default();
    let anonymous = ScopeMap {
        docker_hub: false,
        via: None,
        anonymous: true,
    };
    let request = endpoint.request(Some(&query), None, anonymous);
    let realm = request.url().origin().ascii_serialization();
    let headers = new_headers()?;
    // the proxy's account at this upstream, if it has one: its users were let in by the proxy
    if let Some(auth) = account
        .then(|| x.config.accounts.of(base))
        .flatten()
        .and_then(|a| a.authorization(request.url()))
    {
        respond::set(&headers, "authorization", auth)?;
    }
    let out = Outgoing {
        url: request.url().as_str(),
        method: "GET",
        headers,
        body: None,
        follow: true,
        home: &realm,
        upstream: &realm,
        timeout_ms: x.config.timeout_ms,
    };
    let (resp, status) = send(&mut x.trace, out).await?;
    if !resp.ok() {
        return Err(ProxyError::BadAnswer {
            upstream: realm,
            reason: format!("the proxy's own token request was answered {status}"),
        });
    }
    let (_, body) = token_answer(resp, false, false, &realm, x.config.timeout_ms).await?;
    let body = body.unwrap_or_default();
    let token = token_of(body.as_bytes()).ok_or_else(|| ProxyError::BadAnswer {
        upstream: realm.clone(),
        reason: "token answer has no token".into(),
    })?;
    if let Some(ms) = reusable_ms(body.as_bytes()) {
        memo::remember_token(key, token.clone(), ms);
    }
    Ok(Some(format!("Bearer {token}")))
}
