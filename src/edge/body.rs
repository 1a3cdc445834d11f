//! Bodies read whole, never more than a limit: a client's token form, and upstream answers
//! that must reach the client with a length (see `plan::Forward::sized_answer`). The bytes
//! stay in JavaScript unless the core must parse them.

use super::send::timer;
use crate::error::ProxyError;
use worker::js_sys::{self, Promise, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{ReadableStream, ReadableStreamDefaultReader};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unread {
    /// More than the limit: reading stopped there.
    TooLarge,
    /// The stream failed before its end (a connection lost, a body cut short).
    Failed,
    /// The end did not come before the deadline (a stall mid-body).
    TimedOut,
}

/// Reads `stream` to its end, at most `limit` bytes, before `deadline` resolves (a promise
/// that resolves to `undefined`, see `upstream::timer`). `None` is an empty body.
pub async fn read_bounded(
    stream: Option<ReadableStream>,
    limit: usize,
    deadline: &Promise,
) -> Result<Uint8Array, Unread> {
    let Some(stream) = stream else {
        return Ok(Uint8Array::new_with_length(0));
    };
    let reader: ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut chunks: Vec<Uint8Array> = Vec::new();
    let mut total = 0usize;
    loop {
        let read = Promise::race(&js_sys::Array::of2(&reader.read(), deadline));
        let next = JsFuture::from(read).await.map_err(|_| Unread::Failed)?;
        if next.is_undefined() {
            let _ = reader.cancel();
            return Err(Unread::TimedOut);
        }
        let done =
            js_sys::Reflect::get(&next, &JsValue::from_str("done")).map_err(|_| Unread::Failed)?;
        if done.is_truthy() {
            break;
        }
        let value =
            js_sys::Reflect::get(&next, &JsValue::from_str("value")).map_err(|_| Unread::Failed)?;
        let chunk: Uint8Array = value.dyn_into().map_err(|_| Unread::Failed)?;
        total += chunk.length() as usize;
        if total > limit {
            // stop the sender: nothing more is read
            let _ = reader.cancel();
            return Err(Unread::TooLarge);
        }
        chunks.push(chunk);
    }
    if chunks.len() == 1 {
        return Ok(chunks.remove(0));
    }
    let whole = Uint8Array::new_with_length(total as u32);
    let mut at = 0u32;
    for chunk in &chunks {
        whole.set(chunk, at);
        at += chunk.length();
    }
    Ok(whole)
}

/// An upstream answer read whole (`what`: what errors call it), at most `limit` bytes within
/// `ms`: one cut short, larger or stalled is the upstream's failure.
pub async fn read_answer(
    stream: Option<ReadableStream>,
    limit: usize,
    ms: u32,
    upstream: &str,
    what: &str,
) -> Result<Uint8Array, ProxyError> {
    read_bounded(stream, limit, &timer(ms))
        .await
        .map_err(|e| unread(upstream, what, limit, ms, e))
}

fn unread(upstream: &str, what: &str, limit: usize, ms: u32, e: Unread) -> ProxyError {
    let upstream = upstream.to_string();
    let reason = match e {
        Unread::TimedOut => return ProxyError::Timeout { upstream, ms },
        Unread::Failed => format!("{what} cut short"),
        Unread::TooLarge => format!("{what} larger than {limit} bytes without a length"),
    };
    ProxyError::BadAnswer { upstream, reason }
}
