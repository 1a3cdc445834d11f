//! The upstream request phase: a forward's request as it goes upstream (the client's headers
//! less what its credentials keep from this upstream, the proxy's own token for its users),
//! and the cache phase's confirming `HEAD`. Sending is send.rs'.

use super::exchange::Exchange;
use super::memo;
use super::respond::{copy_headers, header, new_headers, set};
use super::send::{reply, Outgoing, Reply};
use crate::credentials::{Credentials, Presented, FOR_THE_PROXY};
use crate::error::ProxyError;
use crate::plan::Forward;
use worker::wasm_bindgen::JsValue;
use worker::web_sys::{Headers, Response};

/// The upstream request phase of a forward: the answer, its status, and where it came from.
/// `proxy`: the `Authorization` of the proxy's own upstream token, for its users' forwards.
pub async fn forward(
    x: &mut Exchange,
    f: &Forward<'_>,
    proxy: Option<&str>,
) -> Result<Reply, ProxyError> {
    let headers = headers_for(x, f, proxy)?;
    let body = if f.body {
        x.req.body().map(JsValue::from)
    } else {
        None
    };
    let base = f.route.upstream.base.as_str();
    reply(
        &mut x.trace,
        Outgoing {
            url: &f.url,
            method: &f.method,
            headers,
            body,
            follow: f.follow_redirects,
            home: base,
            upstream: base,
            timeout_ms: x.config.timeout_ms,
        },
    )
    .await
}

/// The cache phase's question: a `HEAD` of the forward's URL with the client's own headers,
/// redirects not followed (a registry redirects a blob to storage only once it has checked
/// the client and the repository).
pub async fn confirm(
    x: &mut Exchange,
    f: &Forward<'_>,
    proxy: Option<&str>,
) -> Result<(Response, u16), ProxyError> {
    let headers = headers_for(x, f, proxy)?;
    let base = f.route.upstream.base.as_str();
    let r = reply(
        &mut x.trace,
        Outgoing {
            url: &f.url,
            method: "HEAD",
            headers,
            body: None,
            follow: false,
            home: base,
            upstream: base,
            timeout_ms: x.config.timeout_ms,
        },
    )
    .await?;
    Ok((r.resp, r.status))
}

/// Whether the client comes with no credentials of its own for this upstream (a fallback may
/// then be asked for it, failover.rs).
pub fn anonymous(x: &Exchange, f: &Forward<'_>) -> bool {
    let (auth, account) = presented(x, f);
    f.credentials
        .anonymous(&Presented::of(auth.as_deref()), account)
}

/// Whether what goes upstream for this client carries no one's credentials, as far as this
/// isolate knows (credentials.rs `proven_anonymous`).
pub fn proven_anonymous(x: &Exchange, f: &Forward<'_>) -> bool {
    let (auth, account) = presented(x, f);
    f.credentials.proven_anonymous(
        &Presented::of(auth.as_deref()),
        account,
        memo::issued_anonymously,
    )
}

/// The client's `Authorization`, and whether a proxy user's forward goes with the proxy's
/// account at this upstream.
fn presented(x: &Exchange, f: &Forward<'_>) -> (Option<String>, bool) {
    let account = f.credentials == Credentials::Proxy
        && x.config.accounts.of(&f.route.upstream.base).is_some();
    (header(&x.req.headers(), "authorization"), account)
}

/// The client's headers (or only its `Authorization`), less what `f.credentials` keeps from
/// this upstream, the proxy's mark on an anonymous token, and what is for the proxy's own host;
/// for a proxy user's forward, the proxy's own `Authorization` (`proxy`) instead of the
/// client's. The client's own `Headers` go as they are when nothing is taken out or put in.
fn headers_for(x: &Exchange, f: &Forward<'_>, proxy: Option<&str>) -> Result<Headers, ProxyError> {
    let client = x.req.headers();
    let auth = header(&client, "authorization");
    let presented = Presented::of(auth.as_deref());
    let upstream_auth = f.credentials.upstream_authorization(&presented);
    // the client's own value goes as it came
    let as_it_came = upstream_auth.is_some() == auth.is_some()
        && matches!(presented, Presented::Own(_) | Presented::Nothing);
    let headers = if !f.client_headers {
        let headers = new_headers()?;
        if let Some(auth) = upstream_auth {
            set(&headers, "authorization", auth)?;
        }
        headers
    } else {
        let for_the_proxy = FOR_THE_PROXY.map(|name| client.has(name).unwrap_or(false));
        if as_it_came && !for_the_proxy.contains(&true) && proxy.is_none() {
            return Ok(client);
        }
        let headers = copy_headers(&client)?;
        match upstream_auth {
            Some(auth) if !as_it_came => set(&headers, "authorization", auth)?,
            Some(_) => {}
            None => {
                let _ = headers.delete("authorization");
            }
        }
        for (name, present) in FOR_THE_PROXY.iter().zip(for_the_proxy) {
            if present {
                let _ = headers.delete(name);
            }
        }
        headers
    };
    if let Some(auth) = proxy {
        set(&headers, "authorization", auth)?;
    }
    Ok(headers)
}
