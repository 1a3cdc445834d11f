//! `wrangler deploy --dry-run` with the configuration the README tells users to write (custom
//! domains, CUSTOM_DOMAIN, a ROUTES table), so a configuration error shows up here and not on
//! a user's first deploy. (`tests/run.sh` also dry-runs the repository's own wrangler.toml,
//! build command included.) Run by `tests/run.sh`.

use crate::common::*;
use std::process::Command;

#[test]
#[ignore = "needs the release build: tests/run.sh"]
fn wrangler_accepts_the_readme_configuration() {
    let repo = var("REPO");
    let dir = tempdir("deploy");
    let original = std::fs::read_to_string(format!("{repo}/wrangler.toml")).unwrap();
    // the repository's file, with the README's edits: routes on top, a domain, a ROUTES table;
    // the build already ran (tests/run.sh), so point at its output instead of rebuilding
    let mut config = String::from(
        r#"routes = [
  { pattern = "docker.example.com", custom_domain = true },
  { pattern = "ghcr.example.com", custom_domain = true },
]
"#,
    );
    let mut edited = vec![];
    for line in original.lines() {
        let new = match line {
            l if l.starts_with("main = ") => format!("main = \"{repo}/build/worker/shim.mjs\""),
            l if l.starts_with("command = ") => "command = \"true\"".into(),
            "CUSTOM_DOMAIN = \"\"" => "CUSTOM_DOMAIN = \"example.com\"".into(),
            "ROUTES = \"\"" => {
                r#"ROUTES = { "hub.example.org" = "https://registry-1.docker.io", "mine.example.org" = { upstream = "https://registry.example.org", docker_hub = false } }"#
                    .into()
            }
            l => l.to_string(),
        };
        if new != line {
            edited.push(line.split(' ').next().unwrap().to_string());
        }
        config.push_str(&new);
        config.push('\n');
    }
    // every edit found its line in the repository's file
    assert_eq!(
        edited,
        ["main", "command", "CUSTOM_DOMAIN", "ROUTES"],
        "{original}"
    );
    std::fs::write(dir.join("wrangler.toml"), &config).unwrap();
    let out = run(Command::new(format!("{repo}/node_modules/.bin/wrangler"))
        .args(["deploy", "--dry-run", "--outdir"])
        .arg(dir.join("out"))
        .arg("--config")
        .arg(dir.join("wrangler.toml"))
        .current_dir(&dir)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CI", "true"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Total Upload"), "{text}");
    // the vars as the Worker gets them (wrangler shortens long values): the domain, and the
    // table a JSON object, not a string
    assert!(
        text.contains("env.CUSTOM_DOMAIN (\"example.com\")"),
        "CUSTOM_DOMAIN binding: {text}"
    );
    assert!(
        text.contains("env.ROUTES ({\"hub.example.org\":\"https://registry-"),
        "ROUTES binding: {text}"
    );
    assert!(!text.to_lowercase().contains("warning"), "{text}");
    assert!(dir.join("out").read_dir().unwrap().count() > 0);
}
