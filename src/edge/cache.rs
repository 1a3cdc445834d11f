//! The cache phase: between the access phase and the upstream, a request the core calls
//! cacheable (cache.rs) is answered from the store once the upstream has confirmed it with a
//! `HEAD` of the client's own, and an upstream answer worth keeping is kept as it passes to
//! the client (store.js: the bytes never enter wasm).

use super::entry::Exchange;
use super::memo;
use super::respond::{self, has, header};
use super::upstream;
use super::vars;
use crate::cache::{
    byte_range, cacheable, confirmed_digest, confirms, keep as keepable, parse_tag_record,
    tag_record, unavailable, ByteRange, CacheMode, Cacheable, Keys, Kind, Place, Verdict,
    WHOLE_MAX_BYTES,
};
use crate::challenge;
use crate::error::ProxyError;
use crate::log::{iso8601, Outcome, StoreLog};
use crate::memo::{ACCEPTED_MS, CONFIRMED_MS};
use crate::plan::{Access, Forward, Reference};
use worker::js_sys::Promise;
use worker::wasm_bindgen::{self, closure::Closure, JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{self, Response};
use worker::{js_sys, Context};

#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/edge/store.js")]
extern "C" {
    #[wasm_bindgen(js_name = lookup)]
    fn lookup_js(key: &str, range: Option<String>) -> Promise;
    #[wasm_bindgen(js_name = fromBucket)]
    fn from_bucket(bucket: &JsValue, name: &str, offset: f64, length: f64, suffix: f64) -> Promise;
    fn record(ctx: &JsValue, key: &str, body: &str);
    fn recorded(key: &str) -> Promise;
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = keep)]
    fn keep_js(
        ctx: &JsValue,
        upstream: &Response,
        key: &str,
        digest: &str,
        length: f64,
        whole: f64,
        done: &JsValue,
        bucket: &JsValue,
    ) -> Option<Response>;
    fn served(hit: &Response, verdict: &str) -> Option<Response>;
}

/// What the cache phase found.
pub enum Lookup {
    /// The answer: from the store, or the upstream's refusal of the confirming `HEAD`.
    Answered(Response, Outcome),
    /// Not stored: the upstream's answer is to be kept as it passes.
    Miss(Keep),
    /// Nothing to do with the store.
    Bypass,
}

/// Where an upstream answer goes in the store.
pub struct Keep {
    kind: Kind,
    /// The digest asked for; `None` for a tag (the answer's `Docker-Content-Digest` is kept).
    digest: Option<String>,
    /// The tag's record, written once its manifest is kept.
    tag_record: Option<String>,
}

fn keys<'a>(origin: &'a str, f: &'a Forward<'_>) -> Keys<'a> {
    Keys {
        origin,
        upstream: &f.route.upstream.base,
    }
}

/// The cache lookup phase.
pub async fn lookup(x: &mut Exchange, f: &Forward<'_>) -> Result<Lookup, ProxyError> {
    let cacheable = cacheable(x.config.cache, f);
    if cacheable == Cacheable::Bypass {
        // most requests: nothing more is read or made for them here
        return Ok(Lookup::Bypass);
    }
    let origin = x.origin();
    let keys = keys(&origin, f);
    match cacheable {
        Cacheable::Bypass => Ok(Lookup::Bypass),
        Cacheable::VersionCheck => {
            if has(&x.req.headers(), "authorization") {
                return Ok(Lookup::Bypass);
            }
            let base = f.route.upstream.base.as_str();
            let Some(www) = memo::challenge(base) else {
                return Ok(Lookup::Bypass);
            };
            match challenge::for_client(Some(&www), f.route, &origin)? {
                Some(ours) => {
                    x.trace.cache = Some(Verdict::Hit);
                    Ok(Lookup::Answered(
                        respond::challenge(&ours)?,
                        Outcome::Challenge,
                    ))
                }
                None => Ok(Lookup::Bypass),
            }
        }
        Cacheable::Digest { kind, digest } => {
            let range = header(&x.req.headers(), "range");
            let miss = |x: &mut Exchange, digest| {
                x.trace.cache = Some(Verdict::Miss);
                Ok(Lookup::Miss(Keep {
                    kind,
                    digest: Some(digest),
                    tag_record: None,
                }))
            };
            let bucket = (kind == Kind::Blob).then(|| vars::bucket(&x.env)).flatten();
            let hit = match stored(&keys.content(kind, &digest), range.clone()).await {
                Some(hit) => Some(hit),
                // not in this data center's cache: in the bucket, if one is bound
                None => match &bucket {
                    Some(b) => in_bucket(b, &keys.object(kind, &digest), range.as_deref()).await,
                    None => None,
                },
            };
            let Some(hit) = hit else {
                return miss(x, digest);
            };
            let (base, repository) = (f.route.upstream.base.as_str(), repository_of(f));
            let auth = upstream_authorization(x, f);
            // the upstream's yes of a moment ago to this client for this repository, and to
            // this digest being there, stands; else it is asked
            let mut verdict = Verdict::Hit;
            if !memo::vouched(
                base,
                repository,
                auth.as_deref(),
                &digest,
                ACCEPTED_MS,
                CONFIRMED_MS,
            ) {
                match upstream::confirm(x, f).await {
                    Ok((_, status)) if confirms(status) => memo::vouch(
                        base,
                        repository,
                        auth.as_deref(),
                        Some(&digest),
                        stale_ms(x),
                    ),
                    // the upstream cannot answer: its yes of no longer ago than the stale age
                    // stands in for it, if the operator allows
                    answer
                        if cannot_answer(&answer)
                            && stale_vouched(x, base, repository, auth.as_deref(), &digest) =>
                    {
                        verdict = Verdict::Stale
                    }
                    Ok((head, status)) => {
                        discard(&hit);
                        if let Some(refused) = refused(x, f, &head, status)? {
                            return Ok(refused);
                        }
                        x.trace.cache = Some(Verdict::Bypass);
                        return Ok(Lookup::Bypass);
                    }
                    Err(e) => {
                        discard(&hit);
                        return Err(e);
                    }
                }
            }
            match served(&hit, verdict.as_str()) {
                Some(resp) => {
                    x.trace.cache = Some(verdict);
                    Ok(Lookup::Answered(resp, Outcome::Cached))
                }
                None => miss(x, digest),
            }
        }
        Cacheable::Tag { tag } => {
            let repository = repository_of(f);
            let tag_key = keys.tag(repository, &tag);
            let miss = |tag_key| Keep {
                kind: Kind::Manifest,
                digest: None,
                tag_record: Some(tag_key),
            };
            let Some(last) = JsFuture::from(recorded(&tag_key))
                .await
                .ok()
                .and_then(|v| v.as_string())
            else {
                // the tag's first pull here: a HEAD could only find nothing
                x.trace.cache = Some(Verdict::Miss);
                return Ok(Lookup::Miss(miss(tag_key)));
            };
            let base = f.route.upstream.base.as_str();
            let auth = upstream_authorization(x, f);
            let answer = upstream::confirm(x, f).await;
            if cannot_answer(&answer) {
                // the last digest seen for the tag, if the operator allows and it is recent
                if let Some((d, at)) = parse_tag_record(&last) {
                    let fresh = js_sys::Date::now() - at <= stale_ms(x);
                    if fresh && stale_vouched(x, base, repository, auth.as_deref(), d) {
                        let key = keys.content(Kind::Manifest, d);
                        if let Some(resp) = stored(&key, None)
                            .await
                            .as_ref()
                            .and_then(|hit| served(hit, Verdict::Stale.as_str()))
                        {
                            x.trace.cache = Some(Verdict::Stale);
                            return Ok(Lookup::Answered(resp, Outcome::Cached));
                        }
                    }
                }
            }
            let (head, status) = answer?;
            let digest = header(&head.headers(), "docker-content-digest");
            let digest = match confirmed_digest(digest.as_deref()) {
                Some(d) if status == 200 => {
                    memo::vouch(base, repository, auth.as_deref(), Some(d), stale_ms(x));
                    if x.config.stale_seconds.is_some() {
                        record(ctx(&x.ctx), &tag_key, &tag_record(d, js_sys::Date::now()));
                    }
                    d.to_string()
                }
                _ if status == 401 => match refused(x, f, &head, status)? {
                    Some(refused) => return Ok(refused),
                    None => {
                        x.trace.cache = Some(Verdict::Bypass);
                        return Ok(Lookup::Bypass);
                    }
                },
                _ => {
                    x.trace.cache = Some(Verdict::Bypass);
                    return Ok(Lookup::Bypass);
                }
            };
            match stored(&keys.content(Kind::Manifest, &digest), None)
                .await
                .as_ref()
                .and_then(|hit| served(hit, Verdict::Hit.as_str()))
            {
                Some(resp) => {
                    x.trace.cache = Some(Verdict::Hit);
                    Ok(Lookup::Answered(resp, Outcome::Cached))
                }
                None => {
                    x.trace.cache = Some(Verdict::Miss);
                    Ok(Lookup::Miss(miss(tag_key)))
                }
            }
        }
    }
}

/// A 401 to the confirming `HEAD` answered with the proxy's challenge, as the `GET`'s would
/// be (one upstream request less per client that asks before it has a token).
fn refused(
    x: &mut Exchange,
    f: &Forward<'_>,
    head: &Response,
    status: u16,
) -> Result<Option<Lookup>, ProxyError> {
    if status != 401 {
        return Ok(None);
    }
    let www = header(&head.headers(), "www-authenticate");
    let Some(ours) = challenge::for_client(www.as_deref(), f.route, &x.origin())? else {
        return Ok(None);
    };
    x.trace.cache = Some(Verdict::Bypass);
    Ok(Some(Lookup::Answered(
        respond::challenge(&ours)?,
        Outcome::Challenge,
    )))
}

/// The stale age in ms (0: stale answers are off).
fn stale_ms(x: &Exchange) -> f64 {
    x.config
        .stale_seconds
        .map_or(0.0, |s| f64::from(s) * 1000.0)
}

/// The confirming `HEAD` found the upstream unable to answer (unreachable, out of time, 5xx,
/// 429), as opposed to refusing the client.
fn cannot_answer(answer: &Result<(Response, u16), ProxyError>) -> bool {
    match answer {
        Ok((_, status)) => unavailable(*status),
        Err(e) => matches!(
            e,
            ProxyError::Unreachable { .. } | ProxyError::Timeout { .. }
        ),
    }
}

/// Whether a stale answer may stand in for the upstream's: the operator allows them, and the
/// upstream's last yes to these credentials for this repository, and to the digest being
/// there, is no older than the stale age.
fn stale_vouched(
    x: &Exchange,
    base: &str,
    repository: &str,
    authorization: Option<&str>,
    digest: &str,
) -> bool {
    let ms = stale_ms(x);
    ms > 0.0 && memo::vouched(base, repository, authorization, digest, ms, ms)
}

fn repository_of<'f>(f: &'f Forward<'_>) -> &'f str {
    f.repository.as_ref().map_or("", |r| r.name.as_str())
}

/// The client's `Authorization` as it goes upstream (none if the plan's credentials drop it):
/// whose yes the upstream gave.
fn upstream_authorization(x: &Exchange, f: &Forward<'_>) -> Option<String> {
    if f.credentials == crate::credentials::Credentials::Proxy {
        // the proxy's own identity upstream: its users' access was checked by users.rs
        return Some("proxy".into());
    }
    header(&x.req.headers(), "authorization").filter(|a| f.credentials.keeps_authorization(a))
}

/// A repository read the upstream answered with a yes, passed on as it was: the client is
/// accepted for the repository, and a digest it asked for (or a manifest's
/// `Docker-Content-Digest`) is there.
pub fn passed(x: &Exchange, f: &Forward<'_>, resp: &Response, status: u16) {
    if x.config.cache == CacheMode::Off || f.access != Access::Read || !confirms(status) {
        return;
    }
    let Some(repo) = &f.repository else { return };
    let digest = match &repo.reference {
        Some(Reference::Digest(d)) => Some(d.clone()),
        Some(Reference::Tag(_)) if status == 200 => {
            let d = header(&resp.headers(), "docker-content-digest");
            confirmed_digest(d.as_deref()).map(str::to_string)
        }
        _ => None,
    };
    let auth = upstream_authorization(x, f);
    memo::vouch(
        &f.route.upstream.base,
        &repo.name,
        auth.as_deref(),
        digest.as_deref(),
        stale_ms(x),
    );
}

/// The client response of a request the cache had to do with but did not answer or keep:
/// `X-Proxy-Cache: BYPASS` on it, as on the log line. Every other answer goes as it is.
pub fn labelled(x: &Exchange, resp: Response) -> Response {
    if x.trace.cache != Some(Verdict::Bypass) {
        return resp;
    }
    let relabelled = respond::copy_headers(&resp.headers()).and_then(|h| {
        let _ = h.set("x-proxy-cache", Verdict::Bypass.as_str());
        respond::rebuild(&resp, resp.status(), &h)
    });
    relabelled.unwrap_or(resp)
}

async fn stored(key: &str, range: Option<String>) -> Option<Response> {
    let v = JsFuture::from(lookup_js(key, range)).await.ok()?;
    v.is_object().then(|| v.unchecked_into())
}

async fn in_bucket(bucket: &JsValue, name: &str, range: Option<&str>) -> Option<Response> {
    let (offset, length, suffix) = match byte_range(range) {
        None => (f64::NAN, f64::NAN, f64::NAN),
        Some(ByteRange::From { offset, length }) => (
            offset as f64,
            length.map_or(f64::NAN, |l| l as f64),
            f64::NAN,
        ),
        Some(ByteRange::Suffix(n)) => (f64::NAN, f64::NAN, n as f64),
    };
    let v = JsFuture::from(from_bucket(bucket, name, offset, length, suffix))
        .await
        .ok()?;
    v.is_object().then(|| v.unchecked_into())
}

fn discard(resp: &Response) {
    if let Some(body) = resp.body() {
        let _ = body.cancel();
    }
}

/// The upstream's answer to a miss, kept as it passes to the client when it is whole and of
/// its digest; else passed on as it is (the reason in the log).
pub fn keep(
    x: &mut Exchange,
    f: &Forward<'_>,
    plan: Keep,
    resp: Response,
    status: u16,
) -> Response {
    let headers = resp.headers();
    let length = header(&headers, "content-length").and_then(|l| l.trim().parse::<u64>().ok());
    x.trace.upstream_length = length;
    let answer_digest = header(&headers, "docker-content-digest");
    let digest = match &plan.digest {
        Some(d) => Some(d.as_str()),
        None => confirmed_digest(answer_digest.as_deref()),
    };
    let bucket = match plan.kind {
        Kind::Blob => vars::bucket(&x.env),
        Kind::Manifest => None,
    };
    let from = bucket.as_ref().map(|_| x.config.bucket_min_bytes);
    let why_not = keepable(status, length, plan.kind, from).and_then(|place| {
        digest
            .map(|_| place)
            .ok_or("no sha256 Docker-Content-Digest to check it by")
    });
    let (Ok(place), Some(digest), Some(length)) = (why_not, digest, length) else {
        x.trace.cache = Some(Verdict::Bypass);
        if let Err(reason) = why_not {
            if status == 200 {
                store_line(x, digest, reason);
            }
        }
        return resp;
    };
    let auth = upstream_authorization(x, f);
    memo::vouch(
        &f.route.upstream.base,
        repository_of(f),
        auth.as_deref(),
        Some(digest),
        stale_ms(x),
    );
    let origin = x.origin();
    let keys = keys(&origin, f);
    let (key, bucket, place) = match (place, bucket) {
        (Place::Bucket, Some(bucket)) => (keys.object(plan.kind, digest), bucket, Place::Bucket),
        _ => (
            keys.content(plan.kind, digest),
            JsValue::UNDEFINED,
            Place::CacheApi,
        ),
    };
    let ctx: &JsValue = ctx(&x.ctx);
    if let Some(record_key) = &plan.tag_record {
        record(ctx, record_key, &tag_record(digest, js_sys::Date::now()));
    }
    let done = {
        let line = StoreLine {
            host: x.url.host_str().unwrap_or("").to_string(),
            path: x.url.path().to_string(),
            digest: digest.to_string(),
            place,
            level: x.config.log_level,
        };
        Closure::once_into_js(move |reason: JsValue| line.write(reason.as_string()))
    };
    match keep_js(
        ctx,
        &resp,
        &key,
        digest,
        length as f64,
        WHOLE_MAX_BYTES as f64,
        &done,
        &bucket,
    ) {
        Some(kept) => kept,
        None => {
            x.trace.cache = Some(Verdict::Bypass);
            resp
        }
    }
}

fn ctx(ctx: &Context) -> &JsValue {
    ctx.as_ref()
}

/// What became of a kept answer, known after the response: its own log line.
struct StoreLine {
    host: String,
    path: String,
    digest: String,
    place: Place,
    level: crate::log::LogLevel,
}

impl StoreLine {
    fn write(&self, reason: Option<String>) {
        let line = StoreLog {
            event: "store",
            time: &iso8601(js_sys::Date::now()),
            host: &self.host,
            path: &self.path,
            digest: Some(&self.digest),
            place: Some(self.place.name()),
            stored: reason.is_none(),
            reason: reason.as_deref(),
        };
        if self.level.wants_store() {
            web_sys::console::log_1(&JsValue::from_str(&line.to_json()));
        }
    }
}

/// An answer that was not kept, and why.
fn store_line(x: &Exchange, digest: Option<&str>, reason: &str) {
    let line = StoreLog {
        event: "store",
        time: &iso8601(js_sys::Date::now()),
        host: x.url.host_str().unwrap_or(""),
        path: x.url.path(),
        digest,
        place: None,
        stored: false,
        reason: Some(reason),
    };
    if x.config.log_level.wants_store() {
        web_sys::console::log_1(&JsValue::from_str(&line.to_json()));
    }
}
