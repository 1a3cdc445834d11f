//! End to end with real clients: skopeo, podman, containerd's ctr and docker pull through the
//! proxy (HTTPS on a non-default port, token auth, blob redirects to another host) and get
//! exactly the upstream's digests. Run by `tests/run.sh`, which starts the daemons.

use crate::common::*;

/// A private image no one has pulled (pushed to the hub, `big_mib` MiB in a layer of its own):
/// only a client whose login reached the hub's token service can pull it. Its reference
/// through the proxy, its digest.
fn private_image(name: &str, big_mib: u32) -> (String, String) {
    let repo = format!("{}{}", var("PRIVATE_PREFIX"), unique(name));
    let (_, digest) = push_unique(&var("HUB_URL"), &alice(), &repo, big_mib);
    (
        format!("{}/{repo}:latest", proxy("docker.example.test")),
        digest,
    )
}

/// That the hub's token service gave alice, by her password, a token for `reference`'s
/// repository: the client's credentials were used (the issuer logs its requests before it
/// answers them).
fn alice_logged_in_for(reference: &str) {
    let repo = reference
        .split_once('/')
        .unwrap()
        .1
        .split(':')
        .next()
        .unwrap();
    let issued: Vec<_> = log_lines("ISSUER_LOG")
        .into_iter()
        .filter(|l| l.to_string().contains(&format!("repository:{repo}:")))
        .collect();
    assert!(
        issued
            .iter()
            .any(|l| l["user"] == var("TEST_USER").as_str() && l["status"] == 200),
        "no token for {repo} by alice's login: {issued:?}"
    );
}

/// (reference path, digest key): an OCI index, a Docker manifest list, a multi-layer image.
const IMAGES: [(&str, &str); 3] = [
    ("library/hello:latest", "DIGEST_HELLO_LATEST"),
    ("library/hello:v2s2", "DIGEST_HELLO_V2S2"),
    ("library/multi:latest", "DIGEST_MULTI"),
];

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn skopeo_copies_every_image_kind_with_upstream_digests() {
    for host in ["docker.example.test", "open.example.test"] {
        for (image, key) in IMAGES {
            let dir = tempdir("skopeo");
            let src = format!("docker://{}/{image}", proxy(host));
            run(skopeo()
                .args(["copy", "--all", &src])
                .arg(format!("dir:{}", dir.display())));
            let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
            assert_eq!(
                format!("sha256:{}", sha256_hex(&manifest)),
                var(key),
                "{src}"
            );
        }
    }
    // one architecture out of the index
    let dir = tempdir("skopeo-arm");
    run(skopeo()
        .args(["--override-arch", "arm64", "copy"])
        .arg(format!(
            "docker://{}/library/hello:latest",
            proxy("docker.example.test")
        ))
        .arg(format!("dir:{}", dir.display())));
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    assert_eq!(
        format!("sha256:{}", sha256_hex(&manifest)),
        var("DIGEST_HELLO_ARM64")
    );
    // the short form Docker Hub users type: `hello` is `library/hello`
    let out = run(skopeo().args(["inspect", "--raw"]).arg(format!(
        "docker://{}/hello:latest",
        proxy("docker.example.test")
    )));
    assert_eq!(
        format!("sha256:{}", sha256_hex(&out.stdout)),
        var("DIGEST_HELLO_LATEST")
    );
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn podman_pulls_through_the_proxy() {
    let root = tempdir("podman");
    for (image, key) in IMAGES {
        let reference = format!("{}/{image}", proxy("docker.example.test"));
        run(podman(&root).args(["pull", "-q", &reference]));
        // tags sharing a config share an image: look for this reference's digest among them
        let out = run(podman(&root).args([
            "image",
            "inspect",
            "--format",
            "{{.RepoDigests}}",
            &reference,
        ]));
        let digests = String::from_utf8_lossy(&out.stdout).to_string();
        let repo = reference.rsplit_once(':').unwrap().0;
        assert!(
            digests.contains(&format!("{repo}@{}", var(key))),
            "{reference}: {digests}"
        );
    }
    let short = format!("{}/hello", proxy("docker.example.test"));
    run(podman(&root).args(["pull", "-q", &short]));
    let out = run(podman(&root).args(["image", "inspect", "--format", "{{.RepoDigests}}", &short]));
    let digests = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(digests.contains(&var("DIGEST_HELLO_LATEST")), "{digests}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn containerd_pulls_and_unpacks_through_the_proxy() {
    daemons();
    let ns = unique("e2e");
    for (image, key) in IMAGES {
        let reference = format!("{}/{image}", proxy("docker.example.test"));
        run(ctr(&ns).args(["images", "pull", &reference]));
        let out = run(ctr(&ns).args(["images", "ls"]));
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(reference.as_str()))
            .unwrap_or_else(|| panic!("{reference} not in\n{text}"));
        assert_eq!(
            line.split_whitespace().nth(2),
            Some(var(key).as_str()),
            "{line}"
        );
    }
    // the layers were unpacked into a snapshot: the image is usable, not just fetched
    let out = run(ctr(&ns).args(["snapshots", "ls"]));
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() > 1);
    // with credentials (containerd posts an OAuth2 form to /v2/auth): a private image, which
    // only they can read
    let (reference, digest) = private_image("ctrlogin", 0);
    assert!(ctr_pull_lists(
        &ns,
        &["--user".as_ref(), alice().as_ref()],
        &reference,
        &digest
    ));
    alice_logged_in_for(&reference);
    let out = run(ctr(&ns).args(["images", "ls", "-q"]));
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    for r in listed.lines() {
        run(ctr(&ns).args(["images", "rm", r]));
    }
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn docker_pulls_and_logs_in_through_the_proxy() {
    daemons();
    let config = tempdir("docker");
    let host = proxy("docker.example.test");
    for (image, key) in IMAGES {
        let reference = format!("{host}/{image}");
        run(docker(&config).args(["pull", "-q", &reference]));
        let out = run(docker(&config).args([
            "image",
            "inspect",
            "--format",
            "{{join .RepoDigests \",\"}}",
            &reference,
        ]));
        let digests = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            digests.contains(&format!(
                "{host}/{}@{}",
                image.split(':').next().unwrap(),
                var(key)
            )),
            "{reference}: {digests}"
        );
    }
    // short form
    run(docker(&config).args(["pull", "-q", &format!("{host}/hello")]));
    // docker login through the proxy: right password in, wrong one refused with 401
    let login = |password: &str| docker_login(&config, &host, &var("TEST_USER"), password);
    let ok = login(&var("TEST_PASSWORD"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("Login Succeeded"));
    let bad = login("not-the-password");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr).to_lowercase();
    assert!(err.contains("401") || err.contains("unauthorized"), "{err}");
    // logged in, docker pulls with the stored credentials: a private image with a 20 MiB
    // layer, which only they can read
    let (reference, digest) = private_image("dockerlogin", 20);
    let pulled = docker_pull(&config, &reference);
    assert!(pulled.contains(&digest), "{pulled}");
    alice_logged_in_for(&reference);
    for image in [
        "library/hello:latest",
        "library/hello:v2s2",
        "library/multi:latest",
        "hello:latest",
    ] {
        let _ = docker(&config)
            .args(["rmi", "-f", &format!("{host}/{image}")])
            .output();
    }
}

#[test]
#[ignore = "needs the e2e harness: tests/run.sh"]
fn private_repositories_need_their_own_registrys_login() {
    let private = var("PRIVATE_PREFIX");
    let (alice, bob) = (alice(), bob());
    let hub = format!("{}/{private}hello:latest", proxy("docker.example.test"));
    let team = format!("{}/{private}app:latest", proxy("team.example.test"));
    // anonymous clients are refused by both registries
    for reference in [&hub, &team] {
        refused(inspect(reference, None), &["unauthorized", "denied"]);
    }
    // each registry's own account reads it through its host
    assert_eq!(inspect(&hub, Some(&alice)), Ok(var("DIGEST_HELLO_LATEST")));
    assert_eq!(inspect(&team, Some(&bob)), Ok(var("DIGEST_MULTI")));
    // and not with the other registry's account
    refused(
        inspect(&team, Some(&alice)),
        &["unauthorized: invalid username or password"],
    );
    // a path-routing host gives a login to its default registry (the hub) only: alice reads
    // the hub's private image, and the team registry's stays closed even to bob, whose
    // password never leaves for it
    let path_host = proxy("proxy.example.test");
    assert_eq!(
        inspect(&format!("{path_host}/{private}hello:latest"), Some(&alice)),
        Ok(var("DIGEST_HELLO_LATEST"))
    );
    let before = log_lines("TEAM_ISSUER_LOG").len();
    refused(
        inspect(
            &format!("{path_host}/team.registry.test/{private}app:latest"),
            Some(&bob),
        ),
        &["unauthorized: authentication required"],
    );
    let asked = &log_lines("TEAM_ISSUER_LOG")[before..];
    assert!(
        !asked.is_empty(),
        "the team registry's issuer was not asked"
    );
    assert!(
        asked.iter().all(|l| l["authorization"] == false),
        "{asked:?}"
    );
}
