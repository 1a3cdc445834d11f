//! The page a browser gets at the proxy's root: which registry this host fronts and
//! copy-paste client recipes with this very host filled in. One self-contained document (no
//! outside fonts, scripts or images), so it loads behind the same walls the proxy is for.

use crate::error::ProxyError;
use crate::routes::{Upstream, DOCKER_HUB};

/// Sent with the page: nothing may be loaded from anywhere, inline style and script only; the
/// search box asks this very origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; connect-src 'self'; form-action 'self'";

/// `LANDING`: what a browser gets at `/`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Landing {
    /// The page with recipes (and a search box where the registry has search).
    #[default]
    Recipes,
    /// The 404 of an unknown path: nothing says a proxy is here.
    Off,
    /// A redirect to the operator's own page.
    Redirect(String),
}

impl Landing {
    pub fn parse(raw: Option<&str>) -> Result<Landing, ProxyError> {
        let bad = |reason: String| ProxyError::Config {
            var: "LANDING",
            reason,
        };
        match raw.map(str::trim) {
            None | Some("recipes") => Ok(Landing::Recipes),
            Some("off") => Ok(Landing::Off),
            Some(url) if url.starts_with("https://") => {
                let parsed = url::Url::parse(url)
                    .ok()
                    .filter(|u| u.host_str().is_some_and(|h| !h.is_empty()))
                    .filter(|u| u.username().is_empty() && u.password().is_none())
                    .ok_or_else(|| bad(format!("{url:?} is not an https:// URL with a host")))?;
                Ok(Landing::Redirect(parsed.to_string()))
            }
            Some(other) => Err(bad(format!(
                "{other:?} is none of \"recipes\", \"off\", or an https:// URL"
            ))),
        }
    }
}

/// Whether an `Accept` header asks for a web page (browsers), not the registry API.
pub fn wants_html(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("text/html")
        })
    })
}

/// An image of that registry to show in the recipes.
fn example_image(upstream: &Upstream, registry: &str) -> &'static str {
    if upstream.docker_hub {
        "library/alpine:latest"
    } else if registry == "registry.k8s.io" || registry == "k8s.gcr.io" {
        "pause:3.10"
    } else {
        "namespace/image:tag"
    }
}

/// `docker.example.com[:port]` of `https://docker.example.com[:port]`.
fn host_of(origin: &str) -> &str {
    origin.split_once("://").map_or(origin, |(_, rest)| rest)
}

/// The page for a proxy reached at `origin` (`https://docker.example.com[:port]`); `search`:
/// with a search box (the registry has a search service, and no login is needed for it).
pub fn page(origin: &str, upstream: &Upstream, search: bool) -> String {
    // the name clients use: `docker.io` for Docker Hub, else `host[:port]` or `ROUTES`' name
    let registry = upstream.name.as_str();
    let host = host_of(origin);
    let image = example_image(upstream, registry);
    let short = image.strip_prefix("library/").unwrap_or(image);
    let plain_http = origin.starts_with("http://");

    let mut recipes = Vec::new();
    let mut pull = format!(
        "docker pull {host}/{image}\npodman pull {host}/{image}\nctr images pull {host}/{image}"
    );
    if upstream.docker_hub {
        pull.push_str(&format!(
            "\n\n# Docker Hub short names work too:\ndocker pull {host}/{short}"
        ));
    }
    recipes.push(("Pull by this host name", String::new(), pull));

    if upstream.docker_hub {
        recipes.push((
            "Docker: registry mirror",
            "/etc/docker/daemon.json, then restart dockerd. Docker only mirrors Docker Hub."
                .to_string(),
            format!(
                "{{\n  \"registry-mirrors\": [\"{origin}\"]\n}}\n\n# then, unchanged:\ndocker pull {short}"
            ),
        ));
    }
    let server = if registry == "docker.io" {
        DOCKER_HUB.to_string()
    } else {
        upstream.base.clone()
    };
    let hosts_toml = format!(
        "server = \"{server}\"\n\n[host.\"{origin}\"]\n  capabilities = [\"pull\", \"resolve\"]"
    );
    recipes.push((
        "containerd: mirror",
        format!("/etc/containerd/certs.d/{registry}/hosts.toml (nerdctl, crictl and ctr --hosts-dir read it too)"),
        hosts_toml.clone(),
    ));
    recipes.push((
        "Podman, Buildah, CRI-O: mirror",
        "/etc/containers/registries.conf (or ~/.config/containers/registries.conf)".to_string(),
        format!(
            "[[registry]]\nprefix = \"{registry}\"\nlocation = \"{registry}\"\n\n[[registry.mirror]]\nlocation = \"{host}\"{}",
            if plain_http { "\ninsecure = true" } else { "" }
        ),
    ));
    recipes.push((
        "Kubernetes nodes (containerd)",
        "On every node: point containerd's CRI plugin at certs.d, write the hosts.toml above, restart containerd. Pods keep their image names."
            .to_string(),
        format!(
            "# containerd 1.x, /etc/containerd/config.toml\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n\n# containerd 2.x\n[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n\nmkdir -p /etc/containerd/certs.d/{registry}\ncat > /etc/containerd/certs.d/{registry}/hosts.toml <<'EOF'\n{hosts_toml}\nEOF\nsystemctl restart containerd"
        ),
    ));

    let lead = format!(
        "A container registry proxy for <strong>{}</strong> (<code>{}</code>). Registry clients use <code>{}/v2/</code>; this page is only for browsers.",
        escape(registry),
        escape(&upstream.base),
        escape(origin)
    );
    document(
        host,
        &format!("registry proxy for {registry}"),
        &lead,
        search.then_some(registry),
        &recipes,
    )
}

/// What the page of a path-routing host lists.
pub struct Registries<'a> {
    /// Every registry of the table, under each of its names.
    pub all: &'a [(String, Upstream)],
    /// The one names without a registry prefix go to (`DEFAULT_REGISTRY`), and its name.
    pub default: Option<(&'a str, &'a Upstream)>,
    /// Whether a search box may be offered (not where logins are needed).
    pub search: bool,
}

/// The page of a path-routing host: every registry of the table, by prefix and as mirrors.
pub fn page_all(origin: &str, table: Registries<'_>) -> String {
    let host = host_of(origin);
    let plain_http = origin.starts_with("http://");
    // one line per upstream, under its first name
    let mut registries: Vec<(&str, &Upstream)> = Vec::new();
    for (name, upstream) in table.all {
        if !registries.iter().any(|(_, u)| u.base == upstream.base) {
            registries.push((name, upstream));
        }
    }
    let default = table.default.map(|(_, d)| d);
    let default_name = table.default.map_or("", |(n, _)| n);
    let mut recipes = Vec::new();
    let mut pull = String::new();
    for (name, upstream) in &registries {
        pull.push_str(&format!(
            "docker pull {host}/{name}/{}\n",
            example_image(upstream, name)
        ));
    }
    if let Some(d) = default {
        let image = example_image(d, default_name);
        pull.push_str(&format!(
            "\n# without a registry prefix: {default_name}\ndocker pull {host}/{}",
            image.strip_prefix("library/").unwrap_or(image)
        ));
    }
    recipes.push(("Pull by registry prefix", String::new(), pull));
    if default.is_some_and(|d| d.docker_hub) {
        recipes.push((
            "Docker: registry mirror",
            "/etc/docker/daemon.json, then restart dockerd. Docker only mirrors Docker Hub."
                .to_string(),
            format!("{{\n  \"registry-mirrors\": [\"{origin}\"]\n}}"),
        ));
    }
    let mut hosts = String::new();
    let mut conf = String::new();
    for (name, upstream) in &registries {
        hosts.push_str(&format!(
            "mkdir -p /etc/containerd/certs.d/{name}\ncat > /etc/containerd/certs.d/{name}/hosts.toml <<'EOF'\nserver = \"{}\"\n\n[host.\"{origin}\"]\n  capabilities = [\"pull\", \"resolve\"]\nEOF\n\n",
            upstream.base
        ));
        conf.push_str(&format!(
            "[[registry]]\nprefix = \"{name}\"\nlocation = \"{name}\"\n\n[[registry.mirror]]\nlocation = \"{host}/{name}\"{}\n\n",
            if plain_http { "\ninsecure = true" } else { "" }
        ));
    }
    recipes.push((
        "containerd: mirror for every registry",
        "One hosts.toml per registry (nerdctl, crictl and ctr --hosts-dir read them); containerd tells the proxy which registry it wants."
            .to_string(),
        hosts.trim_end().to_string(),
    ));
    recipes.push((
        "Podman, Buildah, CRI-O: mirrors",
        "/etc/containers/registries.conf".to_string(),
        conf.trim_end().to_string(),
    ));
    recipes.push((
        "Kubernetes nodes (containerd)",
        "On every node: point containerd's CRI plugin at certs.d, write the hosts.toml files above, restart containerd. Pods keep their image names."
            .to_string(),
        "# containerd 1.x, /etc/containerd/config.toml\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n\n# containerd 2.x\n[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n\nsystemctl restart containerd".to_string(),
    ));
    let names: Vec<String> = registries
        .iter()
        .map(|(n, _)| format!("<code>{}</code>", escape(n)))
        .collect();
    let lead = format!(
        "One host for every registry this proxy serves: {}. Put the registry in front of the image name, or use this host as a mirror. Registry clients use <code>{}/v2/</code>; this page is only for browsers.",
        names.join(", "),
        escape(origin)
    );
    let search = default
        .filter(|d| d.search.is_some() && table.search)
        .map(|_| default_name);
    document(host, "registry proxy", &lead, search, &recipes)
}

/// The search box: the proxy's own `/v1/search`, results with this host's pull command.
fn search_form(registry: &str) -> String {
    let registry = if registry == "docker.io" {
        "Docker Hub"
    } else {
        registry
    };
    format!(
        r#"<section aria-labelledby="search-title"><h2 id="search-title">Search {r}</h2>
<form id="search" action="/v1/search" method="get" role="search"><label class="sr" for="q">Image name</label><input id="q" name="q" type="search" placeholder="nginx, postgres, grafana/grafana" maxlength="256" autocomplete="off" required autofocus><input type="hidden" name="n" value="25"><button type="submit">Search</button></form>
<p id="search-status" role="status" aria-live="polite"></p><ol id="results"></ol></section>
"#,
        r = escape(registry)
    )
}

/// The HTML document around a list of (title, note, code) recipes; `search`: the registry
/// whose search box leads the page.
fn document(
    host: &str,
    title: &str,
    lead_html: &str,
    search: Option<&str>,
    recipes: &[(&str, String, String)],
) -> String {
    let mut sections = search.map(search_form).unwrap_or_default();
    for (i, (title, note, code)) in recipes.iter().enumerate() {
        sections.push_str(&format!(
            "<section><h2>{}</h2>{}<div class=\"code\"><button type=\"button\" data-copy=\"r{i}\">Copy</button><pre id=\"r{i}\"><code>{}</code></pre></div></section>\n",
            escape(title),
            if note.is_empty() { String::new() } else { format!("<p>{}</p>", escape(note)) },
            escape(code),
        ));
    }

    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>{host_e}: {title_e}</title>
<style>
:root {{ color-scheme: light dark; --bg: #fbfbfa; --fg: #1d2023; --muted: #5b6470; --card: #f0f1f3; --accent: #0b63c5; --border: #d9dce1; }}
@media (prefers-color-scheme: dark) {{ :root {{ --bg: #14171a; --fg: #e6e8eb; --muted: #9aa3ad; --card: #1e2328; --accent: #6cb0ff; --border: #2d333a; }} }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; background: var(--bg); color: var(--fg); font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }}
main {{ max-width: 52rem; margin: 0 auto; padding: 2rem 1.25rem 3rem; }}
h1 {{ font-size: 1.6rem; margin: 0 0 .25rem; word-break: break-all; }}
h2 {{ font-size: 1.1rem; margin: 2rem 0 .5rem; }}
p {{ margin: .25rem 0 .75rem; color: var(--muted); overflow-wrap: anywhere; }}
.lead {{ font-size: 1.05rem; color: var(--fg); }}
code, pre {{ font: 14px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }}
.code {{ position: relative; }}
pre {{ margin: 0; padding: .9rem 1rem; background: var(--card); border: 1px solid var(--border); border-radius: 8px; overflow-x: auto; }}
button {{ font: inherit; font-size: .8rem; padding: .15rem .6rem; border-radius: 6px; border: 1px solid var(--border); background: var(--bg); color: var(--fg); cursor: pointer; }}
.code button {{ position: absolute; top: .45rem; right: .45rem; }}
button:hover, button:focus-visible {{ border-color: var(--accent); }}
:focus-visible {{ outline: 2px solid var(--accent); outline-offset: 2px; }}
.sr {{ position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }}
form {{ display: flex; gap: .5rem; }}
form input[type=search] {{ flex: 1; min-width: 0; font: inherit; padding: .45rem .7rem; border-radius: 8px; border: 1px solid var(--border); background: var(--card); color: var(--fg); }}
form button {{ font-size: 1rem; padding: .45rem 1rem; border-radius: 8px; }}
#results {{ list-style: none; padding: 0; margin: 0; }}
#results li {{ padding: .75rem 0; border-bottom: 1px solid var(--border); }}
#results h3 {{ font-size: 1rem; margin: 0; word-break: break-all; }}
#results .meta {{ font-size: .85rem; margin: 0 0 .4rem; }}
.badge {{ font-size: .75rem; padding: 0 .4rem; margin-left: .4rem; border-radius: 4px; border: 1px solid var(--accent); color: var(--accent); font-weight: normal; }}
a {{ color: var(--accent); }}
</style>
</head>
<body data-host="{host_e}">
<main>
<h1>{host_e}</h1>
<p class="lead">{lead_html}</p>
{sections}</main>
<script>
document.addEventListener("click", function (e) {{
  var b = e.target.closest("button[data-copy]");
  if (!b || !navigator.clipboard) return;
  navigator.clipboard.writeText(document.getElementById(b.dataset.copy).textContent).then(function () {{
    b.textContent = "Copied"; setTimeout(function () {{ b.textContent = "Copy"; }}, 1500);
  }}, function () {{}});
}});
var form = document.getElementById("search");
if (form) form.addEventListener("submit", function (e) {{
  e.preventDefault();
  var q = form.q.value.trim(), out = document.getElementById("results"), status = document.getElementById("search-status");
  if (!q) return;
  out.textContent = ""; status.textContent = "Searching…";
  fetch("/v1/search?n=25&q=" + encodeURIComponent(q), {{ headers: {{ Accept: "application/json" }} }})
    .then(function (r) {{ return r.json().then(function (j) {{ return {{ ok: r.ok, status: r.status, j: j }}; }}); }})
    .then(function (a) {{
      if (!a.ok) {{ status.textContent = (a.j.errors && a.j.errors[0] && a.j.errors[0].message) || ("Search failed (" + a.status + ")"); return; }}
      var list = a.j.results || [];
      status.textContent = list.length ? (a.j.num_results || list.length) + " found" + (a.j.num_results > list.length ? ", the first " + list.length + " shown" : "") : "Nothing found for " + q;
      list.forEach(function (it, i) {{
        var li = document.createElement("li"), h = document.createElement("h3");
        h.textContent = it.name;
        if (it.is_official) {{ var b = document.createElement("span"); b.className = "badge"; b.textContent = "official"; h.appendChild(b); }}
        var meta = document.createElement("p"); meta.className = "meta";
        meta.textContent = "\u2605 " + (it.star_count || 0) + (it.description ? " \u00b7 " + it.description : "");
        var code = document.createElement("div"); code.className = "code";
        var copy = document.createElement("button"); copy.type = "button"; copy.dataset.copy = "s" + i; copy.textContent = "Copy";
        var pre = document.createElement("pre"); pre.id = "s" + i;
        var c = document.createElement("code"); c.textContent = "docker pull " + document.body.dataset.host + "/" + it.name;
        pre.appendChild(c); code.appendChild(copy); code.appendChild(pre);
        li.appendChild(h); li.appendChild(meta); li.appendChild(code); out.appendChild(li);
      }});
    }}, function () {{ status.textContent = "Search failed: the proxy did not answer"; }});
}});
</script>
</body>
</html>
"#,
        host_e = escape(host),
        title_e = escape(title),
    )
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Upstream {
        Upstream::parse("T", DOCKER_HUB, None).unwrap()
    }

    #[test]
    fn browsers_want_html_registry_clients_do_not() {
        assert!(wants_html(Some(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(wants_html(Some("TEXT/HTML")));
        assert!(!wants_html(Some("application/json")));
        assert!(!wants_html(Some(
            "application/vnd.oci.image.index.v1+json, */*"
        )));
        assert!(!wants_html(None));
    }

    #[test]
    fn docker_hub_page_has_every_recipe_with_the_host() {
        let p = page("https://docker.example.com", &hub(), true);
        assert!(p.contains("docker pull docker.example.com/library/alpine:latest"));
        assert!(p.contains("docker pull docker.example.com/alpine:latest"));
        assert!(
            p.contains("&quot;registry-mirrors&quot;: [&quot;https://docker.example.com&quot;]")
        );
        assert!(p.contains("/etc/containerd/certs.d/docker.io/hosts.toml"));
        assert!(p.contains("server = &quot;https://registry-1.docker.io&quot;"));
        assert!(p.contains("[host.&quot;https://docker.example.com&quot;]"));
        assert!(p.contains("location = &quot;docker.example.com&quot;"));
        assert!(p.contains("config_path"));
        assert!(!p.contains("http://"), "no plain-http hints on https");
    }

    #[test]
    fn other_registries_get_no_docker_mirror_and_keep_ports() {
        let ghcr = Upstream::parse("T", "https://ghcr.io", None).unwrap();
        let p = page("https://ghcr.example.test:8443", &ghcr, false);
        assert!(p.contains("docker pull ghcr.example.test:8443/namespace/image:tag"));
        assert!(!p.contains("registry-mirrors"));
        assert!(p.contains("/etc/containerd/certs.d/ghcr.io/hosts.toml"));
        assert!(p.contains("prefix = &quot;ghcr.io&quot;"));
    }

    #[test]
    fn path_routing_page_lists_every_registry() {
        let c = crate::testing::path_routing(&[]);
        let p = page_all("https://proxy.example.com", c.landing_registries());
        for needle in [
            "docker pull proxy.example.com/ghcr.io/namespace/image:tag",
            "docker pull proxy.example.com/registry.k8s.io/pause:3.10",
            "docker pull proxy.example.com/alpine:latest",
            "/etc/containerd/certs.d/quay.io/hosts.toml",
            "location = &quot;proxy.example.com/ghcr.io&quot;",
            "&quot;registry-mirrors&quot;: [&quot;https://proxy.example.com&quot;]",
        ] {
            assert!(p.contains(needle), "{needle}");
        }
        // Docker Hub once, under its first name
        assert_eq!(p.matches("certs.d/docker.io/hosts.toml").count(), 1);
        assert!(!p.contains("index.docker.io"));
    }

    #[test]
    fn plain_http_origins_say_so() {
        let p = page("http://localhost:8787", &hub(), true);
        assert!(p.contains("[host.&quot;http://localhost:8787&quot;]"));
        assert!(p.contains("insecure = true"));
    }

    #[test]
    fn a_search_box_leads_where_the_registry_has_search() {
        let p = page("https://docker.example.com:8443", &hub(), true);
        assert!(p.contains("<form id=\"search\" action=\"/v1/search\""));
        assert!(p.contains("Search Docker Hub"));
        assert!(p.contains("data-host=\"docker.example.com:8443\""));
        assert!(p.find("id=\"search\"") < p.find("Pull by this host name"));
        let ghcr = Upstream::parse("T", "https://ghcr.io", None).unwrap();
        assert!(!page("https://ghcr.example.com", &ghcr, false).contains("id=\"search\""));
        assert!(!page("https://docker.example.com", &hub(), false).contains("id=\"search\""));
        // a path-routing host: its default registry's, unless logins are needed
        let key = format!("{{\"a\": {{\"sha256\": \"{}\"}}}}", "0".repeat(64));
        let secret = "s".repeat(40);
        let path = [
            ("CUSTOM_DOMAIN", "example.com"),
            ("PATH_ROUTING", "proxy.example.com"),
        ];
        let c = crate::testing::config(&path);
        assert!(
            page_all("https://proxy.example.com", c.landing_registries()).contains("id=\"search\"")
        );
        let mut with_users = path.to_vec();
        with_users.extend([
            ("PROXY_USERS", key.as_str()),
            ("PROXY_TOKEN_SECRET", &secret),
        ]);
        let c = crate::testing::config(&with_users);
        assert!(
            !page_all("https://proxy.example.com", c.landing_registries())
                .contains("id=\"search\"")
        );
    }

    #[test]
    fn markup_in_names_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
