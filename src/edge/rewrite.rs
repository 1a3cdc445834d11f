//! Response rewriting: the upstream response phase applies the core's decisions to upstream
//! answers (the proxy's challenge on a 401, a `Location` back to the proxy, a length for an
//! answer that had none, a checked token answer).

use super::body::read_answer;
use super::exchange::{Answer, Exchange};
use super::respond::{self, copy_headers, header, set};
use crate::challenge;
use crate::error::ProxyError;
use crate::log::{passed_on, Outcome};
use crate::plan::{Forward, Rewrite};
use crate::redirect::client_location;
use crate::routes::Route;
use crate::token::{anonymous_answer, answer_for_client, MAX_TOKEN_ANSWER};
use worker::web_sys::Response;

/// The upstream response phase of a forward.
pub async fn answer(x: &Exchange, f: &Forward<'_>, resp: Response, status: u16) -> Answer {
    let resp = match f.sized_answer(status) {
        Some(limit) => sized(x, resp, limit, &f.route.upstream.base).await?,
        None => resp,
    };
    match f.rewrite(status) {
        Rewrite::Challenge => challenge(x, f.route, resp),
        Rewrite::Location => Ok((location(x, f.route, resp)?, passed_on(status))),
        Rewrite::None => Ok((resp, passed_on(status))),
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

/// An answer without `Content-Length` read whole (at most `limit` bytes, within the upstream
/// timeout), to reach the client with a length; one that was cut short, is larger, or stalls
/// is the upstream's failure.
async fn sized(
    x: &Exchange,
    resp: Response,
    limit: usize,
    upstream: &str,
) -> Result<Response, ProxyError> {
    if header(&resp.headers(), "content-length").is_some() {
        return Ok(resp);
    }
    let body = read_answer(resp.body(), limit, x.config.timeout_ms, upstream, "answer").await?;
    respond::with_body(&resp, &body)
}

/// The upstream response phase of a token answer: a successful one is read and checked (see
/// `token::answer_for_client`), and comes with the body the client gets; any other passes as
/// it is (a wrong password's 401).
pub async fn token_answer(
    resp: Response,
    oauth: bool,
    marked: bool,
    upstream: &str,
    ms: u32,
) -> Result<(Response, Option<String>), ProxyError> {
    if !resp.ok() {
        return Ok((resp, None));
    }
    let body = read_answer(resp.body(), MAX_TOKEN_ANSWER, ms, upstream, "token answer").await?;
    let bytes = body.to_vec();
    let checked = if marked {
        anonymous_answer(&bytes, oauth)
    } else {
        answer_for_client(&bytes, oauth)
    };
    match checked {
        Ok(Some(rewritten)) => Ok((respond::replace_body(&resp, &rewritten)?, Some(rewritten))),
        Ok(None) => Ok((
            respond::with_body(&resp, &body)?,
            String::from_utf8(bytes).ok(),
        )),
        Err(reason) => Err(ProxyError::BadAnswer {
            upstream: upstream.to_string(),
            reason,
        }),
    }
}
