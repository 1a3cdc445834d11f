//! One host for every registry (issue 5): `proxy.example.test` serves the hub registry
//! (`hub.registry.test`, token auth, Docker Hub rules, the default) and the open registry
//! (`open.registry.test`) by path prefix and as a mirror, for skopeo, podman, ctr and docker.
//! The registry names resolve nowhere: a client that bypassed the proxy would fail, not reach
//! anything. Run by `tests/run.sh`, which starts the daemons.

use crate::common::*;

const PROXY: &str = "proxy.example.test";

/// The proxy's log lines for host `proxy.example.test`.
fn proxy_lines() -> Vec<serde_json::Value> {
    worker_log_lines(&var("WORKERD_LOG"))
        .into_iter()
        .filter(|l| l["host"] == PROXY)
        .collect()
}

fn manifest_digest(reference: &str) -> String {
    let out = run(skopeo()
        .args(["inspect", "--raw"])
        .arg(format!("docker://{reference}")));
    format!("sha256:{}", sha256_hex(&out.stdout))
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn path_prefixed_pulls_reach_each_registry() {
    daemons();
    let p = proxy(PROXY);
    // skopeo: both registries by prefix, and a name without prefix (the default, the hub,
    // with Docker Hub's library/ completion)
    for (reference, key) in [
        (
            format!("{p}/hub.registry.test/library/hello:latest"),
            "DIGEST_HELLO_LATEST",
        ),
        (
            format!("{p}/open.registry.test/library/multi:latest"),
            "DIGEST_MULTI",
        ),
        (
            format!("{p}/open.registry.test/library/hello:v2s2"),
            "DIGEST_HELLO_V2S2",
        ),
        (format!("{p}/hello:latest"), "DIGEST_HELLO_LATEST"),
        (
            format!("{p}/hub.registry.test/hello:latest"),
            "DIGEST_HELLO_LATEST",
        ),
    ] {
        assert_eq!(manifest_digest(&reference), var(key), "{reference}");
    }
    let out = tempdir("prefixed");
    run(skopeo()
        .args(["copy"])
        .arg(format!(
            "docker://{p}/open.registry.test/library/multi:latest"
        ))
        .arg(format!("oci:{}:x", out.display())));
    assert_eq!(oci_layout_digest(&out), var("DIGEST_MULTI"));

    // podman
    let root = tempdir("podman");
    let reference = format!("{p}/open.registry.test/library/multi:latest");
    assert!(podman_pull(&root, &reference).contains(&var("DIGEST_MULTI")));
    let _ = std::fs::remove_dir_all(&root);

    // containerd
    let reference = format!("{p}/hub.registry.test/library/multi:latest");
    assert!(ctr_pull_lists(
        &unique("prefix"),
        &[],
        &reference,
        &var("DIGEST_MULTI")
    ));

    // docker
    let reference = format!("{p}/open.registry.test/library/hello:latest");
    let digests = docker_pull(&tempdir("docker"), &reference);
    assert!(digests.contains(&var("DIGEST_HELLO_LATEST")), "{digests}");

    // both upstreams were reached through the one host
    let lines = proxy_lines();
    for upstream in [var("HUB_URL"), var("OPEN_URL")] {
        assert!(
            lines
                .iter()
                .any(|l| l["route"] == upstream.as_str() && l["status"] == 200),
            "{upstream}"
        );
    }
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn token_flow_and_uploads_keep_the_clients_names() {
    let p = proxy(PROXY);
    // the challenge names the repository as the client does: the prefix names the registry
    let r = curl(
        &format!("https://{p}/v2/hub.registry.test/library/hello/manifests/latest"),
        &[],
    );
    assert_eq!(r.status, 401);
    let www = r.header("www-authenticate").unwrap().to_string();
    assert!(
        www.contains(&format!(r#"realm="https://{p}/v2/auth","#)),
        "{www}"
    );
    assert!(
        www.contains(r#"scope="repository:hub.registry.test/library/hello:pull""#),
        "{www}"
    );
    // a token for the prefixed scope works for the prefixed name
    let r = curl(&format!("https://{p}/v2/auth?ns=hub.registry.test&service=cloudflare-docker-proxy&scope=repository:hub.registry.test/library/hello:pull"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["token"].as_str().unwrap().to_string();
    let r = curl(
        &format!("https://{p}/v2/hub.registry.test/library/hello/manifests/latest"),
        &[
            "-I",
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-H",
            "Accept: application/vnd.oci.image.index.v1+json",
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("docker-content-digest"),
        Some(var("DIGEST_HELLO_LATEST").as_str())
    );
    // the issuer saw the upstream's name, not the client's
    let issued = log_lines("ISSUER_LOG");
    assert!(issued
        .iter()
        .any(|l| l.to_string().contains("repository:library/hello:pull")));
    assert!(!issued
        .iter()
        .any(|l| l.to_string().contains("hub.registry.test/")));

    // a push through the prefix: upload Locations come back with the prefix
    let creds = alice();
    let repo = format!("library/{}", unique("viaprefix").to_lowercase());
    run(skopeo()
        .args(["copy", "--dest-creds", &creds])
        .arg(format!("oci:{}/multi:latest", var("IMAGES_DIR")))
        .arg(format!("docker://{p}/hub.registry.test/{repo}:v1")));
    assert_eq!(
        manifest_digest(&format!("{p}/hub.registry.test/{repo}:v1")),
        var("DIGEST_MULTI")
    );
    let uploads: Vec<_> = proxy_lines()
        .into_iter()
        .filter(|l| {
            l["path"]
                .as_str()
                .unwrap_or("")
                .starts_with(&format!("/v2/hub.registry.test/{repo}/blobs/uploads/"))
        })
        .collect();
    assert!(
        uploads
            .iter()
            .any(|l| l["method"] == "PUT" && l["status"] == 201),
        "{uploads:?}"
    );
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn registries_outside_the_table_are_refused_before_any_request() {
    let p = proxy(PROXY);
    let before = proxy_lines().len();
    for path in [
        "/v2/evil.registry.test/library/hello/manifests/latest".to_string(),
        "/v2/library/hello/manifests/latest?ns=evil.registry.test".to_string(),
        "/v2/library/hello/manifests/latest?ns=127.0.0.1:5002".to_string(),
        "/v2/auth?scope=repository:evil.registry.test/x:pull".to_string(),
        "/v2/auth?ns=evil.registry.test".to_string(),
    ] {
        let r = curl(&format!("https://{p}{path}"), &[]);
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (404, "NAME_UNKNOWN"),
            "{path}: {}",
            r.text()
        );
        assert!(
            r.text().contains("is not served by this proxy"),
            "{}",
            r.text()
        );
    }
    // the log says so (its lines waited for): answered by the proxy, no upstream status
    let refused = wait_for("the 5 refusals' lines", || {
        let lines = proxy_lines();
        let refused: Vec<_> = lines[before.min(lines.len())..]
            .iter()
            .filter(|l| l["error"] == "NAME_UNKNOWN")
            .cloned()
            .collect();
        (refused.len() >= 5).then_some(refused)
    });
    assert!(
        refused.iter().all(|l| l.get("upstream_status").is_none()),
        "{refused:?}"
    );
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn mirrors_for_docker_containerd_and_podman() {
    daemons();
    let before = proxy_lines().len();

    // dockerd has registry-mirrors = [https://proxy.example.test:8443] (tests/harness/up.sh):
    // `docker pull hello` asks the mirror, whose default registry is the hub
    let digests = docker_pull(&tempdir("docker"), "hello:latest");
    assert!(digests.contains(&var("DIGEST_HELLO_LATEST")), "{digests}");

    // containerd with hosts.toml for both registry names, the proxy as their mirror: it
    // sends ?ns=<registry>, which picks the upstream
    let hosts = tempdir("hosts");
    for name in ["hub.registry.test", "open.registry.test"] {
        std::fs::create_dir_all(hosts.join(name)).unwrap();
        std::fs::write(
            hosts.join(name).join("hosts.toml"),
            format!("server = \"https://{name}\"\n\n[host.\"https://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n", proxy(PROXY)),
        )
        .unwrap();
    }
    let ns = unique("mirror");
    for (reference, key) in [
        (
            "hub.registry.test/library/hello:latest",
            "DIGEST_HELLO_LATEST",
        ),
        ("open.registry.test/library/multi:latest", "DIGEST_MULTI"),
    ] {
        assert!(
            ctr_pull_lists(
                &ns,
                &["--hosts-dir".as_ref(), hosts.as_os_str()],
                reference,
                &var(key)
            ),
            "{reference}"
        );
    }

    // podman: a mirror per registry; the default registry needs no prefix, others take one
    let root = tempdir("podman");
    let _ = podman(&root); // writes its default registries.conf, replaced here
    std::fs::write(
        root.join("registries.conf"),
        format!(
            "unqualified-search-registries = []\n\n[[registry]]\nprefix = \"hub.registry.test\"\nlocation = \"hub.registry.test\"\n[[registry.mirror]]\nlocation = \"{p}\"\n\n[[registry]]\nprefix = \"open.registry.test\"\nlocation = \"open.registry.test\"\n[[registry.mirror]]\nlocation = \"{p}/open.registry.test\"\n",
            p = proxy(PROXY)
        ),
    )
    .unwrap();
    for (reference, key) in [
        ("hub.registry.test/library/multi:latest", "DIGEST_MULTI"),
        ("open.registry.test/library/hello:v2s2", "DIGEST_HELLO_V2S2"),
    ] {
        assert!(
            podman_pull(&root, reference).contains(&var(key)),
            "{reference}"
        );
    }
    let _ = std::fs::remove_dir_all(&root);

    // every one of them came through the proxy, to both upstreams; an unprefixed name reached
    // the open registry, which only containerd's ns can have asked for
    let lines = proxy_lines();
    let new = &lines[before.min(lines.len())..];
    assert!(
        new.iter()
            .any(|l| l["path"] == "/v2/library/multi/manifests/latest"
                && l["route"] == var("OPEN_URL").as_str()
                && l["status"] == 200),
        "no ns-routed request to the open registry"
    );
    for upstream in [var("HUB_URL"), var("OPEN_URL")] {
        assert!(
            new.iter()
                .any(|l| l["route"] == upstream.as_str() && l["status"] == 200),
            "{upstream}"
        );
    }
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn credentials_reach_the_default_registry_only() {
    let issuer_entry = |marker: &str| {
        log_lines("ISSUER_LOG")
            .into_iter()
            .find(|l| l.to_string().contains(marker))
            .unwrap_or_else(|| panic!("no issuer request for {marker}"))
    };
    let creds = alice();
    // the harness's path host: the hub is the default, so a login to the proxy goes there
    let marker = unique("credsdefault").to_lowercase();
    let r = curl(
        &format!(
            "https://{}/v2/auth?service=x&scope=repository:hub.registry.test/library/{marker}:pull",
            proxy(PROXY)
        ),
        &["-u", &creds],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(issuer_entry(&marker)["authorization_scheme"], "Basic");

    // a proxy whose default registry is the open one: the hub is a registry like ghcr.io
    // would be, and the proxy's credentials never reach its token service
    let w = Workerd::start(
        18095,
        &format!(
            r#"(name = "ROUTES", json = "{{\"a.local\": {{\"upstream\": \"{hub}\", \"docker_hub\": true, \"registry\": \"hub.registry.test\"}}, \"b.local\": {{\"upstream\": \"{open}\", \"registry\": \"open.registry.test\"}}, \"c.local\": {{\"upstream\": \"http://127.0.0.1:{bare}\", \"registry\": \"bare.registry.test\"}}}}"),
               (name = "PATH_ROUTING", text = "one.local"), (name = "DEFAULT_REGISTRY", text = "open.registry.test"),"#,
            hub = var("HUB_URL"),
            open = var("OPEN_URL"),
            bare = var("FAKE_BARE_PORT"),
        ),
    );
    let marker = unique("credsget").to_lowercase();
    let r = w.get(
        "one.local",
        &format!("/v2/auth?service=x&account=alice&scope=repository:hub.registry.test/library/{marker}:pull"),
        &["-u", &creds],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let entry = issuer_entry(&marker);
    assert_eq!(entry["authorization"], false, "{entry}");
    assert!(entry["query"].get("account").is_none(), "{entry}");
    // containerd's OAuth2 form: sent on as an anonymous GET, answered with access_token
    let marker = unique("credspost").to_lowercase();
    let form = format!("grant_type=password&username=alice&password={}&service=x&client_id=t&scope=repository%3Ahub.registry.test%2Flibrary%2F{marker}%3Apull", var("TEST_PASSWORD"));
    let r = w.get(
        "one.local",
        "/v2/auth",
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/x-www-form-urlencoded",
            "--data",
            &form,
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["access_token"].is_string(), "{}", r.text());
    let entry = issuer_entry(&marker);
    assert_eq!(entry["method"], "GET", "{entry}");
    assert_eq!(entry["authorization"], false, "{entry}");
    assert!(
        !entry.to_string().contains(&var("TEST_PASSWORD")),
        "{entry}"
    );
    // registry requests: a password for the proxy's host is not passed on; tokens are
    let fake_entry = |marker: &str| {
        log_lines("FAKE_LOG")
            .into_iter()
            .find(|l| l.to_string().contains(marker))
            .unwrap_or_else(|| panic!("no upstream request for {marker}"))
    };
    let marker = unique("basic").to_lowercase();
    w.get(
        "one.local",
        &format!("/v2/bare.registry.test/library/{marker}/manifests/latest"),
        &["-u", &creds],
    );
    assert_eq!(fake_entry(&marker)["authorization"], false);
    let marker = unique("bearer").to_lowercase();
    w.get(
        "one.local",
        &format!("/v2/bare.registry.test/library/{marker}/manifests/latest"),
        &["-H", "Authorization: Bearer abc"],
    );
    assert_eq!(fake_entry(&marker)["authorization"], true);
    // and the version check of a mirror request for that registry
    let base = |with_auth: bool| {
        log_lines("FAKE_LOG")
            .into_iter()
            .filter(|l| l["path"] == "/v2/" && (!with_auth || l["authorization"] == true))
            .count()
    };
    let (all_before, auth_before) = (base(false), base(true));
    // (the fake answers 401 without a challenge: a 502 here is right, the count is the point)
    w.get("one.local", "/v2/?ns=bare.registry.test", &["-u", &creds]);
    assert_eq!(
        base(false),
        all_before + 1,
        "the version check went upstream"
    );
    assert_eq!(
        base(true),
        auth_before,
        "Basic credentials reached a non-default registry"
    );
}

/// The `client_id` of a token request for a team name that goes to the hub's issuer on purpose.
const FIXTURE_CHECK: &str = "fixture-check";

/// The team registry's token requests (its issuer's log) whose scopes name `repo`.
fn team_tokens_for(repo: &str) -> Vec<serde_json::Value> {
    log_lines("TEAM_ISSUER_LOG")
        .into_iter()
        .filter(|l| l["query"]["scope"].to_string().contains(repo))
        .collect()
}

/// Asks the team registry's issuer (and only it) for a token: `f` runs a client's pull.
fn pulls_with_a_team_token(client: &str, repo: &str, f: impl FnOnce()) {
    let before = team_tokens_for(repo).len();
    // the proxy's answers from the team registry's remembered anonymous tokens (memo.rs:
    // only ever the team issuer's, for the same request)
    let remembered = || {
        proxy_lines()
            .iter()
            .filter(|l| {
                l["path"] == "/v2/auth"
                    && l["route"] == var("TEAM_URL").as_str()
                    && l["cache"] == "HIT"
            })
            .count()
    };
    let remembered_before = remembered();
    f();
    let after = team_tokens_for(repo);
    assert!(
        after.len() > before || remembered() > remembered_before,
        "{client}: no token for {repo} from the team registry's issuer"
    );
    assert!(
        after[before..].iter().all(|l| l["status"] == 200
            && l["query"]["service"] == serde_json::json!([var("TEAM_ISSUER_SERVICE")])),
        "{client}: {:?}",
        &after[before..]
    );
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn path_routed_pulls_of_another_token_registry_get_its_own_tokens() {
    daemons();
    // The team registry is the path host's second token registry, with its own issuer, key,
    // service and accounts (as ghcr.io and Docker Hub are): a token of the hub's is refused.
    // docker, podman and skopeo ask the host's `/v2/` once and use its realm for every
    // repository, so that realm must not pin the default registry.
    let p = proxy(PROXY);
    let reference = format!("{p}/team.registry.test/team/app:latest");
    let digest = var("DIGEST_HELLO_LATEST");
    let hub_before = log_lines("ISSUER_LOG").len();

    pulls_with_a_team_token("skopeo", "team/app", || {
        let out = tempdir("team-skopeo");
        run(skopeo()
            .args(["copy", "--all", &format!("docker://{reference}")])
            .arg(format!("oci:{}:x", out.display())));
        assert_eq!(oci_layout_digest(&out), digest);
    });

    pulls_with_a_team_token("podman", "team/app", || {
        let root = tempdir("team-podman");
        let digests = podman_pull(&root, &reference);
        assert!(digests.contains(&digest), "{digests}");
        let _ = std::fs::remove_dir_all(&root);
    });

    pulls_with_a_team_token("ctr", "team/app", || {
        assert!(ctr_pull_lists(&unique("teamctr"), &[], &reference, &digest));
    });

    pulls_with_a_team_token("docker", "team/app", || {
        let digests = docker_pull(&tempdir("team-docker"), &reference);
        assert!(digests.contains(&digest), "{digests}");
    });

    // the hub's issuer never saw a name of the team registry (but for the fixture check of
    // the next test, which asks it on purpose)
    assert!(
        !log_lines("ISSUER_LOG")[hub_before..]
            .iter()
            .any(|l| l["query"]["scope"].to_string().contains("team/app")
                && !l["query"]["client_id"].to_string().contains(FIXTURE_CHECK)),
        "a token request for the team registry went to the hub's issuer"
    );

    // mirror mode after it, on the same host: dockerd's registry mirror is the path host,
    // whose default registry is the hub
    let digests = docker_pull(&tempdir("team-mirror"), "hello:latest");
    assert!(digests.contains(&digest), "{digests}");

    // containerd as a mirror of the team registry (`?ns=`) and podman with a prefixed mirror
    let hosts = tempdir("team-hosts");
    std::fs::create_dir_all(hosts.join("team.registry.test")).unwrap();
    std::fs::write(
        hosts.join("team.registry.test").join("hosts.toml"),
        format!("server = \"https://team.registry.test\"\n\n[host.\"https://{p}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"),
    )
    .unwrap();
    pulls_with_a_team_token("ctr as a mirror", "team/app", || {
        assert!(ctr_pull_lists(
            &unique("teammirror"),
            &["--hosts-dir".as_ref(), hosts.as_os_str()],
            "team.registry.test/team/app:latest",
            &digest
        ));
    });
    pulls_with_a_team_token("podman with a mirror", "team/app", || {
        let root = tempdir("team-podman-mirror");
        let _ = podman(&root); // writes its default registries.conf, replaced here
        std::fs::write(
            root.join("registries.conf"),
            format!(
                "unqualified-search-registries = []\n\n[[registry]]\nprefix = \"team.registry.test\"\nlocation = \"team.registry.test\"\n[[registry.mirror]]\nlocation = \"{p}/team.registry.test\"\n"
            ),
        )
        .unwrap();
        let digests = podman_pull(&root, "team.registry.test/team/app:latest");
        assert!(digests.contains(&digest), "{digests}");
        let _ = std::fs::remove_dir_all(&root);
    });
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn a_realm_of_one_registry_does_not_decide_another_s_token() {
    let p = proxy(PROXY);
    // the host's version check is for no registry in particular: its realm names none
    let r = curl(&format!("https://{p}/v2/"), &[]);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            format!(r#"Bearer realm="https://{p}/v2/auth",service="cloudflare-docker-proxy""#)
                .as_str()
        )
    );
    // a mirror request's realm carries its registry (its names have no prefix)
    let r = curl(
        &format!("https://{p}/v2/team/app/manifests/latest?ns=team.registry.test"),
        &[],
    );
    assert_eq!(r.status, 401);
    let www = r.header("www-authenticate").unwrap();
    assert!(
        www.contains(&format!(
            r#"realm="https://{p}/v2/auth?ns=team.registry.test""#
        )) && www.contains(r#"scope="repository:team/app:pull""#),
        "{www}"
    );
    // a realm that names the hub (as this proxy's version check used to) with a scope of the
    // team registry: the prefix decides, the team's issuer answers, and its token is good
    let marker = unique("stale").to_lowercase();
    let r = curl(
        &format!("https://{p}/v2/auth?ns=hub.registry.test&service=cloudflare-docker-proxy&scope=repository:team.registry.test/team/app:pull&client_id={marker}"),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["token"].as_str().unwrap().to_string();
    let entry = log_lines("TEAM_ISSUER_LOG")
        .into_iter()
        .find(|l| l.to_string().contains(&marker))
        .expect("the team registry's issuer was asked");
    assert_eq!(
        entry["query"]["scope"],
        serde_json::json!(["repository:team/app:pull"])
    );
    assert!(!log_lines("ISSUER_LOG")
        .iter()
        .any(|l| l.to_string().contains(&marker)));
    let r = curl(
        &format!("https://{p}/v2/team.registry.test/team/app/manifests/latest"),
        &[
            "-I",
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-H",
            "Accept: application/vnd.oci.image.index.v1+json",
        ],
    );
    assert_eq!(r.status, 200);
    // the hub's token for that name is refused by the team registry: the fixtures differ
    let r = curl(
        &format!("https://{p}/v2/auth?ns=hub.registry.test&scope=repository:team/app:pull&client_id={FIXTURE_CHECK}"),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let hub_token = r.json()["token"].as_str().unwrap().to_string();
    let r = curl(
        &format!("https://{p}/v2/team.registry.test/team/app/manifests/latest"),
        &["-I", "-H", &format!("Authorization: Bearer {hub_token}")],
    );
    assert_eq!(r.status, 401);
    // a registry that needs no token gets one that grants nothing: clients that ask get one
    let r = curl(
        &format!("https://{p}/v2/auth?scope=repository:open.registry.test/library/hello:pull"),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["token"].is_string() && r.json()["access_token"].is_string());
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn no_spelling_gets_a_password_to_another_registry() {
    let p = proxy(PROXY);
    // Basic by any spelling of the scheme: not for the bare registry (not the default)
    let basic = base64(&alice());
    for (i, scheme) in ["Basic\t", "basic  ", "BASIC ", " Basic "]
        .iter()
        .enumerate()
    {
        let marker = format!("{}{i}", unique("spelling").to_lowercase());
        curl(
            &format!("https://{p}/v2/bare.registry.test/library/{marker}/manifests/latest"),
            &["-H", &format!("Authorization: {scheme}{basic}")],
        );
        let entry = log_lines("FAKE_LOG")
            .into_iter()
            .find(|l| l.to_string().contains(&marker))
            .unwrap_or_else(|| panic!("no upstream request for {marker}"));
        assert_eq!(entry["authorization"], false, "{scheme:?}: {entry}");
    }
    // credential fields of a token request by any name, in a form and in a query
    let marker = unique("fields").to_lowercase();
    let fields = "Password=secret1&PASSWORD=secret2&client_secret=secret3&Client_Secret=secret4&refresh_token=secret5&assertion=secret6&code=secret7&username=alice&grant_type=password&client_id=";
    let scope = format!("scope=repository%3Ateam.registry.test%2Fteam%2F{marker}%3Apull");
    let form = format!("{fields}{marker}-form&{scope}");
    let r = curl(
        &format!("https://{p}/v2/auth"),
        &[
            "-H",
            "Content-Type: application/x-www-form-urlencoded",
            "--data",
            &form,
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = curl(
        &format!("https://{p}/v2/auth?{fields}{marker}-query&{scope}"),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    for kind in ["form", "query"] {
        let entry = log_lines("TEAM_ISSUER_LOG")
            .into_iter()
            .find(|l| l.to_string().contains(&format!("{marker}-{kind}")))
            .unwrap_or_else(|| panic!("the team registry's issuer was not asked ({kind})"));
        let text = entry.to_string();
        assert!(!text.contains("secret"), "{kind}: {text}");
        let mut keys: Vec<&str> = entry["query"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(keys, ["client_id", "scope", "service"], "{kind}: {text}");
        assert_eq!(entry["authorization"], false, "{kind}");
    }
}
