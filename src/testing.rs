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

/// `CUSTOM_DOMAIN = "example.com"` (its default routes) and a path-routing host,
/// `proxy.example.com`, with these vars besides.
pub fn path_routing(vars: &[(&'static str, &str)]) -> Config {
    let mut all = vec![
        ("CUSTOM_DOMAIN", "example.com"),
        ("PATH_ROUTING", "proxy.example.com"),
    ];
    all.extend_from_slice(vars);
    config(&all)
}
