//! Usage at a glance: the Workers Analytics Engine data point each request writes when a
//! dataset is bound as `STATS`, and the `/_stats` page's settings and door (`STATS_TOKEN`, the
//! account and a read token for Analytics Engine's SQL API, all secrets). The page itself is
//! drawn by edge/stats.js from the SQL API's rows.

use crate::classify::Resource;
use crate::credentials::scheme;
use crate::digest::same;
use crate::error::ProxyError;
use crate::log::{Outcome, Verdict};
use std::fmt;

/// The page's path. Without `STATS_TOKEN` it is an unknown path like any other.
pub const STATS_PATH: &str = "/_stats";

/// The shortest `STATS_TOKEN` accepted.
const MIN_TOKEN: usize = 16;

/// The dataset the page reads by default (`STATS_DATASET`): the one wrangler.toml binds.
const DEFAULT_DATASET: &str = "registry_proxy";

#[derive(Clone, PartialEq, Eq)]
pub struct StatsPage {
    token: String,
    /// The Analytics Engine read token, for the SQL API only.
    pub api_token: String,
    /// The SQL API's URL: Cloudflare's for the account, or `STATS_SQL_URL`.
    pub sql_url: String,
    pub dataset: String,
}

/// Never a secret, whoever prints the configuration.
impl fmt::Debug for StatsPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatsPage")
            .field("sql_url", &self.sql_url)
            .field("dataset", &self.dataset)
            .finish_non_exhaustive()
    }
}

impl StatsPage {
    /// `STATS_TOKEN`, `STATS_ACCOUNT_ID` and `STATS_API_TOKEN` together turn the page on; one
    /// without the others is an error naming the one missing. No error quotes a secret.
    pub fn from_vars(
        var: impl Fn(&'static str) -> Option<String>,
    ) -> Result<Option<StatsPage>, ProxyError> {
        let names = ["STATS_TOKEN", "STATS_ACCOUNT_ID", "STATS_API_TOKEN"];
        let [token, account, api_token] = names.map(|n| var(n).map(|v| v.trim().to_string()));
        if token.is_none() && account.is_none() && api_token.is_none() {
            return Ok(None);
        }
        let missing = |name: &'static str| {
            ProxyError::Config {
            var: name,
            reason: "must be set with the other STATS_ secrets (STATS_TOKEN, STATS_ACCOUNT_ID, STATS_API_TOKEN)".into(),
        }
        };
        let token = token.ok_or_else(|| missing(names[0]))?;
        let account = account.ok_or_else(|| missing(names[1]))?;
        let api_token = api_token.ok_or_else(|| missing(names[2]))?;
        if token.len() < MIN_TOKEN {
            return Err(ProxyError::Config {
                var: "STATS_TOKEN",
                reason: format!("must be at least {MIN_TOKEN} characters"),
            });
        }
        if account.is_empty() || !account.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ProxyError::Config {
                var: "STATS_ACCOUNT_ID",
                reason: "is not an account id (letters and digits)".into(),
            });
        }
        let sql_url = match var("STATS_SQL_URL") {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => url,
            Some(_) => {
                return Err(ProxyError::Config {
                    var: "STATS_SQL_URL",
                    reason: "is not an http(s) URL".into(),
                })
            }
            None => format!(
                "https://api.cloudflare.com/client/v4/accounts/{account}/analytics_engine/sql"
            ),
        };
        let dataset = var("STATS_DATASET").unwrap_or_else(|| DEFAULT_DATASET.into());
        if !dataset
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(ProxyError::Config {
                var: "STATS_DATASET",
                reason: "is not a dataset name (letters, digits, _)".into(),
            });
        }
        Ok(Some(StatsPage {
            token,
            api_token,
            sql_url,
            dataset,
        }))
    }

    /// Whether the token the client gave (`?token=`, or a Bearer `Authorization`) is the page's,
    /// compared in constant time.
    pub fn admits(&self, given: Option<&str>) -> bool {
        given.is_some_and(|g| same(g.as_bytes(), self.token.as_bytes()))
    }
}

/// The page's token from the request: `token` of the query, else a Bearer `Authorization`.
pub fn given_token<'a>(query: Option<&'a str>, authorization: Option<&'a str>) -> Option<String> {
    let from_query = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    // the scheme as credentials.rs reads it (RFC 7235: any case, then whitespace)
    from_query.or_else(|| {
        let a = authorization?.trim_start_matches([' ', '\t']);
        scheme(a)
            .eq_ignore_ascii_case("bearer")
            .then(|| a[6..].trim().to_string())
    })
}

/// What a request was, for the data point's `kind`.
pub fn kind(outcome: Outcome, resource: Option<Resource>, version_check: bool) -> &'static str {
    match outcome {
        Outcome::Token => "token",
        Outcome::Page => "page",
        Outcome::Redirect => "redirect",
        _ if version_check => "version",
        _ => match resource {
            Some(Resource::Manifest) => "manifest",
            Some(Resource::Blob) => "blob",
            Some(Resource::Tags) => "tags",
            Some(Resource::Upload) => "upload",
            Some(Resource::Referrers) => "referrers",
            None => "other",
        },
    }
}

/// One request's data point: `blobs`, `doubles` and the index, in the order the page's
/// queries read them (edge/stats.js):
/// - blobs: registry, repository, kind, method, cache verdict, outcome, proxy user, country;
/// - doubles: status, bytes to the client, bytes from the upstream, duration (ms), the
///   upstream's `RateLimit-Remaining` (-1: none);
/// - index: the registry (Analytics Engine samples by it).
#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint<'a> {
    pub blobs: [&'a str; 8],
    pub doubles: [f64; 5],
    pub index: &'a str,
}

/// What the log line knows of a request, and what only the data point needs.
pub struct Facts<'a> {
    pub registry: &'a str,
    pub repository: &'a str,
    pub kind: &'static str,
    pub method: &'a str,
    pub cache: Option<Verdict>,
    pub outcome: Outcome,
    pub user: &'a str,
    pub country: &'a str,
    pub status: u16,
    pub bytes: Option<u64>,
    pub upstream_bytes: Option<u64>,
    pub duration_ms: u64,
    pub ratelimit_remaining: Option<u64>,
}

pub fn data_point<'a>(f: &Facts<'a>) -> DataPoint<'a> {
    let n = |v: Option<u64>| v.map_or(0.0, |v| v as f64);
    DataPoint {
        blobs: [
            f.registry,
            f.repository,
            f.kind,
            f.method,
            f.cache.map_or("", Verdict::as_str),
            f.outcome.as_str(),
            f.user,
            f.country,
        ],
        doubles: [
            f64::from(f.status),
            n(f.bytes),
            n(f.upstream_bytes),
            f.duration_ms as f64,
            f.ratelimit_remaining.map_or(-1.0, |v| v as f64),
        ],
        index: f.registry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(
        pairs: &'a [(&'static str, &'a str)],
    ) -> impl Fn(&'static str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    const TOKEN: &str = "a-stats-token-of-some-length";

    #[test]
    fn the_page_needs_all_three_secrets_and_never_quotes_them() {
        assert_eq!(StatsPage::from_vars(vars(&[])).unwrap(), None);
        let all = [
            ("STATS_TOKEN", TOKEN),
            ("STATS_ACCOUNT_ID", "0123abcd"),
            ("STATS_API_TOKEN", "cf-api-secret"),
        ];
        let page = StatsPage::from_vars(vars(&all)).unwrap().unwrap();
        assert_eq!(
            page.sql_url,
            "https://api.cloudflare.com/client/v4/accounts/0123abcd/analytics_engine/sql"
        );
        assert_eq!(page.dataset, "registry_proxy");
        let shown = format!("{page:?}");
        assert!(
            !shown.contains(TOKEN) && !shown.contains("cf-api-secret"),
            "{shown}"
        );
        for i in 0..3 {
            let some: Vec<_> = all
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| *p)
                .collect();
            let e = StatsPage::from_vars(vars(&some)).unwrap_err();
            assert!(
                matches!(e, ProxyError::Config { var, .. } if var == all[i].0),
                "{e}"
            );
            assert!(!e.to_string().contains("cf-api-secret") && !e.to_string().contains(TOKEN));
        }
        for (bad, var) in [
            (("STATS_TOKEN", "short"), "STATS_TOKEN"),
            (("STATS_ACCOUNT_ID", "../x"), "STATS_ACCOUNT_ID"),
        ] {
            let mut v = all.to_vec();
            v.retain(|(k, _)| *k != bad.0);
            v.push(bad);
            let e = StatsPage::from_vars(vars(&v)).unwrap_err();
            assert!(
                matches!(e, ProxyError::Config { var: got, .. } if got == var),
                "{e}"
            );
        }
        let mut v = all.to_vec();
        v.push(("STATS_SQL_URL", "http://127.0.0.1:5040/sql"));
        v.push(("STATS_DATASET", "mine_1"));
        let page = StatsPage::from_vars(vars(&v)).unwrap().unwrap();
        assert_eq!(
            (page.sql_url.as_str(), page.dataset.as_str()),
            ("http://127.0.0.1:5040/sql", "mine_1")
        );
        v.push(("STATS_DATASET", "x; DROP"));
        v.retain(|(k, val)| *k != "STATS_DATASET" || *val != "mine_1");
        assert!(StatsPage::from_vars(vars(&v)).is_err());
    }

    #[test]
    fn only_the_page_s_token_opens_it() {
        let page = StatsPage::from_vars(vars(&[
            ("STATS_TOKEN", TOKEN),
            ("STATS_ACCOUNT_ID", "0123abcd"),
            ("STATS_API_TOKEN", "cf-api-secret"),
        ]))
        .unwrap()
        .unwrap();
        assert!(page.admits(Some(TOKEN)));
        for wrong in [
            None,
            Some(""),
            Some("a-stats-token-of-some-lengtH"),
            Some("a-stats-token"),
        ] {
            assert!(!page.admits(wrong), "{wrong:?}");
        }
        let q = format!("token={TOKEN}");
        assert_eq!(given_token(Some(&q), None).as_deref(), Some(TOKEN));
        let bearer = format!("Bearer {TOKEN}");
        assert_eq!(given_token(None, Some(&bearer)).as_deref(), Some(TOKEN));
        assert_eq!(given_token(Some("x=1"), Some("Basic YTpi")), None);
        assert_eq!(
            given_token(Some("token=a%20b"), None).as_deref(),
            Some("a b")
        );
    }

    #[test]
    fn a_data_point_holds_the_line_s_facts_in_the_page_s_order() {
        let facts = Facts {
            registry: "docker.io",
            repository: "library/alpine",
            kind: kind(Outcome::Cached, Some(Resource::Manifest), false),
            method: "GET",
            cache: Some(Verdict::Hit),
            outcome: Outcome::Cached,
            user: "carol",
            country: "DE",
            status: 200,
            bytes: Some(1234),
            upstream_bytes: Some(0),
            duration_ms: 7,
            ratelimit_remaining: None,
        };
        let p = data_point(&facts);
        assert_eq!(
            p.blobs,
            [
                "docker.io",
                "library/alpine",
                "manifest",
                "GET",
                "HIT",
                "cached",
                "carol",
                "DE"
            ]
        );
        assert_eq!(p.doubles, [200.0, 1234.0, 0.0, 7.0, -1.0]);
        assert_eq!(p.index, "docker.io");
        assert_eq!(kind(Outcome::Token, None, false), "token");
        assert_eq!(kind(Outcome::Challenge, None, true), "version");
        assert_eq!(kind(Outcome::Proxied, Some(Resource::Blob), false), "blob");
        assert_eq!(kind(Outcome::Limited, Some(Resource::Tags), false), "tags");
        assert_eq!(kind(Outcome::Error, None, false), "other");
    }
}
