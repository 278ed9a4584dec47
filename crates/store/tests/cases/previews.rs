//! Cases for the desired-state side: apply rules, names, listing, time.

use crate::support::*;
use previewd_core::naming::is_slug;
use previewd_core::ports::Store;
use previewd_core::{
    Condition, Conditions, DeployRequest, Desired, ErrorClass, LastError, ListFilter, Phase,
    StatusUpdate, Timestamp,
};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

pub async fn deploy_creates_a_pending_row_due_now(store: Arc<dyn Store>) {
    let k = key("main");
    let mut req = deploy_request(&k, "abc123");
    req.expiry = previewd_core::Expiry::At(t(72 * 3_600_000));
    let out = store.apply_deploy(&req, &naming(), t(0)).await.unwrap();
    assert!(out.changed);
    let p = &out.preview;
    assert_eq!((p.generation, p.desired), (1, Desired::Present));
    assert_eq!(p.status, status(Phase::Pending, 0));
    assert_eq!(
        (p.slug.as_str(), p.host_label.as_str()),
        ("main", "main-preview")
    );
    assert_eq!(p.spec, spec("abc123"));
    assert_eq!(
        (p.created_at, p.updated_at, p.next_reconcile_at),
        (t(0), t(0), t(0))
    );
    assert_eq!(p.expires_at, Some(t(72 * 3_600_000)));
    assert_eq!((p.attempts, p.rule_priority), (0, None));
    assert_eq!((&p.lease_owner, p.lease_until), (&None, None));
    assert_eq!(store.get(&k).await.unwrap().as_ref(), Some(p));
    assert_eq!(store.get(&key("other")).await.unwrap(), None);
}

pub async fn deploy_then_identical_resend_is_a_noop(store: Arc<dyn Store>) {
    let k = key("qanote/issue-42");
    let first = deploy(&*store, &k, "abc123", 0).await.preview;
    // Even a different expiry does not make an identical spec a change.
    let mut again = deploy_request(&k, "abc123");
    again.expiry = previewd_core::Expiry::At(t(99_000));
    let out = store
        .apply_deploy(&again, &naming(), t(5_000))
        .await
        .unwrap();
    assert!(!out.changed);
    assert_eq!(out.preview, first);
    assert_eq!(store.get(&k).await.unwrap(), Some(first));
}

pub async fn changed_spec_bumps_generation_and_makes_the_row_due(store: Arc<dyn Store>) {
    let k = key("qanote/issue-42");
    let first = deploy(&*store, &k, "abc123", 0).await.preview;
    // A finished reconcile pushes the next look out and counts failures.
    assert_eq!(claim_all(&*store, "w1", 0).await, vec![k.clone()]);
    let mut done = update(Phase::Failed, 1, 3_600_000, vec![]);
    done.attempts = 3;
    store.record_status(&k, "w1", &done, t(10)).await.unwrap();

    let mut req = deploy_request(&k, "def456");
    req.expiry = previewd_core::Expiry::At(t(50_000));
    let out = store.apply_deploy(&req, &naming(), t(1_000)).await.unwrap();
    assert!(out.changed);
    let p = &out.preview;
    assert_eq!(p.generation, 2);
    assert_eq!(
        (p.next_reconcile_at, p.updated_at, p.attempts),
        (t(1_000), t(1_000), 0)
    );
    assert_eq!((p.created_at, p.expires_at), (t(0), Some(t(50_000))));
    assert_eq!((&p.slug, &p.host_label), (&first.slug, &first.host_label));
    assert_eq!(p.spec, spec("def456"));
    // The observed side is the controller's; a dispatch leaves it alone.
    assert_eq!(p.status.phase, Phase::Failed);

    // Every spec field counts, the env map included.
    let mut req = deploy_request(&k, "def456");
    req.spec.env = BTreeMap::from([("FEATURE".to_owned(), "on".to_owned())]);
    let out = store.apply_deploy(&req, &naming(), t(2_000)).await.unwrap();
    assert!(out.changed);
    assert_eq!(out.preview.generation, 3);
    assert_eq!(
        out.preview.spec.env.get("FEATURE").map(String::as_str),
        Some("on")
    );
}

pub async fn destroy_marks_absent_once_and_a_redeploy_revives_the_same_names(
    store: Arc<dyn Store>,
) {
    let k = key("qanote/issue-7");
    assert_eq!(store.apply_destroy(&k, t(0)).await.unwrap(), None);
    let first = deploy(&*store, &k, "abc", 0).await.preview;

    let out = store.apply_destroy(&k, t(1_000)).await.unwrap().unwrap();
    assert!(out.changed);
    assert_eq!(
        (out.preview.desired, out.preview.generation),
        (Desired::Absent, 2)
    );
    assert_eq!(
        (out.preview.next_reconcile_at, out.preview.updated_at),
        (t(1_000), t(1_000))
    );

    let again = store.apply_destroy(&k, t(2_000)).await.unwrap().unwrap();
    assert!(!again.changed);
    assert_eq!(again.preview, out.preview);

    // Same spec as before, but desired flips back: that is a change.
    let back = deploy(&*store, &k, "abc", 3_000).await;
    assert!(back.changed);
    assert_eq!(
        (back.preview.desired, back.preview.generation),
        (Desired::Present, 3)
    );
    assert_eq!(back.preview.next_reconcile_at, t(3_000));
    assert_eq!(
        (back.preview.slug, back.preview.host_label),
        (first.slug, first.host_label)
    );
}

pub async fn look_alike_branches_get_different_slugs(store: Arc<dyn Store>) {
    let a = deploy(&*store, &key("feature/Foo"), "x", 0).await.preview;
    let b = deploy(&*store, &key("feature-foo"), "x", 0).await.preview;
    assert_eq!(a.slug, "feature-foo");
    assert_ne!(b.slug, a.slug);
    assert!(
        b.slug.starts_with("feature-foo-") && is_slug(&b.slug),
        "{}",
        b.slug
    );
    assert_ne!(a.host_label, b.host_label);
}

pub async fn branches_naming_one_issue_get_different_hosts(store: Arc<dyn Store>) {
    let a = deploy(&*store, &key("qanote/issue-42"), "x", 0)
        .await
        .preview;
    let b = deploy(&*store, &key("fix/issue-42"), "x", 0).await.preview;
    assert_eq!(a.host_label, "issue-42-preview");
    assert_eq!(b.host_label, "fix-issue-42-preview");
    assert_ne!(a.slug, b.slug);
}

/// Concurrent inserts race for one slug and one key; the unique indexes
/// decide and the losers retry inside the store.
pub async fn concurrent_deploys_still_get_distinct_names(store: Arc<dyn Store>) {
    let branches = [
        "feature/Foo",
        "feature-foo",
        "Feature/foo",
        "feature_foo",
        "FEATURE-FOO",
        "feature.foo",
        "feature/Foo",
        "feature/Foo",
    ];
    let tasks: Vec<_> = branches
        .iter()
        .map(|b| {
            let store = store.clone();
            let k = key(b);
            tokio::spawn(async move { deploy(&*store, &k, "x", 0).await })
        })
        .collect();
    let mut changed = 0;
    for task in tasks {
        changed += usize::from(task.await.unwrap().changed);
    }
    assert_eq!(changed, 6, "one insert per distinct branch");
    let rows = store.list(&ListFilter::default()).await.unwrap();
    assert_eq!(rows.len(), 6);
    let slugs: HashSet<_> = rows.iter().map(|p| &p.slug).collect();
    let hosts: HashSet<_> = rows.iter().map(|p| &p.host_label).collect();
    assert_eq!((slugs.len(), hosts.len()), (6, 6));
}

pub async fn list_filters_and_orders_by_project_then_branch(store: Arc<dyn Store>) {
    // Inserted out of order; "M" sorts before "a" bytewise on both backends.
    for (project, branch) in [
        ("acme/b", "z"),
        ("acme/a", "z"),
        ("acme/a", "a"),
        ("acme/a", "M"),
    ] {
        deploy(&*store, &key_in(project, branch), "x", 0).await;
    }
    let keys = |rows: Vec<previewd_core::Preview>| {
        rows.into_iter()
            .map(|p| format!("{}", p.key))
            .collect::<Vec<_>>()
    };
    let all = store.list(&ListFilter::default()).await.unwrap();
    assert_eq!(keys(all), ["acme/a:M", "acme/a:a", "acme/a:z", "acme/b:z"]);

    store
        .apply_destroy(&key_in("acme/a", "a"), t(1))
        .await
        .unwrap();
    let gone = ListFilter {
        desired: Some(Desired::Absent),
        ..ListFilter::default()
    };
    assert_eq!(keys(store.list(&gone).await.unwrap()), ["acme/a:a"]);

    let ready = key_in("acme/b", "z");
    claim_all(&*store, "w1", 10).await;
    store
        .record_status(&ready, "w1", &update(Phase::Ready, 1, 9_000, vec![]), t(11))
        .await
        .unwrap();
    let by_phase = ListFilter {
        phase: Some(Phase::Ready),
        ..ListFilter::default()
    };
    assert_eq!(keys(store.list(&by_phase).await.unwrap()), ["acme/b:z"]);

    let narrow = ListFilter {
        project: Some("acme/a".into()),
        desired: Some(Desired::Present),
        limit: Some(1),
        ..ListFilter::default()
    };
    assert_eq!(keys(store.list(&narrow).await.unwrap()), ["acme/a:M"]);
    let none = ListFilter {
        project: Some("acme/zzz".into()),
        ..ListFilter::default()
    };
    assert!(store.list(&none).await.unwrap().is_empty());
}

pub async fn timestamps_and_status_round_trip(store: Arc<dyn Store>) {
    let k = key("main");
    // Sub-millisecond precision is dropped towards the past.
    let precise = t(0) + chrono::Duration::nanoseconds(987_654);
    let far = Timestamp::from_timestamp_millis(253_402_300_799_999).unwrap(); // 9999-12-31
    let req = DeployRequest {
        expiry: previewd_core::Expiry::At(far),
        ..deploy_request(&k, "x")
    };
    let p = store
        .apply_deploy(&req, &naming(), precise)
        .await
        .unwrap()
        .preview;
    assert_eq!((p.created_at, p.expires_at), (t(0), Some(far)));

    let leased = store
        .claim_due("w1", t(1), std::time::Duration::from_millis(1_500), 1)
        .await
        .unwrap();
    assert_eq!(leased[0].lease_until, Some(t(1_501)));
    assert_eq!(leased[0].lease_owner.as_deref(), Some("w1"));

    // Condition times live in JSON and keep their full precision.
    let since = precise + chrono::Duration::nanoseconds(1);
    let condition = |status, reason: &str| Condition {
        status,
        reason: reason.into(),
        message: format!("{reason} happened"),
        since,
    };
    let mut written = status(Phase::Failed, 1);
    written.conditions = Conditions {
        synced: Some(condition(true, "Synced")),
        ready: Some(condition(false, "TaskStopped")),
    };
    written.url = Some("https://issue-1-preview.example.com".into());
    written.message = Some("the task stopped: log group missing".into());
    written.last_error = Some(LastError {
        code: "AccessDenied".into(),
        message: "elasticloadbalancing:ModifyRule".into(),
        class: ErrorClass::Terminal,
        at: since,
    });
    let up = StatusUpdate {
        status: written.clone(),
        next_reconcile_at: t(60_000),
        attempts: 2,
        outbox: vec![],
    };
    store.record_status(&k, "w1", &up, t(5)).await.unwrap();
    let p = store.get(&k).await.unwrap().unwrap();
    assert_eq!(p.status, written);
    assert_eq!(
        (p.next_reconcile_at, p.updated_at, p.attempts),
        (t(60_000), t(5), 2)
    );
}

pub async fn list_finds_expired_previews(store: Arc<dyn Store>) {
    let naming = previewd_core::NamingConfig::default();
    for (branch, expires) in [
        ("soon", Some(1_000)),
        ("later", Some(9_000)),
        ("never", None),
    ] {
        let mut req = deploy_request(&key(branch), "abc1234");
        req.expiry = expires.map(t).into();
        store.apply_deploy(&req, &naming, t(0)).await.unwrap();
    }
    let expired_at = |ms| ListFilter {
        desired: Some(Desired::Present),
        expired_at: Some(t(ms)),
        ..ListFilter::default()
    };
    let branches = |rows: Vec<previewd_core::Preview>| {
        rows.into_iter().map(|p| p.key.branch).collect::<Vec<_>>()
    };
    assert!(store.list(&expired_at(999)).await.unwrap().is_empty());
    assert_eq!(
        branches(store.list(&expired_at(1_000)).await.unwrap()),
        ["soon"]
    );
    assert_eq!(
        branches(store.list(&expired_at(10_000)).await.unwrap()),
        ["later", "soon"]
    );
    store.apply_destroy(&key("soon"), t(2_000)).await.unwrap();
    assert_eq!(
        branches(store.list(&expired_at(10_000)).await.unwrap()),
        ["later"],
        "a destroyed preview is not expired again"
    );
}

/// The image wait counts from `deployed_at` (issue 16, item 2): it dates
/// the generation a deploy asked for (insert, redeploy, the retry of a
/// Failed preview), never a status write or a destroy.
pub async fn deployed_at_dates_the_generation_not_the_status(store: Arc<dyn Store>) {
    let k = key("qanote/issue-16");
    let first = deploy(&*store, &k, "abc123", 0).await.preview;
    assert_eq!(first.deployed_at, Some(t(0)));
    assert_eq!(claim_all(&*store, "w1", 0).await, vec![k.clone()]);
    store
        .record_status(&k, "w1", &update(Phase::Pending, 1, 60_000, vec![]), t(10))
        .await
        .unwrap();
    let p = store.get(&k).await.unwrap().unwrap();
    assert_eq!((p.deployed_at, p.updated_at), (Some(t(0)), t(10)));

    let p = deploy(&*store, &k, "def456", 1_000).await.preview;
    assert_eq!((p.generation, p.deployed_at), (2, Some(t(1_000))));

    // A Failed generation dispatched again is retried: a new deploy time.
    assert_eq!(claim_all(&*store, "w1", 1_000).await, vec![k.clone()]);
    store
        .record_status(
            &k,
            "w1",
            &update(Phase::Failed, 2, 60_000, vec![]),
            t(1_010),
        )
        .await
        .unwrap();
    let p = deploy(&*store, &k, "def456", 5_000).await.preview;
    assert_eq!((p.generation, p.deployed_at), (3, Some(t(5_000))));

    store.apply_destroy(&k, t(6_000)).await.unwrap();
    let p = store.get(&k).await.unwrap().unwrap();
    assert_eq!(
        (p.desired, p.deployed_at),
        (Desired::Absent, Some(t(5_000)))
    );
}
