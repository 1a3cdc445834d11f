//! Request classification: which part of the registry API a path addresses, checked against
//! the distribution grammar so that bad input is refused here, not upstream.

use crate::error::ProxyError;
use regex::Regex;
use std::sync::OnceLock;

/// What a repository path addresses after `/v2/<name>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Manifest,
    Blob,
    Upload,
    Tags,
    Referrers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// `/v2/`: the API version check, where clients learn how to authenticate.
    Base,
    /// `/v2/auth`: the proxy's own token endpoint.
    Auth,
    /// `/v2/<name>/…`
    Repository {
        name: &'a str,
        resource: Resource,
        /// Everything from the `/` after the name: `/manifests/latest`.
        rest: &'a str,
    },
    /// Other `/v2/…` paths (`_catalog`, extensions): forwarded as they are.
    OtherApi,
}

fn regexes() -> &'static (Regex, Regex, Regex) {
    static RE: OnceLock<(Regex, Regex, Regex)> = OnceLock::new();
    RE.get_or_init(|| {
        let component = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
        (
            Regex::new(&format!("^{component}(?:/{component})*$")).unwrap(),
            Regex::new("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").unwrap(),
            Regex::new("^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$").unwrap(),
        )
    })
}

pub fn valid_name(name: &str) -> bool {
    name.len() <= 255 && regexes().0.is_match(name)
}

pub fn valid_digest(d: &str) -> bool {
    regexes().2.is_match(d)
}

fn valid_reference(r: &str) -> bool {
    regexes().1.is_match(r) || valid_digest(r)
}

/// Classifies a request path (percent-encoded, as in the URL). Errors name what is invalid.
pub fn classify(path: &str) -> Result<Endpoint<'_>, ProxyError> {
    let Some(tail) = path.strip_prefix("/v2") else {
        return Err(ProxyError::NotFound);
    };
    let tail = match tail {
        "" | "/" => return Ok(Endpoint::Base),
        "/auth" => return Ok(Endpoint::Auth),
        t => match t.strip_prefix('/') {
            Some(t) => t,
            None => return Err(ProxyError::NotFound), // "/v2x"
        },
    };
    // Names may themselves contain "manifests" or "blobs", so match from the right: the
    // reference (tag, digest, upload id) never contains '/'.
    let (resource, name, reference) = if let Some(name) = tail.strip_suffix("/tags/list") {
        (Resource::Tags, name, None)
    } else {
        let (head, last) = tail.rsplit_once('/').unwrap_or(("", tail));
        if let Some(name) = head.strip_suffix("/blobs/uploads") {
            (Resource::Upload, name, None)
        } else if let Some(name) = head.strip_suffix("/manifests") {
            (Resource::Manifest, name, Some(last))
        } else if let Some(name) = head.strip_suffix("/blobs") {
            if last == "uploads" {
                (Resource::Upload, name, None)
            } else {
                (Resource::Blob, name, Some(last))
            }
        } else if let Some(name) = head.strip_suffix("/referrers") {
            (Resource::Referrers, name, Some(last))
        } else {
            return Ok(Endpoint::OtherApi);
        }
    };
    if !valid_name(name) {
        return Err(ProxyError::NameInvalid(name.to_string()));
    }
    match (resource, reference) {
        (Resource::Manifest, Some(r)) if !valid_reference(r) => {
            return Err(ProxyError::ReferenceInvalid(r.to_string()))
        }
        (Resource::Blob | Resource::Referrers, Some(d)) if !valid_digest(d) => {
            return Err(ProxyError::DigestInvalid(d.to_string()))
        }
        _ => {}
    }
    Ok(Endpoint::Repository {
        name,
        resource,
        rest: &tail[name.len()..],
    })
}

/// Docker Hub keeps official images under `library/`: `/v2/busybox/…` ->
/// `/v2/library/busybox/…`. `None` when the name already has a namespace.
pub fn library_path(name: &str, rest: &str) -> Option<String> {
    (!name.contains('/')).then(|| format!("/v2/library/{name}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Endpoint::*;

    fn repo(name: &str, resource: Resource, rest: &str) -> Endpoint<'static> {
        Repository {
            name: Box::leak(name.to_string().into_boxed_str()),
            resource,
            rest: Box::leak(rest.to_string().into_boxed_str()),
        }
    }

    #[test]
    fn base_and_auth() {
        assert_eq!(classify("/v2/"), Ok(Base));
        assert_eq!(classify("/v2"), Ok(Base));
        assert_eq!(classify("/v2/auth"), Ok(Auth));
        assert_eq!(classify("/"), Err(ProxyError::NotFound));
        assert_eq!(classify("/v2x/foo"), Err(ProxyError::NotFound));
        assert_eq!(classify("/token"), Err(ProxyError::NotFound));
    }

    #[test]
    fn repository_paths() {
        assert_eq!(
            classify("/v2/library/busybox/manifests/latest"),
            Ok(repo(
                "library/busybox",
                Resource::Manifest,
                "/manifests/latest"
            ))
        );
        assert_eq!(
            classify("/v2/busybox/blobs/sha256:abcd"),
            Ok(repo("busybox", Resource::Blob, "/blobs/sha256:abcd"))
        );
        assert_eq!(
            classify("/v2/a/b/c/tags/list"),
            Ok(repo("a/b/c", Resource::Tags, "/tags/list"))
        );
        assert_eq!(
            classify("/v2/org/app/blobs/uploads/"),
            Ok(repo("org/app", Resource::Upload, "/blobs/uploads/"))
        );
        assert_eq!(
            classify("/v2/org/app/blobs/uploads/5b1c-uuid"),
            Ok(repo(
                "org/app",
                Resource::Upload,
                "/blobs/uploads/5b1c-uuid"
            ))
        );
        assert_eq!(
            classify("/v2/org/app/referrers/sha256:00ff"),
            Ok(repo(
                "org/app",
                Resource::Referrers,
                "/referrers/sha256:00ff"
            ))
        );
        // a repository named like a resource
        assert_eq!(
            classify("/v2/x/manifests/manifests/v1"),
            Ok(repo("x/manifests", Resource::Manifest, "/manifests/v1"))
        );
        assert_eq!(classify("/v2/_catalog"), Ok(OtherApi));
    }

    #[test]
    fn bad_names_and_references_are_refused() {
        assert!(matches!(
            classify("/v2/Library/Busybox/manifests/latest"),
            Err(ProxyError::NameInvalid(_))
        ));
        assert!(matches!(
            classify("/v2/a//b/manifests/x"),
            Err(ProxyError::NameInvalid(_))
        ));
        assert!(matches!(
            classify("/v2/-a/manifests/x"),
            Err(ProxyError::NameInvalid(_))
        ));
        assert!(matches!(
            classify("/v2/a/manifests/bad%20tag"),
            Err(ProxyError::ReferenceInvalid(_))
        ));
        assert!(matches!(
            classify("/v2/a/manifests/.hidden"),
            Err(ProxyError::ReferenceInvalid(_))
        ));
        assert!(matches!(
            classify("/v2/a/blobs/latest"),
            Err(ProxyError::DigestInvalid(_))
        ));
        let long = format!("/v2/{}/manifests/x", "a".repeat(256));
        assert!(matches!(classify(&long), Err(ProxyError::NameInvalid(_))));
        let long_tag = format!("/v2/a/manifests/{}", "t".repeat(129));
        assert!(matches!(
            classify(&long_tag),
            Err(ProxyError::ReferenceInvalid(_))
        ));
    }

    #[test]
    fn grammar_accepts_real_names() {
        for n in [
            "a",
            "library/hello",
            "my_org/my-app.v2",
            "a__b/c--d",
            "ghcr.io/org/app",
            "0",
        ] {
            assert!(valid_name(n), "{n}");
        }
        for d in [
            "sha256:0123abcd",
            "sha512:ff",
            "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
        ] {
            assert!(valid_digest(d), "{d}");
        }
        assert!(valid_reference("v1.2.3-rc_1"));
        assert!(valid_reference("sha256:abc"));
    }

    #[test]
    fn library_completion() {
        assert_eq!(
            library_path("busybox", "/manifests/latest").as_deref(),
            Some("/v2/library/busybox/manifests/latest")
        );
        assert_eq!(library_path("org/app", "/tags/list"), None);
    }
}
