//! What the core's unit tests share: a configuration of a few vars, each test module with a
//! route table of its own.

use crate::config::Config;

/// The configuration of these vars, every other one unset; a bad one fails the test.
pub fn config(vars: &[(&'static str, &str)]) -> Config {
    Config::from_vars(|name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    })
    .unwrap_or_else(|e| panic!("{vars:?}: {e}"))
}

/// The same, kept for the test's whole life (plans borrow from their configuration).
pub fn leaked(vars: &[(&'static str, &str)]) -> &'static Config {
    Box::leak(Box::new(config(vars)))
}
