//! The access phase: whether a planned request may go on, decided before anything is asked of
//! an upstream or a cache.
//!
//! No policy exists yet: the proxy serves every client, as the original did. Proxy users, allow
//! and deny lists and read-only mode will decide here, on the plan's repository, reference and
//! access.

use crate::config::Config;
use crate::error::ProxyError;
use crate::plan::Plan;

pub fn check(_config: &Config, _plan: &Plan<'_>) -> Result<(), ProxyError> {
    Ok(())
}
