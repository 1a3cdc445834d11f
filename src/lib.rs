//! A container registry proxy for Cloudflare Workers.
//!
//! The pure core (configuration, routing, classification, challenges, scopes, redirects) is
//! plain Rust and tested natively; `shell` turns its decisions into fetches.

pub mod challenge;
pub mod classify;
pub mod config;
pub mod error;
pub mod landing;
pub mod log;
pub mod namespace;
pub mod plan;
pub mod redirect;
pub mod routes;
pub mod scope;
pub mod token;

#[cfg(target_arch = "wasm32")]
mod shell;
