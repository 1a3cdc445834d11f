//! The edge shell: the only code that touches the Workers runtime. It turns the core's
//! decisions into fetches and responses, and decides nothing of its own. Bodies stay
//! JavaScript streams: they never enter wasm.

mod body;
mod cache;
mod entry;
mod exchange;
mod fallback;
mod limit;
mod memo;
mod proxy_users;
mod respond;
mod rewrite;
mod search;
mod send;
mod stats;
mod token_endpoint;
mod upstream;
mod upstream_token;
mod vars;
