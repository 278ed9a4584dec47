use super::*;
use crate::naming::{
    NamingConfig, ResourceNames, family_prefix, host_label_candidates, log_group_prefix,
    slug_candidates,
};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::time::Duration;

fn project(name: &str, naming: NamingConfig, retired: bool) -> Project {
    Project {
        name: name.into(),
        template: Arc::new(Template {
            naming,
            ..Template::default()
        }),
        lifetime: Lifetime {
            ttl: Duration::from_secs(3600),
            max_lifetime: Duration::from_secs(7200),
        },
        retired,
    }
}

fn two() -> Projects {
    Projects::new(vec![
        project("acme/web", NamingConfig::default(), false),
        project("acme/api", NamingConfig::default(), false),
    ])
    .unwrap()
}

#[test]
fn a_lone_project_needs_no_name_in_a_dispatch() {
    let one = Projects::new(vec![project("acme/web", NamingConfig::default(), false)]).unwrap();
    assert_eq!(one.resolve(None).unwrap().name, "acme/web");
    assert_eq!(one.resolve(Some("  ")).unwrap().name, "acme/web");
    assert_eq!(one.resolve(Some("ACME/Web")).unwrap().name, "acme/web");
}

#[test]
fn several_projects_need_the_name_and_the_refusal_says_which() {
    let e = two().resolve(None).unwrap_err();
    assert_eq!(e.field, "project");
    assert!(e.rule.contains("more than one project"), "{e}");
    assert!(e.rule.contains("acme/web, acme/api"), "{e}");
    assert_eq!(two().resolve(Some("acme/api")).unwrap().name, "acme/api");
    let e = two().resolve(Some("acme/shop")).unwrap_err();
    assert_eq!(e.field, "project");
    assert!(e.rule.contains("not a configured project"), "{e}");
}

#[test]
fn a_retired_project_takes_no_dispatch_but_keeps_its_template() {
    let p = Projects::new(vec![
        project("acme/web", NamingConfig::default(), false),
        project("acme/old", NamingConfig::default(), true),
    ])
    .unwrap();
    let e = p.resolve(Some("acme/old")).unwrap_err();
    assert!(e.rule.contains("retired"), "{e}");
    assert!(p.template("acme/old").is_some());
    // Tearing down is what retiring is for: a destroy may name it.
    assert_eq!(
        p.resolve_for(Some("acme/old"), "destroy").unwrap().name,
        "acme/old"
    );
    assert!(p.resolve_for(Some("acme/old"), "deploy").is_err());
    // One open project left, but two configured: the name is still needed,
    // so that retiring a project never reroutes a dispatch meant for it.
    assert!(p.resolve(None).is_err());
}

#[test]
fn a_pool_is_never_empty_and_holds_a_name_once() {
    assert_eq!(Projects::new(vec![]), Err(ProjectsError::Empty));
    let dup = Projects::new(vec![
        project("acme/web", NamingConfig::default(), false),
        project("Acme/Web", NamingConfig::default(), false),
    ]);
    assert_eq!(dup, Err(ProjectsError::Duplicate("Acme/Web".into())));
}

#[test]
fn unknown_projects_get_no_template_unless_the_pool_is_uniform() {
    assert!(two().template("acme/shop").is_none());
    let u = Projects::uniform(Arc::new(Template::default()));
    assert!(u.template("anyone/at-all").is_some());
    assert_eq!(u.prefixes(), vec!["pv".to_string()]);
}

#[test]
fn prefixes_are_listed_once_each() {
    let naming = |prefix: &str| NamingConfig {
        prefix: prefix.into(),
        ..NamingConfig::default()
    };
    let p = Projects::new(vec![
        project("a/one", naming("web"), false),
        project("a/two", naming("api"), false),
        project("a/three", naming("web"), false),
    ])
    .unwrap();
    assert_eq!(p.prefixes(), vec!["api".to_string(), "web".to_string()]);
}

/// A naming configuration as a project might set it.
fn any_naming() -> impl Strategy<Value = NamingConfig> {
    (
        prop_oneof![Just("pv"), Just("pvx"), Just("web"), Just("p")],
        prop_oneof![Just("preview.example.com"), Just("a.preview.example.com")],
        prop_oneof![
            Just("issue-{issue}-preview"),
            Just("web-{issue}"),
            Just("{branch_slug}")
        ],
    )
        .prop_map(|(prefix, domain, host)| NamingConfig {
            prefix: prefix.into(),
            domain: domain.into(),
            host_pattern: host.into(),
            fallback_host_pattern: "{slug}-preview".into(),
        })
}

proptest! {
    /// Previews of two projects, allocated as the store does (the first
    /// slug and host label no row of any project holds), never share a
    /// resource name or host, and no project's listing prefix picks up
    /// another prefix's resources.
    #[test]
    fn names_never_collide_across_projects(
        a in any_naming(),
        b in any_naming(),
        branches in proptest::collection::vec(
            prop_oneof![Just("qanote/issue-42"), Just("qanote-issue-42"), Just("main"), Just("feature/x")],
            1..6,
        ),
    ) {
        let mut slugs = BTreeSet::new();
        let mut labels = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for branch in &branches {
            for naming in [&a, &b] {
                let slug = slug_candidates(branch).find(|s| !slugs.contains(s)).unwrap();
                slugs.insert(slug.clone());
                let label = host_label_candidates(naming, branch, &slug)
                    .into_iter()
                    .find(|l| !labels.contains(l))
                    .unwrap();
                labels.insert(label.clone());
                let n = ResourceNames::new(naming, &slug, &label);
                // Each kind is its own namespace (a family and its target
                // group may share a name).
                for (kind, name) in [("family", &n.family), ("target group", &n.target_group), ("log group", &n.log_group), ("host", &n.host)] {
                    prop_assert!(seen.insert((kind, name.clone())), "{kind} {name} twice");
                }
                for other in [&a, &b].into_iter().filter(|o| o.prefix != naming.prefix) {
                    prop_assert!(!n.family.starts_with(&family_prefix(&other.prefix)));
                    prop_assert!(!n.target_group.starts_with(&family_prefix(&other.prefix)));
                    prop_assert!(!n.log_group.starts_with(&log_group_prefix(&other.prefix)));
                }
            }
        }
    }
}

proptest! {
    /// A name under any of the prefixes is under their common prefix, so
    /// one listing with it and a filter loses nothing.
    #[test]
    fn the_common_prefix_covers_every_prefix(
        prefixes in proptest::collection::vec("[a-c]{1,3}-", 1..4),
        tail in "[a-z0-9-]{0,6}",
        pick in 0usize..4,
    ) {
        let common = common_prefix(&prefixes);
        let name = format!("{}{tail}", prefixes[pick % prefixes.len()]);
        prop_assert!(under_any(&name, &prefixes));
        prop_assert!(name.starts_with(&common));
        for p in &prefixes {
            prop_assert!(p.starts_with(&common));
        }
    }
}
