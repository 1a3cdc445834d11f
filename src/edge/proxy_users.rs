//! Proxy users at the edge (users.rs decides): the access phase's check of a request's login,
//! `/v2/auth` issuing the proxy's own tokens, and the upstream token the proxy gets for itself
//! (its users' credentials never go upstream).

use super::entry::{Answer, Exchange};
use super::memo;
use super::respond::{self, header, new_headers};
use super::rewrite::token_answer;
use super::token_endpoint::{upstream_challenge, Probe};
use super::upstream::{send, Outgoing};
use crate::challenge::{self, bearer_challenge};
use crate::classify::Access;
use crate::credentials::Credentials;
use crate::error::ProxyError;
use crate::log::{iso8601, Outcome};
use crate::memo::CHALLENGE_MS;
use crate::plan::Forward;
use crate::routes::Route;
use crate::token::{reusable_ms, token_of, ScopeMap, TokenEndpoint};
use crate::users::{Door, Users};
use url::form_urlencoded;
use worker::js_sys;

fn now_s() -> u64 {
    (js_sys::Date::now() / 1000.0) as u64
}

fn host(x: &Exchange) -> String {
    x.url.host_str().unwrap_or("").to_ascii_lowercase()
}

/// The access phase for a forward: who the client is. Passes (the forward then goes with the
/// proxy's own upstream credentials), answers the version check itself (a logged-in client's
/// `/v2/` is ours to answer: the upstream does not know the proxy's tokens), or refuses.
pub fn admit(
    x: &Exchange,
    users: &Users,
    f: &mut Forward<'_>,
) -> Result<(Option<String>, Option<Answer>), ProxyError> {
    let auth = header(&x.req.headers(), "authorization");
    let host = host(x);
    let name = f.repository.as_ref().map(|r| r.name.as_str());
    let door = users.door(
        auth.as_deref(),
        &host,
        &f.route.upstream.name,
        name,
        f.access,
        now_s(),
    );
    let version_check = name.is_none() && matches!(x.url.path(), "/v2/" | "/v2");
    match door {
        Door::Pass(user) => {
            if version_check {
                let answer = respond::json(200, "{}")?;
                return Ok((Some(user.name.clone()), Some(Ok((answer, Outcome::Page)))));
            }
            if name.is_none() && user.restricted() {
                return Err(ProxyError::Denied);
            }
            f.credentials = Credentials::Proxy;
            Ok((Some(user.name.clone()), None))
        }
        Door::Deny => Err(ProxyError::Denied),
        Door::Login => Err(login(x, f.route, name.map(|n| (n, f.access)))),
    }
}

/// The access phase for a search: any logged-in user may (the answer names no repository of
/// the operator's); others get the proxy's challenge.
pub fn admit_search(
    x: &Exchange,
    users: &Users,
    upstream: &crate::routes::Upstream,
) -> Result<String, ProxyError> {
    let auth = header(&x.req.headers(), "authorization");
    match users.door(
        auth.as_deref(),
        &host(x),
        &upstream.name,
        None,
        Access::Read,
        now_s(),
    ) {
        Door::Pass(user) => Ok(user.name.clone()),
        Door::Deny => Err(ProxyError::Denied),
        Door::Login => Err(login(x, Route::host(upstream), None)),
    }
}

/// The 401 that sends the client to this host's `/v2/auth`, for `repository` if any.
fn login(x: &Exchange, route: Route<'_>, repository: Option<(&str, Access)>) -> ProxyError {
    let mut upstream = String::from("Bearer realm=\"x\"");
    if let Some((name, access)) = repository {
        let actions = access.scope_actions();
        upstream.push_str(&format!(",scope=\"repository:{name}:{actions}\""));
    }
    match challenge::for_client(Some(&upstream), route, &x.origin()) {
        Ok(Some(challenge)) => ProxyError::Unauthorized { challenge },
        _ => ProxyError::Denied,
    }
}

/// `/v2/auth` with proxy users on: the user's name and key (`Basic`, or the OAuth2 form's
/// `username` and `password`), and the proxy's own token for what it may do of what it asks.
pub async fn token(
    x: &mut Exchange,
    users: &Users,
    route: Route<'static>,
    form: Option<&str>,
    params: &str,
) -> Answer {
    let refused = || ProxyError::Unauthorized {
        challenge: challenge::proxy_challenge(
            &format!("{}/v2/auth", x.origin()),
            None,
            false,
            None,
        ),
    };
    let user = match form {
        Some(form) => {
            let field = |name: &str| {
                form_urlencoded::parse(form.as_bytes())
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
            };
            match (field("username"), field("password")) {
                (Some(u), Some(p)) => users.login(&u, &p),
                _ => None,
            }
        }
        None => header(&x.req.headers(), "authorization")
            .as_deref()
            .and_then(|a| users.basic(a)),
    }
    .ok_or_else(refused)?;
    let asked = ScopeMap::new(route, Credentials::Anonymous).repository_scopes(params);
    let registry = route.upstream.name.as_str();
    let granted = user.grant(registry, &asked, x.config.policy.read_only);
    let token = users.issue(user, &host(x), registry, granted, now_s());
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": crate::users::TOKEN_SECONDS,
        "issued_at": iso8601(js_sys::Date::now()),
    })
    .to_string();
    Ok((respond::json(200, &body)?, Outcome::Token))
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
pub async fn upstream_authorization(
    x: &mut Exchange,
    f: &Forward<'_>,
) -> Result<Option<String>, ProxyError> {
    let key = token_key(f);
    if let Some(token) = memo::token(&key) {
        return Ok((!token.is_empty()).then(|| format!("Bearer {token}")));
    }
    let base = f.route.upstream.base.as_str();
    let www = match upstream_challenge(x, base, true).await? {
        Probe::Challenge(www) => www,
        // open, or in trouble the request itself will show
        Probe::Open | Probe::Trouble(_) => {
            memo::remember_token(&key, String::new(), CHALLENGE_MS);
            return Ok(None);
        }
    };
    let Some(challenge) = bearer_challenge(Some(www.as_str()).filter(|w| !w.is_empty()), base)?
    else {
        return Ok(None);
    };
    let endpoint = TokenEndpoint::from_challenge(&challenge, base)?;
    let query = upstream_scope(f)
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
    if let Some(auth) = x
        .config
        .accounts
        .of(base)
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
    };
    let (resp, status) = send(x, out).await?;
    if !resp.ok() {
        return Err(ProxyError::BadAnswer {
            upstream: realm,
            reason: format!("the proxy's own token request was answered {status}"),
        });
    }
    let (_, body) = token_answer(x, resp, false, &realm).await?;
    let body = body.unwrap_or_default();
    let token = token_of(body.as_bytes()).ok_or_else(|| ProxyError::BadAnswer {
        upstream: realm.clone(),
        reason: "token answer has no token".into(),
    })?;
    if let Some(ms) = reusable_ms(body.as_bytes()) {
        memo::remember_token(&key, token.clone(), ms);
    }
    Ok(Some(format!("Bearer {token}")))
}
