//! A container registry proxy for Cloudflare Workers.
//!
//! The pure core (configuration, routing, classification, credentials, challenges, scopes,
//! redirects, logs) is plain Rust and tested natively; `edge` turns its decisions into I/O on
//! the Workers runtime. See docs/architecture.md.

pub mod access;
pub mod accounts;
pub mod cache;
pub mod cache_settings;
pub mod challenge;
pub mod classify;
pub mod config;
pub mod credentials;
pub mod digest;
pub mod error;
pub mod failover;
pub mod landing;
pub mod log;
pub mod memo;
pub mod namespace;
pub mod plan;
pub mod policy;
pub mod redirect;
pub mod routes;
pub mod scope;
pub mod search;
pub mod stats;
#[cfg(test)]
mod testing;
pub mod token;
pub mod users;

#[cfg(target_arch = "wasm32")]
mod edge;
