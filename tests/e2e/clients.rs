//! End to end with real clients: skopeo, podman, containerd's ctr and docker pull through the
//! proxy (HTTPS on a non-default port, token auth, blob redirects to another host) and get
//! exactly the upstream's digests. Run by `tests/run.sh`, which starts the daemons.

use crate::common::*;

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
    // with credentials (containerd posts an OAuth2 form to /v2/auth)
    let creds = format!("{}:{}", var("TEST_USER"), var("TEST_PASSWORD"));
    run(ctr(&ns).args([
        "images",
        "pull",
        "--user",
        &creds,
        &format!("{}/library/multi:latest", proxy("docker.example.test")),
    ]));
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
    let login = |password: &str| {
        let mut c = docker(&config);
        c.args([
            "login",
            &host,
            "--username",
            &var("TEST_USER"),
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
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
    // logged in, docker pulls with the stored credentials
    run(docker(&config).args(["pull", "-q", &format!("{host}/library/big:latest")]));
    for image in [
        "library/hello:latest",
        "library/hello:v2s2",
        "library/multi:latest",
        "library/big:latest",
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
    let alice = format!("{}:{}", var("TEST_USER"), var("TEST_PASSWORD"));
    let bob = format!("{}:{}", var("TEAM_USER"), var("TEAM_PASSWORD"));
    let inspect = |reference: &str, creds: Option<&str>| {
        let mut c = skopeo();
        c.args(["inspect", "--raw"]);
        if let Some(creds) = creds {
            c.args(["--creds", creds]);
        }
        c.arg(format!("docker://{reference}"));
        c
    };
    let hub = format!("{}/{private}hello:latest", proxy("docker.example.test"));
    let team = format!("{}/{private}app:latest", proxy("team.example.test"));
    // anonymous clients are refused by both registries
    for reference in [&hub, &team] {
        let err = run_fails(&mut inspect(reference, None));
        assert!(
            err.contains("unauthorized") || err.contains("denied"),
            "{reference}: {err}"
        );
    }
    // each registry's own account reads it through its host
    let out = run(&mut inspect(&hub, Some(&alice)));
    assert_eq!(
        format!("sha256:{}", sha256_hex(&out.stdout)),
        var("DIGEST_HELLO_LATEST")
    );
    let out = run(&mut inspect(&team, Some(&bob)));
    assert_eq!(
        format!("sha256:{}", sha256_hex(&out.stdout)),
        var("DIGEST_MULTI")
    );
    // and not with the other registry's account
    run_fails(&mut inspect(&team, Some(&alice)));
    // a path-routing host gives a login to its default registry (the hub) only: alice reads
    // the hub's private image, and the team registry's stays closed even to bob, whose
    // password never leaves for it
    let path_host = proxy("proxy.example.test");
    let out = run(&mut inspect(
        &format!("{path_host}/{private}hello:latest"),
        Some(&alice),
    ));
    assert_eq!(
        format!("sha256:{}", sha256_hex(&out.stdout)),
        var("DIGEST_HELLO_LATEST")
    );
    let before = log_lines("TEAM_ISSUER_LOG").len();
    run_fails(&mut inspect(
        &format!("{path_host}/team.registry.test/{private}app:latest"),
        Some(&bob),
    ));
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
