use super::*;
use crate::command::Lifetime;
use crate::key::PreviewKey;
use crate::model::{Desired, Phase, PreviewSpec};
use crate::naming::NamingConfig;
use crate::pool::PoolListener;
use crate::projects::Project;
use crate::render::Template;
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;

fn listener(i: usize) -> String {
    format!(
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/alb{i}/{:016x}/{:016x}",
        100 + i,
        200 + i
    )
}

fn lb(i: usize) -> String {
    format!("app/alb{i}/{:016x}", 100 + i)
}

fn waker(i: usize) -> String {
    format!(
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/previewd-waker-{i}/{i:016x}"
    )
}

fn pool(n: usize) -> Pool {
    Pool {
        listeners: (0..n)
            .map(|i| PoolListener {
                arn: listener(i),
                alb_dns_name: format!("alb{i}.elb.amazonaws.com"),
                alb_zone_id: "Z35SXDOTRQ7X7K".into(),
                priority_band: (1000, 1999),
                rule_quota: 100,
                draining: false,
            })
            .collect(),
    }
}

/// Wakers on the load balancers `with` names.
fn wakers(with: &[usize]) -> Wakers {
    Wakers::new(with.iter().map(|&i| (lb(i), waker(i))).collect())
}

fn candidate(i: usize) -> Candidate {
    Candidate {
        key: PreviewKey::new("acme/web", &format!("b{i}")).unwrap(),
        awake_since: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
    }
}

fn project(name: &str, prefix: &str, domain: &str, pattern: &str) -> Project {
    Project {
        name: name.into(),
        template: Arc::new(Template {
            naming: NamingConfig {
                prefix: prefix.into(),
                domain: domain.into(),
                host_pattern: pattern.into(),
                ..NamingConfig::default()
            },
            ..Template::default()
        }),
        lifetime: Lifetime {
            ttl: Duration::from_secs(3600),
            max_lifetime: Duration::from_secs(7200),
        },
        retired: false,
    }
}

fn two_projects() -> Projects {
    Projects::new(vec![
        project("acme/web", "web", "web.example.com", "issue-{issue}"),
        project("acme/api", "api", "api.example.com", "api-{issue}"),
    ])
    .unwrap()
}

fn row(project: &str, branch: &str, host_label: &str, asleep: bool) -> Preview {
    let key = PreviewKey::new(project, branch).unwrap();
    let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    let mut p = Preview::fresh(key, host_label, host_label, PreviewSpec::default(), now);
    p.asleep = asleep;
    p.status.phase = if asleep {
        Phase::Sleeping
    } else {
        Phase::Ready
    };
    p
}

#[test]
fn each_listener_sleeps_onto_its_own_load_balancers_waker() {
    let w = wakers(&[0, 1]);
    assert_eq!(w.for_listener(&listener(0)), Some(waker(0).as_str()));
    assert_eq!(w.for_listener(&listener(1)), Some(waker(1).as_str()));
    assert_eq!(w.for_listener(&listener(2)), None);
    assert_eq!(w.for_listener("not an arn"), None);
}

#[test]
fn a_listener_without_a_waker_is_unserved_and_a_waker_of_no_listener_is_a_stray() {
    let mut w = wakers(&[0, 7]);
    assert_eq!(w.unserved(&pool(2)), [listener(1)]);
    assert_eq!(w.strays(&pool(2)), [lb(7)]);
    w = wakers(&[0, 1]);
    assert!(w.unserved(&pool(2)).is_empty());
    assert!(w.strays(&pool(2)).is_empty());
}

#[test]
fn the_waker_finds_a_host_with_its_own_projects_naming() {
    let projects = two_projects();
    let rows = vec![
        row("acme/web", "issue-7", "issue-7", true),
        row("acme/api", "issue-7", "api-7", true),
        row("acme/api", "issue-8", "api-8", false),
        row("acme/gone", "issue-9", "issue-9", true),
    ];
    let at = |h: &str| sleeping_at(&rows, &projects, h).map(|p| p.key.project.clone());
    assert_eq!(at("issue-7.web.example.com").as_deref(), Some("acme/web"));
    assert_eq!(at("api-7.api.example.com").as_deref(), Some("acme/api"));
    // Another project's domain, an awake preview, an unknown project.
    assert_eq!(at("issue-7.api.example.com"), None);
    assert_eq!(at("api-8.api.example.com"), None);
    assert_eq!(at("issue-9.web.example.com"), None);
}

fn rule(i: usize, tg: &str) -> crate::observed::ObservedRule {
    crate::observed::ObservedRule {
        arn: format!("arn:rule/{i}"),
        priority: Some(1000 + i as i32),
        hosts: vec![format!("h{i}.example.com")],
        target_group_arn: Some(tg.to_owned()),
        tags: Default::default(),
        auth: None,
    }
}

/// A listener with `foreign` target groups of another team, `awake`
/// previews and `asleep` ones (their rules on the waker), as listed.
fn listed(foreign: usize, awake: usize, asleep: usize) -> BTreeMap<String, Arc<ListenerState>> {
    let mut rules: Vec<_> = (0..awake)
        .map(|i| rule(i, &format!("arn:tg/{i}")))
        .collect();
    rules.extend((awake..awake + asleep).map(|i| rule(i, &waker(0))));
    let state = ListenerState {
        rules,
        alb_target_groups: foreign + awake + usize::from(asleep > 0),
        alb_rules: foreign + awake + asleep,
        waker_target_group: None,
    };
    BTreeMap::from([(listener(0), Arc::new(state))])
}

#[test]
fn a_sleeping_previews_room_is_kept_for_its_wake() {
    // 97 foreign, one awake, one asleep: 99 listed (the waker counted), but
    // the sleeper's own group comes back when it wakes: 100, full.
    let states = listed(97, 1, 1);
    let (mut fills, _) = crate::pool::fills(&states, &[], None);
    assert_eq!(fills[&listener(0)].target_groups, 99);
    hold_sleepers(&mut fills, &states, &wakers(&[0]));
    assert_eq!(fills[&listener(0)].target_groups, 100);
    let placed = crate::pool::place(&pool(1), &fills, crate::pool::Seat::default());
    assert!(
        matches!(placed, crate::pool::Placement::Full(_)),
        "{placed:?}"
    );
}

proptest! {
    /// Whatever sleeps on a listener, a preview is placed there only when
    /// every sleeper can still wake (its own group attached again) under
    /// AWS's 100 target groups per load balancer.
    #[test]
    fn placement_never_takes_the_room_a_sleeper_needs_to_wake(
        foreign in 0usize..100,
        awake in 0usize..100,
        asleep in 0usize..100,
        quota in 1usize..400,
    ) {
        let max = crate::pool::MAX_TARGET_GROUPS_PER_ALB;
        prop_assume!(foreign + awake + usize::from(asleep > 0) <= max);
        let states = listed(foreign, awake, asleep);
        let (mut fills, _) = crate::pool::fills(&states, &[], None);
        hold_sleepers(&mut fills, &states, &wakers(&[0]));
        let mut p = pool(1);
        p.listeners[0].rule_quota = quota;
        let placed = crate::pool::place(&p, &fills, crate::pool::Seat::default());
        if let crate::pool::Placement::Placed(_) = placed {
            // Every sleeper woken, plus the new one.
            prop_assert!(foreign + awake + asleep < max);
        }
        // A load balancer without a waker holds nothing extra.
        let (mut bare, _) = crate::pool::fills(&states, &[], None);
        hold_sleepers(&mut bare, &states, &wakers(&[1]));
        prop_assert_eq!(bare[&listener(0)].target_groups, foreign + awake + usize::from(asleep > 0));
    }

    /// The idle check asks only about previews whose listener's load
    /// balancer has a waker, each once, each under its own load balancer,
    /// and its requests are one per 500 queries over every ALB together.
    #[test]
    fn queries_name_the_candidates_own_load_balancer_and_skip_those_without_a_waker(
        with in proptest::collection::btree_set(0usize..4, 0..=4),
        placed in proptest::collection::vec((proptest::option::of(0usize..5), any::<bool>()), 0..1200),
    ) {
        let with: Vec<usize> = with.into_iter().collect();
        let w = wakers(&with);
        let listeners: Vec<String> = (0..5).map(listener).collect();
        let tgs: Vec<String> = (0..placed.len()).map(|i| format!("arn:tg/{i}")).collect();
        let ripe: Vec<Ripe<'_>> = placed
            .iter()
            .enumerate()
            .map(|(i, (l, listed))| Ripe {
                candidate: candidate(i),
                listener: l.map(|l| listeners[l].as_str()),
                target_group_arn: listed.then(|| tgs[i].as_str()),
            })
            .collect();
        let out = queries(ripe, &w);
        let mut asked = std::collections::BTreeSet::new();
        for (c, q) in &out {
            prop_assert!(asked.insert(c.key.clone()));
            let i: usize = c.key.branch[1..].parse().unwrap();
            let (l, listed) = placed[i];
            let l = l.expect("a placed preview");
            prop_assert!(listed);
            prop_assert!(with.contains(&l));
            prop_assert_eq!(&q.load_balancer, &lb(l));
            prop_assert_eq!(&q.target_group_arn, &tgs[i]);
        }
        let could = placed
            .iter()
            .filter(|(l, listed)| *listed && l.is_some_and(|l| with.contains(&l)))
            .count();
        prop_assert_eq!(out.len(), could);
        prop_assert_eq!(super::super::metric_calls(out.len()), could.div_ceil(500));
    }

    /// Whatever the rows, the waker answers for a host only when it is the
    /// host of a sleeping or waking preview, by its own project's naming,
    /// and never for an awake or absent one.
    #[test]
    fn the_waker_answers_only_for_sleeping_or_waking_previews_hosts(
        rows in proptest::collection::vec((0usize..3, 1u32..40, any::<bool>(), any::<bool>()), 0..30),
        asked_project in 0usize..2,
        asked_issue in 1u32..40,
    ) {
        let projects = two_projects();
        let names = ["acme/web", "acme/api", "acme/gone"];
        let mut seen = std::collections::BTreeSet::new();
        let rows: Vec<Preview> = rows
            .into_iter()
            .filter(|(pr, issue, _, _)| seen.insert((*pr, *issue)))
            .map(|(pr, issue, asleep, present)| {
                let label = if pr == 1 { format!("api-{issue}") } else { format!("issue-{issue}") };
                let mut p = row(names[pr], &format!("issue-{issue}"), &label, asleep);
                if !present {
                    p.desired = Desired::Absent;
                }
                p
            })
            .collect();
        let host = if asked_project == 0 {
            format!("issue-{asked_issue}.web.example.com")
        } else {
            format!("api-{asked_issue}.api.example.com")
        };
        let found = sleeping_at(&rows, &projects, &host);
        let expected = rows.iter().find(|p| {
            p.key.project == names[asked_project]
                && p.key.branch == format!("issue-{asked_issue}")
                && p.desired == Desired::Present
                && (p.asleep || p.status.phase == Phase::Sleeping)
        });
        prop_assert_eq!(found.map(|p| &p.key), expected.map(|p| &p.key));
    }
}
