//! Property tests of garbage collection's decisions: what is unwanted,
//! when it may go, and what deleting it changes.

use super::*;
use crate::gc_report::SweepOptions;
use crate::key::PreviewKey;
use crate::model::{PreviewSpec, Timestamp};
use crate::plan::Change;
use crate::render::DnsAction;
use proptest::prelude::*;
use std::collections::HashSet;
use std::time::Duration;

const SLUGS: [&str; 4] = ["a", "b", "c", "d"];

fn epoch() -> Timestamp {
    Timestamp::from_timestamp(1_800_000_000, 0).expect("a valid instant")
}

fn row(slug: &str, desired: Desired, phase: Phase) -> Preview {
    let key = PreviewKey::new("acme/shop", slug).expect("a valid branch");
    let mut p = Preview::fresh(key, slug, slug, PreviewSpec::default(), epoch());
    p.desired = desired;
    p.status.phase = phase;
    p
}

fn arb_row() -> impl Strategy<Value = Preview> {
    let desired = prop_oneof![Just(Desired::Present), Just(Desired::Absent)];
    let phase = prop_oneof![
        Just(Phase::Pending),
        Just(Phase::Provisioning),
        Just(Phase::Ready),
        Just(Phase::Failed),
        Just(Phase::Deleting),
        Just(Phase::Deleted),
    ];
    (prop::sample::select(&SLUGS[..]), desired, phase).prop_map(|(s, d, p)| row(s, d, p))
}

fn arb_kind() -> impl Strategy<Value = ResourceKind> {
    prop::sample::select(vec![
        ResourceKind::DnsRecords,
        ResourceKind::Service,
        ResourceKind::ListenerRule,
        ResourceKind::TargetGroup,
        ResourceKind::TaskDefinitions,
        ResourceKind::LogGroup,
    ])
}

fn record(name: &str, kind: RecordType, values: Vec<String>) -> DnsRecord {
    DnsRecord {
        name: name.into(),
        kind,
        ttl: Some(300),
        values,
        alias_target: None,
    }
}

fn arb_resource() -> impl Strategy<Value = OwnedResource> {
    (
        arb_kind(),
        prop::sample::select(&SLUGS[..]),
        "[a-z0-9]{1,6}",
        0..3i32,
        prop::option::of("td-[a-z0-9]{1,4}"),
    )
        .prop_map(|(kind, slug, id, desired_count, td)| OwnedResource {
            kind,
            id: format!("{kind}/{id}"),
            slug: slug.into(),
            records: vec![record(&id, RecordType::A, vec!["10.0.0.1".into()])],
            desired_count,
            task_definition: td,
        })
}

fn arb_candidate() -> impl Strategy<Value = Candidate> {
    let reason = prop_oneof![Just(Reason::Orphan), Just(Reason::HalfDeleted)];
    (arb_resource(), reason).prop_map(|(resource, reason)| Candidate { resource, reason })
}

/// Candidates with when each was first seen, up to two hours before the
/// epoch (the `now` of these tests).
fn arb_sightings() -> impl Strategy<Value = (Vec<Candidate>, Vec<Timestamp>)> {
    prop::collection::vec((arb_candidate(), 0..7_200i64), 0..12).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(c, ago)| (c, epoch() - chrono::Duration::seconds(ago)))
            .unzip()
    })
}

fn opts(grace_secs: u64, max_deletions: usize) -> SweepOptions {
    SweepOptions {
        dry_run: false,
        grace: Duration::from_secs(grace_secs),
        max_deletions,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Nothing a row still wants, or still tears down, is ever unwanted;
    /// everything else listed is, once, in deletion order.
    #[test]
    fn only_what_no_row_wants_is_unwanted(
        rows in prop::collection::vec(arb_row(), 0..4),
        inventory in prop::collection::vec(arb_resource(), 0..10),
    ) {
        // The store holds one row per slug.
        let mut seen = HashSet::new();
        let rows: Vec<Preview> = rows.into_iter().filter(|p| seen.insert(p.slug.clone())).collect();
        let got = unwanted(&rows, inventory.clone());
        for c in &got {
            let owner = rows.iter().find(|p| p.slug == c.resource.slug);
            match owner {
                None => prop_assert_eq!(c.reason, Reason::Orphan),
                Some(p) => {
                    prop_assert_eq!(c.reason, Reason::HalfDeleted);
                    prop_assert!(p.desired == Desired::Absent && p.status.phase == Phase::Deleted);
                }
            }
        }
        let wanted_by_none = |r: &OwnedResource| {
            rows.iter()
                .find(|p| p.slug == r.slug)
                .is_none_or(|p| p.desired == Desired::Absent && p.status.phase == Phase::Deleted)
        };
        prop_assert_eq!(got.len(), inventory.iter().filter(|r| wanted_by_none(r)).count());
        let order: Vec<_> = got.iter().map(|c| (c.resource.kind, c.resource.id.clone())).collect();
        let mut sorted = order.clone();
        sorted.sort();
        prop_assert_eq!(order, sorted);
    }

    /// Due exactly when the grace period has passed since the first
    /// sighting; braked exactly when more are due than the brake allows;
    /// and a sweep may never delete more than the brake.
    #[test]
    fn grace_and_brake_bound_what_may_go(
        (candidates, first_seen) in arb_sightings(),
        grace_secs in 0..10_000u64,
        max_deletions in 0..8usize,
    ) {
        let o = opts(grace_secs, max_deletions);
        let s = schedule(candidates.clone(), first_seen.clone(), &o, epoch());
        prop_assert_eq!(s.planned.len(), candidates.len());
        let grace = chrono::Duration::seconds(grace_secs as i64);
        for ((p, c), seen) in s.planned.iter().zip(&candidates).zip(&first_seen) {
            prop_assert_eq!(&p.candidate, c);
            prop_assert_eq!(p.first_seen, *seen);
            prop_assert_eq!(p.due, *seen + grace <= epoch());
        }
        let due = s.planned.iter().filter(|p| p.due).count();
        prop_assert_eq!(s.braked, due > max_deletions);
        let deletable = s.deletable().count();
        prop_assert!(deletable <= max_deletions);
        prop_assert_eq!(deletable, if s.braked { 0 } else { due });
        prop_assert!(s.deletable().all(|p| p.due));
    }

    /// A longer grace period never makes more due.
    #[test]
    fn a_longer_grace_never_makes_more_due(
        (candidates, first_seen) in arb_sightings(),
        grace_secs in 0..10_000u64,
        more in 0..10_000u64,
    ) {
        let due = |g| {
            schedule(candidates.clone(), first_seen.clone(), &opts(g, usize::MAX), epoch())
                .deletable()
                .count()
        };
        prop_assert!(due(grace_secs + more) <= due(grace_secs));
    }

    /// A resource is deleted without a lease only when no row holds its
    /// slug; a half-deleted one only under its row's lease.
    #[test]
    fn the_look_again_deletes_nothing_a_row_may_want(
        reason in prop_oneof![Just(Reason::Orphan), Just(Reason::HalfDeleted)],
        r in prop::option::of(arb_row()),
    ) {
        let got = recheck(reason, r.as_ref());
        if r.is_some() {
            prop_assert_ne!(got, Recheck::Delete);
        }
        prop_assert_eq!(got == Recheck::LeaseRow, reason == Reason::HalfDeleted && r.is_some());
        prop_assert_eq!(got == Recheck::Delete, reason == Reason::Orphan && r.is_none());
    }

    /// Deleting only ever deletes (or scales to zero) the resource itself,
    /// ending with the delete.
    #[test]
    fn a_deletion_touches_only_its_resource(r in arb_resource()) {
        let changes = deletion(&r);
        prop_assert!(!changes.is_empty());
        for (i, c) in changes.iter().enumerate() {
            let last = i + 1 == changes.len();
            let ok = match c {
                Change::ChangeDns(d) => {
                    d.iter().all(|x| x.action == DnsAction::Delete)
                        && d.iter().map(|x| &x.record).eq(r.records.iter())
                }
                Change::UpdateService { name, desired_count, task_definition_arn, tags } => {
                    !last && *name == r.id && *desired_count == 0 && r.desired_count > 0
                        && task_definition_arn.is_some() && tags.is_empty()
                }
                Change::DeleteService { name } => *name == r.id,
                Change::DeleteRule { arn } | Change::DeleteTargetGroup { arn } => *arn == r.id,
                Change::DeregisterTaskDefinitions { family } => *family == r.id,
                Change::DeleteLogGroup { name } => *name == r.id,
                _ => false,
            };
            prop_assert!(ok, "{c:?} for {r:?}");
        }
        prop_assert_eq!(changes.len(), if r.kind == ResourceKind::Service && r.desired_count > 0 { 2 } else { 1 });
    }

    /// A DNS name is ours only by our own marker, and then it comes with
    /// every A and TXT record set at the name.
    #[test]
    fn dns_names_are_ours_only_by_our_marker(
        entries in prop::collection::vec(
            (prop::sample::select(vec!["x.example.com", "y.example.com"]),
             prop::sample::select(vec!["ctl", "ctl-other", "none"]),
             prop::sample::select(&SLUGS[..]),
             any::<bool>()),
            0..8,
        ),
    ) {
        let mut records = Vec::new();
        for (name, owner, slug, with_a) in &entries {
            let value = match *owner {
                "none" => "\"v=spf1 -all\"".to_string(),
                id => tags::dns_owner_marker(id, slug),
            };
            records.push(record(name, RecordType::Txt, vec![value]));
            if *with_a {
                records.push(record(name, RecordType::A, vec!["10.0.0.1".into()]));
            }
            records.push(record(name, RecordType::Cname, vec!["elsewhere".into()]));
        }
        let found = dns_names("ctl", records.clone());
        for r in &found {
            prop_assert_eq!(r.kind, ResourceKind::DnsRecords);
            let marker = tags::dns_owner_marker("ctl", &r.slug);
            prop_assert!(r.records.iter().any(|x| x.values.contains(&marker)));
            let at_name: Vec<&DnsRecord> = records
                .iter()
                .filter(|x| x.name == r.id && x.kind != RecordType::Cname)
                .collect();
            prop_assert!(r.records.iter().eq(at_name.into_iter()));
        }
        let ours: HashSet<&str> = entries
            .iter()
            .filter(|e| e.1 == "ctl")
            .map(|e| e.0)
            .collect();
        let got: HashSet<&str> = found.iter().map(|r| r.id.as_str()).collect();
        prop_assert_eq!(got, ours);
    }
}

#[test]
fn a_scaled_service_is_scaled_to_zero_on_the_task_definition_it_runs() {
    let r = OwnedResource {
        kind: ResourceKind::Service,
        id: "pv-ghost".into(),
        slug: "ghost".into(),
        records: vec![],
        desired_count: 1,
        task_definition: Some("arn:td/pv-ghost:3".into()),
    };
    assert_eq!(
        deletion(&r),
        [
            Change::UpdateService {
                name: "pv-ghost".into(),
                task_definition_arn: Some("arn:td/pv-ghost:3".into()),
                desired_count: 0,
                tags: crate::tags::Tags::new(),
            },
            Change::DeleteService {
                name: "pv-ghost".into()
            },
        ]
    );
}

#[test]
fn the_brake_holds_when_one_more_is_due_than_allowed() {
    let c = |id: &str| Candidate {
        resource: OwnedResource {
            kind: ResourceKind::LogGroup,
            id: id.into(),
            slug: "ghost".into(),
            records: vec![],
            desired_count: 0,
            task_definition: None,
        },
        reason: Reason::Orphan,
    };
    let long_ago = epoch() - chrono::Duration::hours(1);
    let s = schedule(
        vec![c("a"), c("b"), c("c")],
        vec![long_ago, long_ago, epoch()],
        &opts(60, 1),
        epoch(),
    );
    assert!(s.braked);
    assert_eq!(s.planned.iter().filter(|p| p.due).count(), 2);
    assert_eq!(s.deletable().count(), 0);
    let s = schedule(
        vec![c("a"), c("b")],
        vec![long_ago, epoch()],
        &opts(60, 1),
        epoch(),
    );
    assert!(!s.braked);
    assert_eq!(
        s.deletable()
            .map(|p| p.candidate.resource.id.as_str())
            .collect::<Vec<_>>(),
        ["a"]
    );
}
