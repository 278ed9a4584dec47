use super::*;
use crate::key::validate_branch;
use proptest::prelude::*;
use std::collections::HashSet;

fn cfg() -> NamingConfig {
    NamingConfig::default()
}

/// What the store does: the first candidate nobody holds yet.
fn allocate(taken: &mut HashSet<String>, candidates: impl IntoIterator<Item = String>) -> String {
    let s = candidates
        .into_iter()
        .find(|c| !taken.contains(c))
        .expect("candidates never run out");
    taken.insert(s.clone());
    s
}

fn names_for(branches: &[String]) -> Vec<ResourceNames> {
    let (mut slugs, mut hosts) = (HashSet::new(), HashSet::new());
    branches
        .iter()
        .map(|b| {
            let slug = allocate(&mut slugs, slug_candidates(b));
            let host = allocate(&mut hosts, host_label_candidates(&cfg(), b, &slug));
            ResourceNames::new(&cfg(), &slug, &host)
        })
        .collect()
}

fn assert_all_distinct(names: &[ResourceNames]) {
    let fields: [fn(&ResourceNames) -> &str; 4] = [
        |n| &n.family,
        |n| &n.target_group,
        |n| &n.log_group,
        |n| &n.host,
    ];
    for f in fields {
        let set: HashSet<&str> = names.iter().map(f).collect();
        assert_eq!(set.len(), names.len(), "a name is shared");
    }
}

fn valid_branch() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9/._@#!%+=-]{1,120}".prop_filter("git ref rules", |b| validate_branch(b).is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn every_derived_name_satisfies_its_aws_rule(branch in valid_branch()) {
        let slug = slug_candidates(&branch).next().unwrap();
        prop_assert!(is_slug(&slug), "slug {slug:?}");
        for host in host_label_candidates(&cfg(), &branch, &slug) {
            prop_assert!(is_dns_label(&host), "host label {host:?}");
            let n = ResourceNames::new(&cfg(), &slug, &host);
            prop_assert!(is_target_group_name(&n.target_group), "tg {:?}", n.target_group);
            prop_assert!(is_ecs_name(&n.family) && is_ecs_name(&n.service));
            prop_assert!(is_log_group_name(&n.log_group));
            prop_assert!(n.host.len() <= 253);
        }
        // Later candidates (taken after a collision) obey the rules too.
        for slug in slug_candidates(&branch).take(3) {
            prop_assert!(is_slug(&slug), "slug {slug:?}");
        }
    }

    #[test]
    fn two_different_branches_never_share_a_name(a in valid_branch(), b in valid_branch()) {
        prop_assume!(a != b);
        assert_all_distinct(&names_for(&[a, b]));
    }

    #[test]
    fn every_name_is_found_by_the_listing_prefixes(
        prefix in "[a-z][a-z0-9]{0,7}", branch in valid_branch()
    ) {
        // The sweep and the observer list by these prefixes (and the IAM
        // policy is scoped to them): a name outside them would be invisible.
        let cfg = NamingConfig { prefix: prefix.clone(), ..cfg() };
        let slug = slug_candidates(&branch).next().unwrap();
        let host = host_label_candidates(&cfg, &branch, &slug).remove(0);
        let n = ResourceNames::new(&cfg, &slug, &host);
        let ours = family_prefix(&prefix);
        prop_assert!(n.family.starts_with(&ours) && n.service.starts_with(&ours));
        prop_assert!(n.target_group.starts_with(&ours), "tg {:?}", n.target_group);
        prop_assert!(n.log_group.starts_with(&log_group_prefix(&prefix)));
        prop_assert_eq!(&n.log_group, &log_group_name(&n.family));
    }

    #[test]
    fn a_long_shared_prefix_still_gives_distinct_names(
        prefix in "[a-z0-9]{30,90}", a in "[a-z0-9]{1,10}", b in "[a-z0-9]{1,10}"
    ) {
        prop_assume!(a != b);
        assert_all_distinct(&names_for(&[format!("{prefix}/{a}"), format!("{prefix}/{b}")]));
    }
}

#[test]
fn derivation_is_injective_over_a_large_adversarial_set() {
    let mut branches = Vec::new();
    for i in 0..5_000 {
        let long = "x".repeat(80);
        branches.push(format!("feature/Foo{i}"));
        branches.push(format!("feature-foo{i}"));
        branches.push(format!("FEATURE/foo{i}"));
        branches.push(format!("qanote/issue-{i}"));
        branches.push(format!("fix/issue-{i}"));
        branches.push(format!("{long}/{i}"));
        branches.push(format!("{long}-{i}"));
    }
    let names = names_for(&branches);
    assert_eq!(names.len(), 35_000);
    assert_all_distinct(&names);
}

#[test]
fn issue_branch_gets_the_predictable_host() {
    let n = names_for(&["qanote/issue-42".to_string()]);
    assert_eq!(n[0].host, "issue-42-preview.preview.example.com");
    assert_eq!(n[0].family, "pv-qanote-issue-42");
    assert_eq!(n[0].log_group, "/ecs/pv-qanote-issue-42");
}

#[test]
fn second_branch_for_the_same_issue_falls_back_to_its_slug() {
    let n = names_for(&["qanote/issue-42".into(), "fix/issue-42".into()]);
    assert_eq!(n[1].host, "fix-issue-42-preview.preview.example.com");
}

#[test]
fn branch_without_issue_uses_the_slug() {
    let n = names_for(&["feature/Login-Page".into()]);
    assert_eq!(n[0].host, "feature-login-page-preview.preview.example.com");
}

#[test]
fn look_alike_branches_get_different_slugs() {
    let n = names_for(&["feature/Foo".into(), "feature-foo".into()]);
    assert_eq!(n[0].family, "pv-feature-foo");
    assert_ne!(n[1].family, n[0].family);
    assert!(n[1].family.starts_with("pv-feature-foo-"));
}

#[test]
fn long_names_are_cut_to_the_limit_with_a_hash() {
    let tg = shorten(&format!("pv-{}", "a".repeat(40)), TARGET_GROUP_MAX, 10);
    assert_eq!(tg.len(), TARGET_GROUP_MAX);
    assert!(is_target_group_name(&tg));
    assert_eq!(shorten("pv-short", TARGET_GROUP_MAX, 10), "pv-short");
}

#[test]
fn issue_number_takes_the_last_issue_mention() {
    assert_eq!(issue_number("qanote/issue-42"), Some(42));
    assert_eq!(issue_number("Issue_7/retry-issue/9"), Some(9));
    assert_eq!(issue_number("feature/login"), None);
    assert_eq!(issue_number("issues-list"), None);
}

#[test]
fn naming_config_reports_every_problem_with_its_key() {
    let bad = NamingConfig {
        prefix: "Preview-".into(),
        domain: "-bad-.com".into(),
        host_pattern: "{nope}".into(),
        fallback_host_pattern: "{slug}-preview".into(),
    };
    let keys: Vec<&str> = bad.problems().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["prefix", "domain", "host_pattern"]);
    assert!(cfg().problems().is_empty());
}
