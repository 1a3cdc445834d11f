//! The cache's settings, from the vars (`CACHE`, `CACHE_STALE_SECONDS`,
//! `CACHE_VERIFY_MAX_BYTES`, `CACHE_BUCKET_MIN_BYTES`): what config.rs builds and the cache's
//! decisions (cache.rs) read.

use crate::error::ProxyError;

/// The Cache API keeps no object over 512 MB (Cloudflare's limit per object).
pub const CACHE_API_MAX_BYTES: u64 = 512 * 1000 * 1000;

/// `CACHE_VERIFY_MAX_BYTES` unset: the largest answer kept in the Cache API. The Worker
/// hashes what it keeps there (the Cache API checks nothing), which costs CPU in proportion to
/// the bytes; at this size a keep costs less than 5 ms more than passing the answer through,
/// so the free plan's 10 ms per request holds (`npm run bench`; README, "Limits and costs").
pub const VERIFY_MAX_DEFAULT: u64 = 512 << 10;

/// `CACHE`: where answers are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// Nothing is kept, every request goes upstream (as the original did).
    Off,
    /// The Cache API of the data center (`caches.default`): the default.
    Edge,
}

impl CacheMode {
    pub fn parse(raw: Option<&str>) -> Result<Self, ProxyError> {
        match raw.map(|r| r.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("on") | Some("edge") => Ok(CacheMode::Edge),
            Some("off") => Ok(CacheMode::Off),
            Some(_) => Err(ProxyError::Config {
                var: "CACHE",
                reason: format!(
                    "{:?} is neither \"on\" nor \"off\"",
                    raw.unwrap_or_default()
                ),
            }),
        }
    }
}

/// `CACHE_STALE_SECONDS`: how old a tag's last digest, and the upstream's last yes to a client,
/// may be to answer from the store while the upstream cannot (unset: never).
pub fn parse_stale(raw: Option<&str>) -> Result<Option<u32>, ProxyError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    match raw.parse::<u32>() {
        Ok(n) if n > 0 && n <= 30 * 24 * 3600 => Ok(Some(n)),
        _ => Err(ProxyError::Config {
            var: "CACHE_STALE_SECONDS",
            reason: format!("{raw:?} is not a whole number of seconds from 1 to 2592000 (30 days)"),
        }),
    }
}

/// How many bytes may be kept where, from the vars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `CACHE_VERIFY_MAX_BYTES`: the largest answer kept in the Cache API (the Worker hashes
    /// it: CPU per byte).
    pub verify_max: u64,
    /// `CACHE_BUCKET_MIN_BYTES`, if set: blobs of at least this size go to the R2 bucket.
    pub bucket_min: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            verify_max: VERIFY_MAX_DEFAULT,
            bucket_min: None,
        }
    }
}

impl Limits {
    pub fn from_vars(
        verify_max: Option<&str>,
        bucket_min: Option<&str>,
    ) -> Result<Self, ProxyError> {
        Ok(Limits {
            verify_max: bytes_var("CACHE_VERIFY_MAX_BYTES", verify_max)?
                .unwrap_or(VERIFY_MAX_DEFAULT),
            bucket_min: bytes_var("CACHE_BUCKET_MIN_BYTES", bucket_min)?,
        })
    }

    /// From which size blobs go to a bound bucket: as set, else every blob the Cache API does
    /// not keep (R2 checks the digest itself, so a blob there costs the Worker no CPU per byte).
    pub fn bucket_from(&self) -> u64 {
        self.bucket_min.unwrap_or(self.verify_max.saturating_add(1))
    }
}

/// A size var: a whole number of bytes up to the Cache API's limit.
fn bytes_var(var: &'static str, raw: Option<&str>) -> Result<Option<u64>, ProxyError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    match raw.parse::<u64>() {
        Ok(n) if n <= CACHE_API_MAX_BYTES => Ok(Some(n)),
        _ => Err(ProxyError::Config {
            var,
            reason: format!(
                "{raw:?} is not a whole number of bytes from 0 to {CACHE_API_MAX_BYTES} (the Cache API's limit)"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(verify_max: u64, bucket_min: Option<u64>) -> Limits {
        Limits {
            verify_max,
            bucket_min,
        }
    }

    #[test]
    fn the_size_vars_are_bytes_up_to_the_cache_api_limit() {
        assert_eq!(Limits::from_vars(None, None), Ok(Limits::default()));
        assert_eq!(
            Limits::from_vars(Some(" "), Some("")),
            Ok(Limits::default())
        );
        assert_eq!(
            Limits::from_vars(Some("0"), Some(" 104857600 ")),
            Ok(limits(0, Some(100 << 20)))
        );
        assert_eq!(Limits::default().bucket_from(), VERIFY_MAX_DEFAULT + 1);
        assert_eq!(limits(7, Some(3)).bucket_from(), 3);
        for var in ["CACHE_VERIFY_MAX_BYTES", "CACHE_BUCKET_MIN_BYTES"] {
            for bad in ["-1", "100MB", "512000001", "1e6"] {
                let r = if var == "CACHE_VERIFY_MAX_BYTES" {
                    Limits::from_vars(Some(bad), None)
                } else {
                    Limits::from_vars(None, Some(bad))
                };
                let e = r.unwrap_err().to_string();
                assert!(e.contains(var) && e.contains(bad), "{e}");
            }
        }
    }

    #[test]
    fn stale_answers_are_off_unless_given_an_age() {
        assert_eq!(parse_stale(None), Ok(None));
        assert_eq!(parse_stale(Some(" ")), Ok(None));
        assert_eq!(parse_stale(Some("3600")), Ok(Some(3600)));
        for bad in ["0", "-5", "1h", "99999999"] {
            let e = parse_stale(Some(bad)).unwrap_err().to_string();
            assert!(e.contains("CACHE_STALE_SECONDS") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn the_cache_var_is_on_or_off() {
        assert_eq!(CacheMode::parse(None), Ok(CacheMode::Edge));
        assert_eq!(CacheMode::parse(Some(" ON ")), Ok(CacheMode::Edge));
        assert_eq!(CacheMode::parse(Some("off")), Ok(CacheMode::Off));
        let e = CacheMode::parse(Some("r2")).unwrap_err().to_string();
        assert!(e.contains("CACHE") && e.contains("\"r2\""), "{e}");
    }
}
