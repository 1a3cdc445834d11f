//! Response rewriting: the upstream response phase applies the core's decisions to upstream
//! answers (the proxy's challenge on a 401, a `Location` back to the proxy, the OAuth2 form of
//! a token answer).

use super::entry::{Answer, Exchange};
use super::respond::{self, copy_headers, header, set};
use crate::challenge;
use crate::error::ProxyError;
use crate::log::Outcome;
use crate::plan::{Forward, Rewrite};
use crate::redirect::client_location;
use crate::routes::Route;
use crate::token::oauth_compatible;
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::Response;

/// The upstream response phase of a forward.
pub fn answer(x: &Exchange, f: &Forward<'_>, resp: Response, status: u16) -> Answer {
    match f.rewrite(status) {
        Rewrite::Challenge => challenge(x, f.route, resp),
        Rewrite::Location => Ok((location(x, f.route, resp)?, Outcome::Proxied)),
        Rewrite::None => Ok((resp, Outcome::Proxied)),
    }
}

/// A 401 re-issued with the proxy's challenge, so that the client comes to this host's
/// `/v2/auth`; a Basic challenge passes as it is.
pub fn challenge(x: &Exchange, route: Route<'_>, resp: Response) -> Answer {
    let upstream_headers = resp.headers();
    let www = header(&upstream_headers, "www-authenticate");
    let Some(ours) = challenge::for_client(www.as_deref(), route, &x.origin())? else {
        return Ok((resp, Outcome::Proxied));
    };
    let headers = copy_headers(&upstream_headers)?;
    set(&headers, "www-authenticate", &ours)?;
    Ok((respond::rebuild(&resp, 401, &headers)?, Outcome::Challenge))
}

/// A `Location` that names the upstream, pointed at the proxy.
fn location(x: &Exchange, route: Route<'_>, resp: Response) -> Result<Response, ProxyError> {
    let upstream_headers = resp.headers();
    let Some(location) = header(&upstream_headers, "location") else {
        return Ok(resp);
    };
    let Some(ours) = client_location(&location, route, &x.origin()) else {
        return Ok(resp);
    };
    let headers = copy_headers(&upstream_headers)?;
    set(&headers, "location", &ours)?;
    respond::rebuild(&resp, resp.status(), &headers)
}

/// A GET token answer given to an OAuth2 client: `access_token` is added when missing.
pub async fn oauth_answer(resp: Response, upstream: &str) -> Result<Response, ProxyError> {
    let bad = |reason: &str| ProxyError::BadAnswer {
        upstream: upstream.to_string(),
        reason: format!("token answer: {reason}"),
    };
    let text = resp.text().map_err(|_| bad("body already used"))?;
    let text = JsFuture::from(text)
        .await
        .map_err(|_| bad("body cut short"))?
        .as_string()
        .ok_or_else(|| bad("not text"))?;
    match oauth_compatible(&text) {
        Some(body) => respond::replace_body(&resp, &body),
        None => respond::replace_body(&resp, &text),
    }
}
