//! The end-to-end suite, one test binary: a module per area, each test `#[ignore]`d because it
//! needs the harness (`tests/harness/up.sh`), which `tests/run.sh` starts before running
//! `cargo test --test e2e -- --ignored`. `common` is the shared plumbing (the harness's state,
//! curl, the real clients, Miniflare, the upstreams' logs).

mod common;

mod access;
mod cache;
mod clients;
mod deploy;
mod doctor;
mod failover;
mod faults;
mod input;
mod landing;
mod logs;
mod mirror;
mod protocol;
mod search;
mod stats;
mod wrangler;
