//! The cache phase: between the access phase and the upstream, a request the core calls
//! cacheable (cache.rs) is answered from the store once the upstream has confirmed it with a
//! `HEAD` of the client's own, and an upstream answer worth keeping is kept after it (store.js:
//! the bytes never enter wasm). One function per kind of request; the core decides each step.

use super::exchange::Exchange;
use super::memo;
use super::respond::{self, has, header, new_headers, set};
use super::send;
use super::upstream;
use super::vars;
use crate::cache::{
    byte_range, cacheable, confirmed_digest, confirms, for_digest, for_tag, keep as keepable,
    keep_from_fallback, public_record, public_stands, served_length, stale_ms, stale_stands,
    stale_tag, tag_record, yes_of, ByteRange, Cacheable, Fill, ForTag, Heard, InFlight, Keys, Kind,
    NotKept, Place, Then, KEPT_LENGTH,
};
use crate::cache_settings::CacheMode;
use crate::challenge;
use crate::classify::Access;
use crate::error::ProxyError;
use crate::log::{iso8601, LogLevel, Outcome, StoreLog, Verdict};
use crate::memo::{ACCEPTED_MS, CONFIRMED_MS};
use crate::plan::{Forward, Reference};
use std::cell::RefCell;
use worker::js_sys;
use worker::js_sys::{Promise, Uint8Array};
use worker::wasm_bindgen::{self, closure::Closure, JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{self, Headers, Response};

#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/edge/store.js")]
extern "C" {
    #[wasm_bindgen(js_name = lookup)]
    fn lookup_js(key: &str, range: Option<String>) -> Promise;
    #[wasm_bindgen(js_name = fromBucket)]
    fn from_bucket(bucket: &JsValue, name: &str, offset: f64, length: f64, suffix: f64) -> Promise;
    #[wasm_bindgen(js_name = served)]
    fn served_js(hit: &Response, verdict: &str, length: f64) -> Response;
    fn record(ctx: &JsValue, key: &str, body: &str);
    fn recorded(key: &str) -> Promise;
    #[wasm_bindgen(js_name = keepBytes)]
    fn keep_bytes(
        ctx: &JsValue,
        upstream: &Response,
        key: &str,
        digest: &str,
        bytes: &Uint8Array,
        done: &JsValue,
    );
    #[wasm_bindgen(js_name = keepTee)]
    fn keep_tee(
        ctx: &JsValue,
        upstream: &Response,
        key: &str,
        digest: &str,
        length: f64,
        done: &JsValue,
    ) -> Option<Response>;
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = keepRefetched)]
    fn keep_refetched(
        ctx: &JsValue,
        start: &JsValue,
        upstream: &Response,
        key: &str,
        digest: &str,
        length: f64,
        bucket: &JsValue,
        after: bool,
        done: &JsValue,
    ) -> Option<Response>;
}

thread_local! {
    /// What this isolate is keeping now (cache.rs `InFlight`).
    static IN_FLIGHT: RefCell<InFlight> = RefCell::new(InFlight::default());
}

/// What the cache phase found.
pub enum Lookup {
    /// The answer: from the store, or the upstream's refusal of the confirming `HEAD`.
    Answered(Response, Outcome),
    /// Not stored: the upstream's answer is to be kept after it passes.
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

/// The cache lookup phase. `proxy`: the `Authorization` a proxy user's confirming `HEAD`
/// goes with (the proxy's own upstream token).
pub async fn lookup(
    x: &mut Exchange,
    f: &Forward<'_>,
    proxy: Option<&str>,
) -> Result<Lookup, ProxyError> {
    match cacheable(x.config.cache, f) {
        // most requests: nothing more is read or made for them here
        Cacheable::Bypass => Ok(Lookup::Bypass),
        Cacheable::VersionCheck => version_check(x, f),
        Cacheable::Digest { kind, digest } => by_digest(x, f, proxy, kind, digest).await,
        Cacheable::Tag { tag } => by_tag(x, f, proxy, &tag).await,
    }
}

/// An anonymous `/v2/`: the upstream's challenge to anonymous clients, if remembered.
fn version_check(x: &mut Exchange, f: &Forward<'_>) -> Result<Lookup, ProxyError> {
    if has(&x.req.headers(), "authorization") {
        return Ok(Lookup::Bypass);
    }
    let Some(www) = memo::challenge(&f.route.upstream.base) else {
        return Ok(Lookup::Bypass);
    };
    let Some(ours) = challenge::for_client(Some(&www), f.route, &x.origin())? else {
        return Ok(Lookup::Bypass);
    };
    x.trace.cache = Some(Verdict::Hit);
    Ok(Lookup::Answered(
        respond::challenge(&ours)?,
        Outcome::Challenge,
    ))
}

/// A blob or manifest by digest: from the store (or the bucket) once the upstream says yes to
/// this client for it, or recently did.
async fn by_digest(
    x: &mut Exchange,
    f: &Forward<'_>,
    proxy: Option<&str>,
    kind: Kind,
    digest: String,
) -> Result<Lookup, ProxyError> {
    let range = header(&x.req.headers(), "range");
    let origin = x.origin();
    let keys = keys(&origin, f);
    let hit = match stored(&keys.content(kind, &digest), range.clone()).await {
        Some(hit) => Some(hit),
        // not in this data center's cache: in the bucket, if one is bound
        None => match (kind, vars::bucket(&x.env)) {
            (Kind::Blob, Some(b)) => {
                in_bucket(&b, &keys.object(kind, &digest), range.as_deref()).await
            }
            _ => None,
        },
    };
    let Some(hit) = hit else {
        return Ok(miss(x, kind, Some(digest), None));
    };
    let asker = Asker::of(x, f);
    // the upstream's yes of a moment ago to this client for this repository, and to this
    // digest being there, stands; else it is asked
    let (then, answer) = if asker.vouched(&digest, ACCEPTED_MS, CONFIRMED_MS) {
        (Then::Serve(Verdict::Hit), None)
    } else {
        let answer = upstream::confirm(x, f, proxy).await;
        let stale = stale_ms(x.config.stale_seconds);
        let mut stands = stale_stands(stale, |ms| asker.vouched(&digest, ms, ms));
        if !stands && heard(&answer).cannot_answer() {
            stands = anyone_may_read(x, f, &keys, stale).await;
        }
        let then = for_digest(heard(&answer), stands);
        if then == Then::Serve(Verdict::Hit) {
            asker.vouch(Some(&digest), stale);
        }
        (then, Some(answer))
    };
    if let Then::Serve(verdict) = then {
        return Ok(match served(&hit, verdict) {
            Some(resp) => {
                x.trace.cache = Some(verdict);
                Lookup::Answered(resp, Outcome::Cached)
            }
            None => miss(x, kind, Some(digest), None),
        });
    }
    discard(&hit);
    refused(x, f, then, answer)
}

/// A manifest by tag: if the tag was pulled here before, a `HEAD` names its digest and the
/// store answers by digest; the first time, the `GET` goes upstream.
async fn by_tag(
    x: &mut Exchange,
    f: &Forward<'_>,
    proxy: Option<&str>,
    tag: &str,
) -> Result<Lookup, ProxyError> {
    let origin = x.origin();
    let keys = keys(&origin, f);
    let tag_key = keys.tag(repository_of(f), tag);
    let Some(last) = JsFuture::from(recorded(&tag_key))
        .await
        .ok()
        .and_then(|v| v.as_string())
    else {
        // the tag's first pull here: a HEAD could only find nothing
        return Ok(miss(x, Kind::Manifest, None, Some(tag_key)));
    };
    let asker = Asker::of(x, f);
    let answer = upstream::confirm(x, f, proxy).await;
    let heard = heard(&answer);
    let named = match &answer {
        Ok((head, _)) => {
            let headers = head.headers();
            // the tag's HEAD says what is left of the upstream's rate limit, as a GET would
            x.trace.rate_limit(&headers);
            header(&headers, "docker-content-digest")
        }
        Err(_) => None,
    };
    let named = confirmed_digest(named.as_deref());
    let stale = stale_ms(x.config.stale_seconds);
    let now = js_sys::Date::now();
    let mut stale_digest = heard
        .cannot_answer()
        .then(|| stale_tag(&last, now, stale, |d, ms| asker.vouched(d, ms, ms)))
        .flatten();
    if stale_digest.is_none() && heard.cannot_answer() && anyone_may_read(x, f, &keys, stale).await
    {
        stale_digest = stale_tag(&last, now, stale, |_, _| true);
    }
    let mut then = for_tag(heard, named, stale_digest);
    if let ForTag::Stale(d) = then {
        // the last digest seen for the tag, if its manifest is still kept
        if let Some(resp) = stored_manifest(&keys, d, Verdict::Stale).await {
            x.trace.cache = Some(Verdict::Stale);
            return Ok(Lookup::Answered(resp, Outcome::Cached));
        }
        then = for_tag(heard, named, None);
    }
    let digest = match then {
        ForTag::ByDigest(d) => d,
        ForTag::Challenge => return refused(x, f, Then::Challenge, Some(answer)),
        ForTag::Fail => return refused(x, f, Then::Fail, Some(answer)),
        ForTag::Upstream | ForTag::Stale(_) => return refused(x, f, Then::Upstream, Some(answer)),
    };
    asker.vouch(Some(digest), stale);
    if stale > 0.0 {
        record(x.ctx_js(), &tag_key, &tag_record(digest, now));
        record_public(x, f, &keys, now);
    }
    Ok(match stored_manifest(&keys, digest, Verdict::Hit).await {
        Some(resp) => {
            x.trace.cache = Some(Verdict::Hit);
            Lookup::Answered(resp, Outcome::Cached)
        }
        None => miss(x, Kind::Manifest, None, Some(tag_key)),
    })
}

/// Whether the upstream's yes to anonymous clients for this repository, recorded in the store
/// by any isolate (`public_record`), lets a stale answer stand for this anonymous client.
async fn anyone_may_read(x: &Exchange, f: &Forward<'_>, keys: &Keys<'_>, stale: f64) -> bool {
    if stale <= 0.0 || !upstream::anonymous(x, f) {
        return false;
    }
    let key = keys.public(repository_of(f));
    let record = JsFuture::from(recorded(&key))
        .await
        .ok()
        .and_then(|v| v.as_string());
    public_stands(record.as_deref(), js_sys::Date::now(), stale)
}

/// The record that anyone may read the repository, when the upstream (not a fallback) just
/// said yes to an anonymous client for it.
fn record_public(x: &Exchange, f: &Forward<'_>, keys: &Keys<'_>, now: f64) {
    if x.trace.fallback.is_none() && upstream::proven_anonymous(x, f) {
        let key = keys.public(repository_of(f));
        record(x.ctx_js(), &key, &public_record(now));
    }
}

fn miss(
    x: &mut Exchange,
    kind: Kind,
    digest: Option<String>,
    tag_record: Option<String>,
) -> Lookup {
    x.trace.cache = Some(Verdict::Miss);
    Lookup::Miss(Keep {
        kind,
        digest,
        tag_record,
    })
}

/// What the confirming `HEAD` came to.
fn heard(answer: &Result<(Response, u16), ProxyError>) -> Heard {
    match answer {
        Ok((_, status)) => Heard::Status(*status),
        Err(ProxyError::Unreachable { .. } | ProxyError::Timeout { .. }) => Heard::Unavailable,
        Err(_) => Heard::Failed,
    }
}

/// A kept answer the upstream did not confirm: its 401 with the proxy's challenge, its
/// failure as the proxy's error, else the request goes upstream for the upstream's own answer.
fn refused(
    x: &mut Exchange,
    f: &Forward<'_>,
    then: Then,
    answer: Option<Result<(Response, u16), ProxyError>>,
) -> Result<Lookup, ProxyError> {
    x.trace.cache = Some(Verdict::Bypass);
    match (then, answer) {
        (Then::Fail, Some(Err(e))) => Err(e),
        (Then::Challenge, Some(Ok((head, _)))) => {
            let www = header(&head.headers(), "www-authenticate");
            Ok(
                match challenge::for_client(www.as_deref(), f.route, &x.origin())? {
                    Some(ours) => Lookup::Answered(respond::challenge(&ours)?, Outcome::Challenge),
                    None => Lookup::Bypass,
                },
            )
        }
        _ => Ok(Lookup::Bypass),
    }
}

/// The upstream's yes a request stands on: to whom (its credentials as they went upstream)
/// for which repository.
struct Asker<'f> {
    base: &'f str,
    repository: &'f str,
    authorization: Option<String>,
}

impl<'f> Asker<'f> {
    fn of(x: &Exchange, f: &'f Forward<'_>) -> Self {
        let authorization = match f.credentials {
            // nothing of the client's goes: not even read
            crate::credentials::Credentials::Proxy => None,
            _ => header(&x.req.headers(), "authorization"),
        };
        Asker {
            base: &f.route.upstream.base,
            repository: repository_of(f),
            authorization: yes_of(f.credentials, authorization.as_deref()).map(str::to_string),
        }
    }

    fn vouch(&self, digest: Option<&str>, stale_ms: f64) {
        memo::vouch(
            self.base,
            self.repository,
            self.authorization.as_deref(),
            digest,
            stale_ms,
        );
    }

    fn vouched(&self, digest: &str, accepted_ms: f64, confirmed_ms: f64) -> bool {
        memo::vouched(
            self.base,
            self.repository,
            self.authorization.as_deref(),
            digest,
            accepted_ms,
            confirmed_ms,
        )
    }
}

fn keys<'a>(origin: &'a str, f: &'a Forward<'_>) -> Keys<'a> {
    Keys {
        origin,
        upstream: &f.route.upstream.base,
    }
}

fn repository_of<'f>(f: &'f Forward<'_>) -> &'f str {
    f.repository.as_ref().map_or("", |r| r.name.as_str())
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
    Asker::of(x, f).vouch(digest.as_deref(), stale_ms(x.config.stale_seconds));
}

/// The client response of a request the cache had to do with but did not answer or keep:
/// `X-Proxy-Cache: BYPASS` on it, as on the log line. Every other answer goes as it is.
pub fn labelled(verdict: Option<Verdict>, resp: Response) -> Response {
    if verdict != Some(Verdict::Bypass) {
        return resp;
    }
    label(resp, Verdict::Bypass)
}

/// The same answer with `X-Proxy-Cache: <verdict>` (its body untouched).
fn label(resp: Response, verdict: Verdict) -> Response {
    let relabelled = respond::copy_headers(&resp.headers()).and_then(|h| {
        set(&h, "x-proxy-cache", verdict.as_str())?;
        respond::rebuild(&resp, resp.status(), &h)
    });
    relabelled.unwrap_or(resp)
}

async fn stored(key: &str, range: Option<String>) -> Option<Response> {
    let v = JsFuture::from(lookup_js(key, range)).await.ok()?;
    v.is_object().then(|| v.unchecked_into())
}

/// A kept manifest, served as `verdict`.
async fn stored_manifest(keys: &Keys<'_>, digest: &str, verdict: Verdict) -> Option<Response> {
    let hit = stored(&keys.content(Kind::Manifest, digest), None).await?;
    served(&hit, verdict)
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

/// The client's copy of a kept answer (`X-Proxy-Cache: <verdict>`), with the length it was
/// kept with (cache.rs `served_length`), or `None` if it has none to trust. A range the kept
/// bytes do not have is the store's own answer (416).
fn served(hit: &Response, verdict: Verdict) -> Option<Response> {
    let status = hit.status();
    let length = if status == 200 || status == 206 {
        let headers = hit.headers();
        let kept = header(&headers, KEPT_LENGTH);
        let range = header(&headers, "content-range");
        match served_length(kept.as_deref(), range.as_deref()) {
            Some(n) => n as f64,
            None => {
                discard(hit);
                return None;
            }
        }
    } else {
        f64::NAN
    };
    Some(served_js(hit, verdict.as_str(), length))
}

fn discard(resp: &Response) {
    if let Some(body) = resp.body() {
        let _ = body.cancel();
    }
}

/// Where the upstream's answer to a miss came from (a blob's second `GET` goes there).
pub struct Source<'a> {
    pub status: u16,
    /// The fallback upstream that gave it, if one did, and a manifest's bytes it was read
    /// into (edge/fallback.rs).
    pub fallback: Option<&'static str>,
    pub bytes: Option<&'a Uint8Array>,
    /// The URL after the upstream's redirects (`None`: the forward's own).
    pub from: Option<&'a str>,
    /// The headers that went there.
    pub headers: &'a Headers,
}

/// The upstream's answer to a miss, passed to the client while it is kept when it is whole
/// and of its digest (cache.rs `keep` decides where and how); else passed on as it is (the
/// reason in the log).
pub fn keep(
    x: &mut Exchange,
    f: &Forward<'_>,
    plan: Keep,
    resp: Response,
    reply: Source<'_>,
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
    let how = keepable(
        reply.status,
        length,
        plan.kind,
        x.config.cache_limits,
        bucket.is_some(),
    )
    .and_then(|how| digest.map(|_| how).ok_or(NotKept::NoDigest));
    let how = match reply.fallback {
        Some(_) => keep_from_fallback(how),
        None => how,
    };
    let (how, digest, length) = match (how, digest, length) {
        (Ok(how), Some(d), Some(n)) => (how, d, n),
        (how, digest, _) => {
            x.trace.cache = Some(Verdict::Bypass);
            if let (Err(why), 200) = (how, reply.status) {
                store_line(x, digest, None, Some(&why.to_string()));
            }
            return resp;
        }
    };
    Asker::of(x, f).vouch(Some(digest), stale_ms(x.config.stale_seconds));
    let origin = x.origin();
    let keys = keys(&origin, f);
    let key = match how.place {
        Place::Bucket => keys.object(plan.kind, digest),
        Place::CacheApi => keys.content(plan.kind, digest),
    };
    // a blob's second GET goes with the Authorization that went where its answer came from
    let refetch = match how.fill {
        Fill::Tee => None,
        Fill::Refetch | Fill::RefetchAfter => match refetch_headers(reply.headers) {
            Ok(headers) => Some(headers),
            Err(e) => {
                x.trace.cache = Some(Verdict::Bypass);
                store_line(x, Some(digest), Some(how.place), Some(&e.to_string()));
                return resp;
            }
        },
    };
    let now = js_sys::Date::now();
    if let Err(why) = IN_FLIGHT.with(|k| k.borrow_mut().admit(&key, how, length, now)) {
        x.trace.cache = Some(Verdict::Bypass);
        store_line(x, Some(digest), Some(how.place), Some(&why.to_string()));
        return resp;
    }
    let ctx = x.ctx_js();
    if let Some(record_key) = &plan.tag_record {
        record(ctx, record_key, &tag_record(digest, now));
        if x.config.stale_answers() {
            record_public(x, f, &keys, now);
        }
    }
    let done = done(x, &key, digest, how.place);
    let Some(headers) = refetch else {
        if let Some(bytes) = reply.bytes {
            keep_bytes(ctx, &resp, &key, digest, bytes, &done);
            return label(resp, Verdict::Miss);
        }
        return match keep_tee(ctx, &resp, &key, digest, length as f64, &done) {
            Some(kept) => kept,
            // it cannot be kept now (done said why): the upstream's answer as it is
            None => {
                x.trace.cache = Some(Verdict::Bypass);
                resp
            }
        };
    };
    // to where the client's answer came from, after the registry's redirects, so that the
    // registry is not asked twice
    let url = reply.from.unwrap_or(&f.url).to_string();
    let ms = x.config.timeout_ms;
    let start = Closure::once_into_js(move || -> JsValue {
        send::fetch(&url, "GET", &headers, None, ms).into()
    });
    let bucket = match how.place {
        Place::Bucket => bucket.unwrap_or(JsValue::UNDEFINED),
        Place::CacheApi => JsValue::UNDEFINED,
    };
    let after = how.fill == Fill::RefetchAfter;
    let watched = keep_refetched(
        ctx,
        &start,
        &resp,
        &key,
        digest,
        length as f64,
        &bucket,
        after,
        &done,
    );
    // the client's copy watched for its end, or the upstream's body untouched
    watched.unwrap_or_else(|| label(resp, Verdict::Miss))
}

/// The headers of a blob's second `GET`: the `Authorization` that went where the client's
/// answer came from, and nothing else of the client's.
fn refetch_headers(sent: &Headers) -> Result<Headers, ProxyError> {
    let headers = new_headers()?;
    if let Some(auth) = header(sent, "authorization") {
        set(&headers, "authorization", &auth)?;
    }
    Ok(headers)
}

/// What store.js calls once a keep is over: `null` when kept, else why not. It frees the
/// isolate's room for it and writes the store line.
fn done(x: &Exchange, key: &str, digest: &str, place: Place) -> JsValue {
    let line = StoreLine {
        host: x.url.host_str().unwrap_or("").to_string(),
        path: x.url.path().to_string(),
        digest: digest.to_string(),
        place,
        level: x.config.log_level,
        fallback: x.trace.fallback,
    };
    let key = key.to_string();
    Closure::once_into_js(move |reason: JsValue| {
        IN_FLIGHT.with(|k| k.borrow_mut().release(&key));
        line.write(reason.as_string().as_deref());
    })
}

/// What became of a kept answer, known after the response: its own log line.
struct StoreLine {
    host: String,
    path: String,
    digest: String,
    place: Place,
    level: LogLevel,
    fallback: Option<&'static str>,
}

impl StoreLine {
    fn write(&self, reason: Option<&str>) {
        write_store_line(
            self.level,
            &self.host,
            &self.path,
            Some(&self.digest),
            Some(self.place),
            reason,
            self.fallback,
        );
    }
}

/// An answer that was not kept, and why.
fn store_line(x: &Exchange, digest: Option<&str>, place: Option<Place>, reason: Option<&str>) {
    let host = x.url.host_str().unwrap_or("");
    write_store_line(
        x.config.log_level,
        host,
        x.url.path(),
        digest,
        place,
        reason,
        x.trace.fallback,
    );
}

fn write_store_line(
    level: LogLevel,
    host: &str,
    path: &str,
    digest: Option<&str>,
    place: Option<Place>,
    reason: Option<&str>,
    fallback: Option<&str>,
) {
    if !level.wants_store() {
        return;
    }
    let line = StoreLog {
        event: "store",
        time: &iso8601(js_sys::Date::now()),
        host,
        path,
        digest,
        place: place.map(Place::name),
        stored: reason.is_none(),
        reason,
        fallback,
    };
    web_sys::console::log_1(&JsValue::from_str(&line.to_json()));
}
