use super::super::load;
use super::*;

/// Loads `text` as the configuration file, with no environment.
fn read(text: &str) -> Result<Config, Vec<Problem>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("previewd.toml");
    std::fs::write(&path, text).unwrap();
    load(Some(&path), Vec::new())
}

fn keys(problems: &[Problem]) -> Vec<&str> {
    problems.iter().map(|p| p.key.as_str()).collect()
}

#[test]
fn a_single_project_file_is_a_pool_of_one() {
    let c =
        read("[previews]\nproject = \"acme/web\"\nttl_hours = 12\n[naming]\nprefix = \"web\"\n")
            .unwrap();
    assert!(c.projects.is_empty());
    let pool = c.projects_served();
    let only: Vec<_> = pool.iter().collect();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].name, "acme/web");
    assert_eq!(only[0].template.naming.prefix, "web");
    assert_eq!(
        only[0].lifetime.ttl,
        std::time::Duration::from_secs(12 * 3600)
    );
    assert_eq!(pool.resolve(None).unwrap().name, "acme/web");
}

#[test]
fn each_project_starts_from_the_top_level_sections_and_overrides_what_it_sets() {
    let c = read(
        r#"
[previews]
ttl_hours = 24
[naming]
domain = "preview.example.com"
host_pattern = "issue-{issue}"
[container]
image = "registry.example.com/web:{commit_sha}"
port = 3000
env = { MODE = "preview" }

[[projects]]
project = "acme/web"

[[projects]]
project = "acme/api"
ttl_hours = 48
max_lifetime_hours = 100
[projects.naming]
prefix = "api"
host_pattern = "api-{issue}"
[projects.container]
image = "registry.example.com/api:{commit_sha}"
env = { RUST_LOG = "info" }
"#,
    )
    .unwrap();
    let [web, api] = c.project_list().try_into().unwrap();
    assert_eq!(web.project, "acme/web");
    assert_eq!(web.previews.ttl_hours, 24);
    assert_eq!(web.naming.prefix, "pv");
    assert_eq!(web.naming.host_pattern, "issue-{issue}");
    assert_eq!(web.container.port, 3000);
    assert_eq!(api.previews.ttl_hours, 48);
    assert_eq!(api.previews.max_lifetime_hours, 100);
    assert_eq!(api.naming.prefix, "api");
    assert_eq!(api.naming.domain, "preview.example.com");
    assert_eq!(api.naming.host_pattern, "api-{issue}");
    assert_eq!(api.container.image, "registry.example.com/api:{commit_sha}");
    // Inherited key by key; a table a project sets replaces the whole one.
    assert_eq!(api.container.port, 3000);
    assert_eq!(api.container.env.keys().collect::<Vec<_>>(), ["RUST_LOG"]);
    // The sweep runs at least every sixth of the shortest TTL.
    assert_eq!(c.gc_interval(), std::time::Duration::from_secs(600));
    let pool = c.projects_served();
    assert!(pool.resolve(None).is_err());
    assert_eq!(pool.prefixes(), ["api", "pv"]);
    let scope = c.policy_scope();
    assert_eq!(scope.prefix, "pv");
    assert_eq!(scope.other_prefixes, ["api"]);
}

#[test]
fn previews_project_next_to_projects_is_refused_by_name() {
    let e = read("[previews]\nproject = \"acme/web\"\n[[projects]]\nproject = \"acme/api\"\n")
        .unwrap_err();
    assert_eq!(keys(&e), ["previews.project"], "{e:?}");
    assert!(e[0].message.contains("[[projects]]"), "{e:?}");
}

#[test]
fn every_bad_entry_is_reported_with_its_index_and_key() {
    let e = read(
        r#"
[[projects]]
project = "acme/web"
colour = "red"
[projects.naming]
prefix = "Not-Valid"

[[projects]]
project = "ACME/web"

[[projects]]
ttl_hours = 5

[[projects]]
project = "no-slash"
ttl_hours = 0
[projects.container]
log_retention_days = 2
port = "eighty"
"#,
    )
    .unwrap_err();
    let k = keys(&e);
    for want in [
        "projects[0].colour",
        "projects[0].naming.prefix",
        "projects[1].project",
        "projects[2].project",
        "projects[3].project",
        "projects[3].ttl_hours",
        "projects[3].container.log_retention_days",
        "projects[3].container.port",
    ] {
        assert!(k.contains(&want), "{want} missing from {e:#?}");
    }
    let dup = e.iter().find(|p| p.key == "projects[1].project").unwrap();
    assert!(dup.message.contains("twice"), "{dup:?}");
}

#[test]
fn a_bad_top_level_key_is_reported_once_not_once_per_project() {
    let e = read(
        "[container]\nport = 0\n[[projects]]\nproject = \"acme/web\"\n[[projects]]\nproject = \"acme/api\"\n",
    )
    .unwrap_err();
    assert_eq!(keys(&e), ["container.port"], "{e:?}");
}

#[test]
fn a_retired_project_is_kept_for_teardown_but_takes_no_dispatch() {
    let c = read(
        "[[projects]]\nproject = \"acme/web\"\n[[projects]]\nproject = \"acme/old\"\nretired = true\n",
    )
    .unwrap();
    let pool = c.projects_served();
    assert!(pool.template("acme/old").is_some());
    let refusal = pool.resolve(Some("acme/old")).unwrap_err();
    assert_eq!(refusal.field, "project");
}
