//! Request classification: which part of the registry API a path addresses, checked against
//! the distribution grammar so that bad input is refused here, not upstream.

use crate::error::ProxyError;

/// Whether a request reads the registry or changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `GET`, `HEAD`
    Read,
    /// Every other method (pushes, deletes).
    Write,
}

impl Access {
    /// The actions of a token scope for it (`repository:NAME:<actions>`).
    pub fn scope_actions(self) -> &'static str {
        match self {
            Access::Read => "pull",
            Access::Write => "pull,push",
        }
    }

    /// The one action it needs.
    pub fn action(self) -> &'static str {
        match self {
            Access::Read => "pull",
            Access::Write => "push",
        }
    }
}

/// What a repository path addresses after `/v2/<name>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Manifest,
    Blob,
    Upload,
    Tags,
    Referrers,
}

impl Resource {
    /// The methods of the registry API on this resource.
    pub fn methods(self) -> &'static [&'static str] {
        match self {
            Resource::Manifest => &["GET", "HEAD", "PUT", "DELETE"],
            Resource::Blob => &["GET", "HEAD", "DELETE"],
            Resource::Upload => &["GET", "POST", "PATCH", "PUT", "DELETE"],
            Resource::Tags | Resource::Referrers => &["GET", "HEAD"],
        }
    }
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
        /// The tag or digest of a manifest, the digest of a blob or of a referrers request;
        /// `None` for uploads and tag lists.
        reference: Option<&'a str>,
        /// Everything from the `/` after the name: `/manifests/latest`.
        rest: &'a str,
    },
    /// `_catalog` and extensions (a segment starting with `_`): forwarded as they are. Any
    /// other `/v2/…` path is not the API's.
    OtherApi,
}

// The distribution reference grammar, checked by hand: a regex engine would be the largest
// part of the Worker (~45 KiB compressed) and would be compiled on every cold start. The
// tests check these functions against the grammar's regular expressions.

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// One path component: `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &[u8]) -> bool {
    let mut i = 0;
    loop {
        // a run of lower-case letters and digits
        let start = i;
        while i < c.len() && is_lower_alnum(c[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == c.len() {
            return true;
        }
        // one separator: ".", "_", "__" or any number of "-"
        let sep = &c[i..];
        let len = match sep {
            [b'_', b'_', ..] => 2,
            [b'.' | b'_', ..] => 1,
            [b'-', ..] => sep.iter().take_while(|&&b| b == b'-').count(),
            _ => return false,
        };
        i += len;
    }
}

/// `component(/component)*`, at most 255 bytes.
pub fn valid_name(name: &str) -> bool {
    name.len() <= 255 && name.split('/').all(|c| valid_component(c.as_bytes()))
}

/// `[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`
pub fn valid_digest(d: &str) -> bool {
    let Some((algorithm, encoded)) = d.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm
        .split(['.', '+', '_', '-'])
        .all(|part| !part.is_empty() && part.bytes().all(is_lower_alnum));
    algorithm_ok
        && !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
}

/// A tag, `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`, or a digest.
fn valid_reference(r: &str) -> bool {
    valid_tag(r) || valid_digest(r)
}

/// The registered algorithms and the length of their lower-case hex encoding: a digest of one
/// of them with another length or case names nothing (distribution refuses it as well).
const DIGEST_LENGTHS: [(&str, usize); 3] = [("sha256", 64), ("sha384", 96), ("sha512", 128)];

/// A digest by the grammar whose algorithm, if registered, has its exact encoding.
pub fn usable_digest(d: &str) -> bool {
    valid_digest(d)
        && match d.split_once(':') {
            Some((algorithm, encoded)) => {
                match DIGEST_LENGTHS.iter().find(|(a, _)| *a == algorithm) {
                    Some((_, len)) => {
                        encoded.len() == *len
                            && encoded
                                .bytes()
                                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                    }
                    None => true,
                }
            }
            None => false,
        }
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`: a tag never contains `:`, a digest always does.
pub fn valid_tag(r: &str) -> bool {
    match r.as_bytes() {
        [first, rest @ ..] => {
            (first.is_ascii_alphanumeric() || *first == b'_')
                && rest.len() <= 127
                && rest
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        }
        [] => false,
    }
}

impl Endpoint<'_> {
    /// The methods the API has here (`_catalog` and extensions are read-only through the proxy).
    pub fn methods(&self) -> &'static [&'static str] {
        match self {
            Endpoint::Base | Endpoint::OtherApi => &["GET", "HEAD"],
            Endpoint::Auth => &["GET", "POST"],
            Endpoint::Repository { resource, .. } => resource.methods(),
        }
    }
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
        } else if tail.split('/').any(|segment| segment.starts_with('_')) {
            // `_catalog` and extensions (`/v2/_<ext>/…`, `/v2/<name>/_<ext>/…`): a segment
            // starting with `_` cannot be part of a repository name
            return Ok(Endpoint::OtherApi);
        } else {
            return Err(ProxyError::NotFound);
        }
    };
    if !valid_name(name) {
        return Err(ProxyError::NameInvalid(name.to_string()));
    }
    match (resource, reference) {
        (Resource::Manifest, Some(r)) if !valid_reference(r) => {
            return Err(ProxyError::ReferenceInvalid(r.to_string()))
        }
        // a manifest's reference with a ':' is a digest
        (Resource::Manifest, Some(r)) if !valid_tag(r) && !usable_digest(r) => {
            return Err(ProxyError::DigestInvalid(r.to_string()))
        }
        (Resource::Blob | Resource::Referrers, Some(d)) if !usable_digest(d) => {
            return Err(ProxyError::DigestInvalid(d.to_string()))
        }
        _ => {}
    }
    Ok(Endpoint::Repository {
        name,
        resource,
        reference,
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
        let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
        let reference = match resource {
            Resource::Manifest | Resource::Blob | Resource::Referrers => {
                Some(leak(rest.rsplit('/').next().unwrap()))
            }
            Resource::Upload | Resource::Tags => None,
        };
        Repository {
            name: leak(name),
            resource,
            reference,
            rest: leak(rest),
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
            classify("/v2/busybox/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000"),
            Ok(repo("busybox", Resource::Blob, "/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000"))
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
            classify("/v2/org/app/referrers/sha256:0000000000000000000000000000000000000000000000000000000000000000"),
            Ok(repo(
                "org/app",
                Resource::Referrers,
                "/referrers/sha256:0000000000000000000000000000000000000000000000000000000000000000"
            ))
        );
        // a repository named like a resource
        assert_eq!(
            classify("/v2/x/manifests/manifests/v1"),
            Ok(repo("x/manifests", Resource::Manifest, "/manifests/v1"))
        );
        assert_eq!(classify("/v2/_catalog"), Ok(OtherApi));
        assert_eq!(classify("/v2/_oci/ext/discover"), Ok(OtherApi));
        assert_eq!(classify("/v2/org/app/_ext/x"), Ok(OtherApi));
        // not the API: nothing to forward
        for path in [
            "/v2/x",
            "/v2/org/app",
            "/v2/org/app/foo",
            "/v2/org/app/manifests",
        ] {
            assert_eq!(classify(path), Err(ProxyError::NotFound), "{path}");
        }
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
    fn registered_digests_have_their_exact_length_and_case() {
        let hex = |n: usize| "0123456789abcdef".repeat(8)[..n].to_string();
        for ok in [
            format!("sha256:{}", hex(64)),
            format!("sha384:{}", hex(96)),
            format!("sha512:{}", hex(128)),
            // unregistered algorithms: the grammar only, the upstream decides
            "blake3:abc".to_string(),
        ] {
            assert!(usable_digest(&ok), "{ok}");
            assert!(classify(&format!("/v2/a/blobs/{ok}")).is_ok(), "{ok}");
            assert!(classify(&format!("/v2/a/manifests/{ok}")).is_ok(), "{ok}");
        }
        for bad in [
            format!("sha256:{}", hex(63)),
            format!("sha256:{}", hex(65)),
            format!("sha256:{}", hex(64).to_uppercase()),
            format!("sha512:{}", hex(64)),
            format!("sha384:{}", hex(128)),
            format!("sha256:{}g", hex(63)),
            "sha256:".to_string(),
        ] {
            assert!(!usable_digest(&bad), "{bad}");
            for path in [
                format!("/v2/a/blobs/{bad}"),
                format!("/v2/a/manifests/{bad}"),
                format!("/v2/a/referrers/{bad}"),
            ] {
                assert!(
                    matches!(
                        classify(&path),
                        Err(ProxyError::DigestInvalid(_) | ProxyError::ReferenceInvalid(_))
                    ),
                    "{path}"
                );
            }
        }
    }

    #[test]
    fn every_endpoint_has_its_methods() {
        let digest = format!("sha256:{}", "0".repeat(64));
        let methods = |path: &str| classify(path).unwrap().methods();
        assert_eq!(methods("/v2/"), ["GET", "HEAD"]);
        assert_eq!(methods("/v2/auth"), ["GET", "POST"]);
        assert_eq!(
            methods("/v2/a/manifests/v1"),
            ["GET", "HEAD", "PUT", "DELETE"]
        );
        assert_eq!(
            methods(&format!("/v2/a/blobs/{digest}")),
            ["GET", "HEAD", "DELETE"]
        );
        assert!(methods("/v2/a/blobs/uploads/").contains(&"POST"));
        assert!(methods("/v2/a/blobs/uploads/u1").contains(&"PATCH"));
        assert_eq!(methods("/v2/a/tags/list"), ["GET", "HEAD"]);
        assert_eq!(methods("/v2/_catalog"), ["GET", "HEAD"]);
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

    /// The hand-written checks agree with the grammar's regular expressions on every string
    /// of a small alphabet up to length 5, and on random longer ones.
    #[test]
    fn checks_agree_with_the_grammar_regexes() {
        let component = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
        let name = regex::Regex::new(&format!("^{component}(?:/{component})*$")).unwrap();
        let tag = regex::Regex::new("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").unwrap();
        let digest = regex::Regex::new("^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$").unwrap();
        let alphabet = b"a0Z._-/:+=";
        let mut checked = 0;
        let mut check = |s: &str| {
            assert_eq!(valid_name(s), name.is_match(s), "name {s:?}");
            assert_eq!(valid_digest(s), digest.is_match(s), "digest {s:?}");
            assert_eq!(
                valid_reference(s),
                tag.is_match(s) || digest.is_match(s),
                "reference {s:?}"
            );
            checked += 1;
        };
        let mut words = vec![String::new()];
        for _ in 0..5 {
            let mut next = Vec::new();
            for w in &words {
                for &c in alphabet {
                    let mut w = w.clone();
                    w.push(c as char);
                    check(&w);
                    next.push(w);
                }
            }
            words = next;
        }
        // longer strings from a fixed pseudo-random sequence
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..50_000 {
            let mut s = String::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = 7 + (x % 40) as usize;
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push(alphabet[(x % alphabet.len() as u64) as usize] as char);
            }
            check(&s);
        }
        assert!(checked > 150_000);
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
