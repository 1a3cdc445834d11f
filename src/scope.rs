//! Token scopes (`repository:library/busybox:pull`), completed for Docker Hub.

/// Completes one scope: on Docker Hub a single-segment repository name means `library/<name>`.
pub fn complete_scope(scope: &str, docker_hub: bool) -> String {
    if docker_hub {
        // type[(class)]:name:actions; names never contain ':', actions come after the last one
        if let Some((kind, rest)) = scope.split_once(':') {
            if let Some((name, actions)) = rest.rsplit_once(':') {
                if kind.starts_with("repository") && !name.is_empty() && !name.contains('/') {
                    return format!("{kind}:library/{name}:{actions}");
                }
            }
        }
    }
    scope.to_string()
}

/// Completes a scope parameter, which may hold several scopes separated by spaces.
pub fn complete_scopes(scopes: &str, docker_hub: bool) -> String {
    if !docker_hub {
        return scopes.to_string();
    }
    scopes
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| complete_scope(s, true))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_scopes_get_library() {
        assert_eq!(
            complete_scope("repository:busybox:pull", true),
            "repository:library/busybox:pull"
        );
        assert_eq!(
            complete_scope("repository:busybox:pull,push", true),
            "repository:library/busybox:pull,push"
        );
        assert_eq!(
            complete_scope("repository(plugin):x:pull", true),
            "repository(plugin):library/x:pull"
        );
        assert_eq!(
            complete_scope("repository:org/app:pull", true),
            "repository:org/app:pull"
        );
        assert_eq!(
            complete_scope("registry:catalog:*", true),
            "registry:catalog:*"
        );
        assert_eq!(
            complete_scope("repository:busybox:pull", false),
            "repository:busybox:pull"
        );
        assert_eq!(complete_scope("garbage", true), "garbage");
        assert_eq!(complete_scope("repository::pull", true), "repository::pull");
    }

    #[test]
    fn several_scopes_in_one_parameter() {
        assert_eq!(
            complete_scopes("repository:a:pull repository:b/c:pull,push", true),
            "repository:library/a:pull repository:b/c:pull,push"
        );
    }
}
