//! Proxy users at the edge (users.rs decides): the access phase's check of a request's login,
//! and `/v2/auth` issuing the proxy's own tokens. The upstream token the proxy gets for itself
//! is upstream_token.rs' (its users' credentials never go upstream).

use super::exchange::{Answer, Exchange};
use super::respond::{self, header};
use crate::challenge;
use crate::classify::Access;
use crate::credentials::Credentials;
use crate::error::ProxyError;
use crate::log::{iso8601, Outcome};
use crate::plan::Forward;
use crate::routes::Route;
use crate::token::ScopeMap;
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
