use super::*;
use crate::key::PreviewKey;
use crate::model::{Phase, PreviewSpec};
use crate::observed::{ObservedService, ServiceStatus};
use crate::plan::{Observation, plan};
use crate::render::{Template, render};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use std::collections::BTreeSet;

const ACCOUNT: &str = "123456789012";

fn uri(repo: &str, reference: &str) -> String {
    format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{repo}{reference}")
}

fn row(deployed_at: i64) -> Preview {
    let t0 = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    let key = PreviewKey::new("acme/shop", "qanote/issue-7").unwrap();
    let mut p = Preview::fresh(
        key,
        "qanote-issue-7",
        "issue-7-preview",
        PreviewSpec::default(),
        t0,
    );
    p.deployed_at = Some(Utc.timestamp_opt(deployed_at, 0).unwrap());
    p
}

fn missing_at(secs: i64) -> ImageCheck {
    ImageCheck::Missing {
        image: uri("shop", ":abc123"),
        checked_at: Utc.timestamp_opt(secs, 0).unwrap(),
    }
}

#[test]
fn an_ecr_uri_with_a_tag_names_its_repository_and_tag() {
    let i = EcrImage::parse(&uri("team/shop", ":abc123")).unwrap();
    assert_eq!(i.repository.registry_id, ACCOUNT);
    assert_eq!(i.repository.region, "us-east-1");
    assert_eq!(i.repository.name, "team/shop");
    assert_eq!(i.reference, ImageRef::Tag("abc123".into()));
    assert_eq!(i.to_string(), uri("team/shop", ":abc123"));
}

#[test]
fn an_ecr_uri_with_a_digest_names_the_digest() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    let i = EcrImage::parse(&uri("shop", &format!("@{digest}"))).unwrap();
    assert_eq!(i.reference, ImageRef::Digest(digest));
}

#[test]
fn an_ecr_uri_without_a_tag_means_latest() {
    let i = EcrImage::parse(&uri("shop", "")).unwrap();
    assert_eq!(i.reference, ImageRef::Tag("latest".into()));
}

#[test]
fn images_outside_ecr_or_malformed_are_not_checked() {
    for other in [
        "nginx:latest",
        "public.ecr.aws/nginx/nginx:latest",
        "ghcr.io/acme/shop:abc123",
        "registry.example.com:5000/shop:abc123",
        "12345.dkr.ecr.us-east-1.amazonaws.com/shop:abc",
        "123456789012.dkr.ecr..amazonaws.com/shop:abc",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/Shop:abc",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:-abc",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop@sha256:abc",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop//x:abc",
        "",
    ] {
        assert_eq!(EcrImage::parse(other), None, "{other}");
    }
}

#[test]
fn an_image_in_another_region_is_not_checked() {
    let eu = format!("{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/shop:abc");
    assert!(EcrImage::parse(&eu).is_some());
    assert_eq!(EcrImage::checked(&eu, "us-east-1"), None);
    assert!(EcrImage::checked(&eu, "eu-west-1").is_some());
}

#[test]
fn a_missing_image_waits_then_fails_naming_it() {
    let p = row(1_000);
    let wait = Duration::from_secs(900);
    assert_eq!(
        gate(&p, &missing_at(1_899), wait),
        Some(Verdict::WaitingForImage(uri("shop", ":abc123")))
    );
    match gate(&p, &missing_at(1_900), wait) {
        Some(Verdict::Failed(why)) => {
            assert!(why.contains(&uri("shop", ":abc123")), "{why}");
            assert!(why.contains("container.image_wait_secs"), "{why}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_present_or_unchecked_image_holds_nothing_back() {
    let p = row(1_000);
    let wait = Duration::from_secs(1);
    assert_eq!(gate(&p, &ImageCheck::Present, wait), None);
    assert_eq!(gate(&p, &ImageCheck::NotChecked, wait), None);
}

#[test]
fn the_wait_counts_from_creation_when_the_deploy_time_is_unknown() {
    let mut p = row(5_000);
    p.deployed_at = None;
    // Created at 1_700_000_000.
    let check = missing_at(1_700_000_010);
    assert!(matches!(
        gate(&p, &check, Duration::from_secs(10)),
        Some(Verdict::Failed(_))
    ));
}

#[test]
fn only_a_present_row_not_yet_ready_looks_for_its_image() {
    let image = uri("shop", ":abc123");
    let mut p = row(1_000);
    assert!(needs_check(&p, &image, "us-east-1").is_some());
    assert!(needs_check(&p, "nginx:latest", "us-east-1").is_none());
    p.status.phase = Phase::Ready;
    p.status.observed_generation = p.generation;
    assert!(needs_check(&p, &image, "us-east-1").is_none());
    p.generation += 1;
    assert!(needs_check(&p, &image, "us-east-1").is_some());
    p.desired = Desired::Absent;
    assert!(needs_check(&p, &image, "us-east-1").is_none());
}

fn ecr_template() -> Template {
    Template {
        image: format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/shop:{{commit_sha}}"),
        ..Template::default()
    }
}

/// A service running an older spec of the preview: what a redeploy finds.
fn running_service(t: &Template, p: &Preview) -> ObservedService {
    let w = render(t, p);
    ObservedService {
        name: w.names.service.clone(),
        arn: "arn:svc".into(),
        status: ServiceStatus::Active,
        task_definition: "arn:td/old:1".into(),
        desired_count: 1,
        running_count: 1,
        target_group_arn: None,
        deployments: Vec::new(),
        tags: w.service.tags.clone(),
    }
}

#[test]
fn a_missing_image_plans_nothing_and_names_the_rendered_image() {
    let t = ecr_template();
    let mut p = row(1_000);
    p.spec.commit_sha = Some("abc123".into());
    let w = render(&t, &p);
    let o = Observation {
        image: ImageCheck::Missing {
            image: w.task_definition.container.image.clone(),
            checked_at: Utc.timestamp_opt(1_001, 0).unwrap(),
        },
        ..Observation::default()
    };
    let planned = plan(&t, &p, &w, &o, &BTreeSet::new());
    assert!(planned.changes.is_empty(), "{:?}", planned.changes);
    assert_eq!(
        planned.verdict,
        Verdict::WaitingForImage(uri("shop", ":abc123"))
    );
}

fn repo_name() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,8}([._/-][a-z0-9]{1,8}){0,3}".prop_filter("2..=256 long", |s| s.len() >= 2)
}

fn reference() -> impl Strategy<Value = ImageRef> {
    prop_oneof![
        "[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}".prop_map(ImageRef::Tag),
        "[0-9a-f]{64}".prop_map(|h| ImageRef::Digest(format!("sha256:{h}"))),
    ]
}

proptest! {
    /// Whatever ECR image is rendered, parsing its URI gives it back.
    #[test]
    fn an_ecr_uri_round_trips(
        account in "[0-9]{12}",
        region in "[a-z]{2}-[a-z]{4,9}-[1-9]",
        name in repo_name(),
        reference in reference(),
    ) {
        let image = EcrImage {
            repository: Repository { registry_id: account, region, name },
            reference,
        };
        prop_assert_eq!(EcrImage::parse(&image.to_string()), Some(image));
    }

    /// Any string either parses to an image that prints as the same URI
    /// (up to an implied `:latest`) or is not checked; parsing never panics.
    #[test]
    fn parsing_any_string_is_total_and_faithful(s in "\\PC{0,80}") {
        if let Some(i) = EcrImage::parse(&s) {
            let printed = i.to_string();
            prop_assert!(printed == s || printed == format!("{s}:latest"), "{} vs {}", printed, s);
        }
    }

    /// A missing image holds the plan back until the wait has passed since
    /// the deploy, and from then on fails it; the verdict always names the
    /// image.
    #[test]
    fn a_missing_image_waits_exactly_image_wait(
        deployed in 0i64..1_000_000,
        after in 0i64..10_000,
        wait in 1u64..5_000,
    ) {
        let p = row(deployed);
        let check = missing_at(deployed + after);
        let verdict = gate(&p, &check, Duration::from_secs(wait));
        let name = uri("shop", ":abc123");
        match verdict {
            Some(Verdict::WaitingForImage(image)) => {
                prop_assert!(after < wait as i64);
                prop_assert_eq!(image, name);
            }
            Some(Verdict::Failed(why)) => {
                prop_assert!(after >= wait as i64);
                prop_assert!(why.contains(&name));
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// While the image is missing nothing is created or changed, for a new
    /// preview and for a running one being redeployed alike: the running
    /// service keeps serving the last image.
    #[test]
    fn nothing_is_planned_while_the_image_is_missing(
        after in 0i64..10_000,
        wait in 1u64..5_000,
        running in any::<bool>(),
    ) {
        let t = Template { image_wait_secs: wait, ..ecr_template() };
        let mut p = row(1_000);
        p.spec.commit_sha = Some("abc123".into());
        let w = render(&t, &p);
        let o = Observation {
            service: running.then(|| running_service(&t, &p)),
            image: ImageCheck::Missing {
                image: w.task_definition.container.image.clone(),
                checked_at: Utc.timestamp_opt(1_000 + after, 0).unwrap(),
            },
            ..Observation::default()
        };
        let planned = plan(&t, &p, &w, &o, &BTreeSet::new());
        prop_assert!(planned.changes.is_empty(), "{:?}", planned.changes);
        let held = matches!(planned.verdict, Verdict::WaitingForImage(_) | Verdict::Failed(_));
        prop_assert!(held, "{:?}", planned.verdict);
    }
}

#[test]
fn an_image_outside_previewds_account_or_repository_is_not_in_scope() {
    let ours = EcrImage::parse(&format!(
        "{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/shop:abc"
    ))
    .unwrap();
    let theirs = EcrImage::parse("999999999999.dkr.ecr.us-east-1.amazonaws.com/shop:abc").unwrap();
    assert!(ours.in_scope(None, None));
    assert!(theirs.in_scope(None, None));
    assert!(ours.in_scope(Some(ACCOUNT), None));
    assert!(!theirs.in_scope(Some(ACCOUNT), None));
    assert!(ours.in_scope(Some(ACCOUNT), Some("shop")));
    assert!(!ours.in_scope(Some(ACCOUNT), Some("other")));
}

#[test]
fn a_pass_looks_only_for_an_image_previewds_policy_reaches() {
    let t = ecr_template();
    let p = row(1_000);
    let image = uri("shop", ":abc123");
    assert!(to_check(&p, &image, &t).is_some());
    let mine = |account: &str, repository: Option<&str>| Template {
        ecr_account: Some(account.into()),
        ecr_repository: repository.map(Into::into),
        ..t.clone()
    };
    assert!(to_check(&p, &image, &mine(ACCOUNT, Some("shop"))).is_some());
    assert!(to_check(&p, &image, &mine("999999999999", None)).is_none());
    assert!(to_check(&p, &image, &mine(ACCOUNT, Some("other"))).is_none());
}

proptest! {
    /// The pass looks for no more than `needs_check` does, and never
    /// outside the account and repository the template names.
    #[test]
    fn to_check_stays_inside_needs_check_and_the_policys_reach(
        image_account in prop::sample::select(vec![ACCOUNT, "999999999999"]),
        image_repo in prop::sample::select(vec!["shop", "other"]),
        scope_account in prop::option::of(prop::sample::select(vec![ACCOUNT, "999999999999"])),
        scope_repo in prop::option::of(prop::sample::select(vec!["shop", "other"])),
        ready in any::<bool>(),
    ) {
        let mut p = row(1_000);
        if ready {
            p.status.phase = Phase::Ready;
            p.status.observed_generation = p.generation;
        }
        let image = format!("{image_account}.dkr.ecr.us-east-1.amazonaws.com/{image_repo}:abc123");
        let t = Template {
            ecr_account: scope_account.map(Into::into),
            ecr_repository: scope_repo.map(Into::into),
            ..ecr_template()
        };
        let looked = to_check(&p, &image, &t);
        prop_assert_eq!(looked.is_some(), needs_check(&p, &image, &t.region).is_some()
            && scope_account.is_none_or(|a| a == image_account)
            && scope_repo.is_none_or(|r| r == image_repo));
    }
}
