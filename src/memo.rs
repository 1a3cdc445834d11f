//! What an isolate remembers between requests, for a bounded time: an upstream's challenge to
//! anonymous clients (its `/v2/` answer), anonymous token answers per scope (what any anonymous
//! client would get for the same request), and the upstream's recent yeses: which credentials
//! it accepted for a repository, which digests it served or confirmed there. Each saves an
//! upstream round trip; none leaves the isolate.

use std::collections::HashMap;

/// How long an upstream's challenge is taken as it was: the realm and service of a registry
/// change with a deployment of it, rarely.
pub const CHALLENGE_MS: f64 = 10.0 * 60.0 * 1000.0;

/// How long the upstream's yes to a client for a repository (an answered `HEAD` or `GET`)
/// stands for the same client's next requests of digests the upstream has shown to be in that
/// repository: long enough for one pull, short enough that a revoked access ends soon.
pub const ACCEPTED_MS: f64 = 60.0 * 1000.0;

/// How long a digest the upstream served or confirmed in a repository is taken to be there.
pub const CONFIRMED_MS: f64 = 60.0 * 60.0 * 1000.0;

/// The key of "the upstream accepted these credentials for this repository": the
/// `Authorization` the upstream saw (none: anonymous), which stays in the isolate's memory.
pub fn accepted_key(upstream: &str, repository: &str, authorization: Option<&str>) -> String {
    format!("{upstream} {repository} {}", authorization.unwrap_or(""))
}

/// The key of "the upstream served or confirmed this digest in this repository".
pub fn confirmed_key(upstream: &str, repository: &str, digest: &str) -> String {
    format!("{upstream} {repository} {digest}")
}

/// A map whose entries expire; when full, expired entries go, then the one that expires first.
#[derive(Debug)]
pub struct Memo<V> {
    entries: HashMap<String, (V, f64)>,
    capacity: usize,
}

impl<V: Clone> Memo<V> {
    pub fn new(capacity: usize) -> Self {
        Memo {
            entries: HashMap::new(),
            capacity,
        }
    }

    /// The value under `key` if it has not expired at `now` (ms).
    pub fn get(&mut self, key: &str, now: f64) -> Option<V> {
        match self.entries.get(key) {
            Some((v, until)) if *until > now => Some(v.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` under `key` until `until` (ms); `now` decides what has expired.
    pub fn put(&mut self, key: &str, value: V, until: f64, now: f64) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(key) {
            self.entries.retain(|_, (_, u)| *u > now);
            if self.entries.len() >= self.capacity {
                let first = self
                    .entries
                    .iter()
                    .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
                    .map(|(k, _)| k.clone());
                if let Some(k) = first {
                    self.entries.remove(&k);
                }
            }
        }
        self.entries.insert(key.to_string(), (value, until));
    }
}

/// The upstream's recent yeses: when it accepted credentials for a repository, and when it
/// served or confirmed a digest there.
#[derive(Debug)]
pub struct Yeses {
    accepted: Memo<f64>,
    confirmed: Memo<f64>,
}

impl Default for Yeses {
    fn default() -> Self {
        Yeses {
            accepted: Memo::new(1024),
            confirmed: Memo::new(8192),
        }
    }
}

impl Yeses {
    /// The upstream's yes at `now` to `authorization` (as it went upstream) for `repository`,
    /// and to `digest` being there, if any; kept for `stale_ms` when that is longer than their
    /// windows (`ACCEPTED_MS`, `CONFIRMED_MS`).
    pub fn vouch(
        &mut self,
        now: f64,
        upstream: &str,
        repository: &str,
        authorization: Option<&str>,
        digest: Option<&str>,
        stale_ms: f64,
    ) {
        let key = accepted_key(upstream, repository, authorization);
        self.accepted
            .put(&key, now, now + ACCEPTED_MS.max(stale_ms), now);
        if let Some(d) = digest {
            let key = confirmed_key(upstream, repository, d);
            self.confirmed
                .put(&key, now, now + CONFIRMED_MS.max(stale_ms), now);
        }
    }

    /// Whether at `now` the upstream accepted these credentials for the repository within
    /// `accepted_ms` and has shown the digest to be in it within `confirmed_ms`: then it need
    /// not be asked again, or its answer may be done without while it cannot give one (the
    /// stale age).
    #[allow(clippy::too_many_arguments)]
    pub fn vouched(
        &mut self,
        now: f64,
        upstream: &str,
        repository: &str,
        authorization: Option<&str>,
        digest: &str,
        accepted_ms: f64,
        confirmed_ms: f64,
    ) -> bool {
        let within = |at: Option<f64>, ms: f64| at.is_some_and(|at| at > now - ms);
        within(
            self.accepted
                .get(&accepted_key(upstream, repository, authorization), now),
            accepted_ms,
        ) && within(
            self.confirmed
                .get(&confirmed_key(upstream, repository, digest), now),
            confirmed_ms,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let mut m = Memo::new(4);
        m.put("a", 1, 100.0, 0.0);
        assert_eq!(m.get("a", 99.0), Some(1));
        assert_eq!(m.get("a", 100.0), None);
        assert_eq!(m.get("b", 0.0), None);
    }

    #[test]
    fn a_full_memo_drops_what_expires_first() {
        let mut m = Memo::new(2);
        m.put("a", 1, 300.0, 0.0);
        m.put("b", 2, 200.0, 0.0);
        m.put("c", 3, 400.0, 0.0);
        assert_eq!(m.get("b", 0.0), None);
        assert_eq!(m.get("a", 0.0), Some(1));
        assert_eq!(m.get("c", 0.0), Some(3));
        m.put("a", 9, 500.0, 0.0);
        assert_eq!(m.get("a", 0.0), Some(9));
        assert_eq!(m.entries.len(), 2);
        // expired entries make room first
        m.put("d", 4, 600.0, 450.0);
        assert_eq!(m.get("a", 450.0), Some(9));
        assert_eq!(m.get("d", 450.0), Some(4));
    }

    #[test]
    fn a_yes_is_per_upstream_repository_and_credentials() {
        let a = accepted_key("https://r", "library/x", Some("Bearer t"));
        assert_ne!(a, accepted_key("https://r", "library/x", Some("Bearer u")));
        assert_ne!(a, accepted_key("https://r", "library/y", Some("Bearer t")));
        assert_ne!(a, accepted_key("https://s", "library/x", Some("Bearer t")));
        assert_ne!(a, accepted_key("https://r", "library/x", None));
        let d = confirmed_key("https://r", "library/x", "sha256:ab");
        assert_ne!(d, confirmed_key("https://r", "library/y", "sha256:ab"));
    }

    #[test]
    fn a_yes_stands_for_its_credentials_repository_and_digest_only() {
        let mut y = Yeses::default();
        let (r, d) = ("https://r", "sha256:ab");
        y.vouch(0.0, r, "library/x", Some("Bearer t"), Some(d), 0.0);
        let v = |y: &mut Yeses, now, repo, auth, digest| {
            y.vouched(now, r, repo, auth, digest, ACCEPTED_MS, CONFIRMED_MS)
        };
        assert!(v(&mut y, 1000.0, "library/x", Some("Bearer t"), d));
        assert!(!v(&mut y, 1000.0, "library/x", Some("Bearer u"), d));
        assert!(!v(&mut y, 1000.0, "library/x", None, d));
        assert!(!v(&mut y, 1000.0, "library/y", Some("Bearer t"), d));
        assert!(!v(
            &mut y,
            1000.0,
            "library/x",
            Some("Bearer t"),
            "sha256:cd"
        ));
        // the client's yes lasts a minute, the digest's an hour
        assert!(!v(
            &mut y,
            ACCEPTED_MS + 1.0,
            "library/x",
            Some("Bearer t"),
            d
        ));
        y.vouch(ACCEPTED_MS, r, "library/x", Some("Bearer t"), None, 0.0);
        assert!(v(
            &mut y,
            ACCEPTED_MS + 1.0,
            "library/x",
            Some("Bearer t"),
            d
        ));
        assert!(!v(
            &mut y,
            CONFIRMED_MS + 1.0,
            "library/x",
            Some("Bearer t"),
            d
        ));
    }

    #[test]
    fn with_stale_answers_on_a_yes_is_kept_for_the_stale_age() {
        let mut y = Yeses::default();
        let day = 24.0 * 3600.0 * 1000.0;
        y.vouch(0.0, "https://r", "x", None, Some("sha256:ab"), day);
        // not fresh enough to go without asking, but within the stale age
        assert!(!y.vouched(
            2.0 * CONFIRMED_MS,
            "https://r",
            "x",
            None,
            "sha256:ab",
            ACCEPTED_MS,
            CONFIRMED_MS
        ));
        assert!(y.vouched(
            2.0 * CONFIRMED_MS,
            "https://r",
            "x",
            None,
            "sha256:ab",
            day,
            day
        ));
        assert!(!y.vouched(day + 1.0, "https://r", "x", None, "sha256:ab", day, day));
    }
}
