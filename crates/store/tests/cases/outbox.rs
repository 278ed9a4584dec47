//! Cases for the outbox: atomic enqueue, ordered delivery, retries.

use crate::support::*;
use previewd_core::ports::{Store, StoreError};
use previewd_core::{OutboxItem, OutboxKind, Phase, PreviewKey};
use std::sync::Arc;
use std::time::Duration;

/// Deploys `k`, then runs one reconcile that reports `ns`, at `T0 + at`.
async fn reconcile_reporting(store: &dyn Store, k: &PreviewKey, ns: &[i64], at: i64) {
    deploy(store, k, &format!("c{at}"), at).await;
    let claimed = store.claim_due("w", t(at), LEASE, 1_000).await.unwrap();
    assert!(claimed.iter().any(|p| p.key == *k), "{k} was not due");
    let reports = ns.iter().map(|n| report(*n)).collect();
    let write = update(Phase::Provisioning, 1, at + 3_600_000, reports);
    store.record_status(k, "w", &write, t(at)).await.unwrap();
}

fn numbers(items: &[OutboxItem]) -> Vec<(String, i64)> {
    items
        .iter()
        .map(|i| (i.key.branch.clone(), i.payload["n"].as_i64().unwrap()))
        .collect()
}

pub async fn reports_are_enqueued_with_the_status_they_belong_to(store: Arc<dyn Store>) {
    let k = key("main");
    reconcile_reporting(&*store, &k, &[1, 2], 1_000).await;
    assert_eq!(store.outbox_backlog().await.unwrap(), (2, Some(t(1_000))));
    let items = store.claim_outbox("d1", t(1_000), LEASE, 10).await.unwrap();
    // Only the first: its successor waits for it to be delivered.
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!((&item.key, item.kind.as_str()), (&k, "report"));
    assert_eq!(item.payload, serde_json::json!({ "n": 1 }));
    assert_eq!(
        (item.attempts, item.created_at, &item.last_error),
        (0, t(1_000), &None)
    );
}

pub async fn outbox_delivers_in_order_one_message_per_preview(store: Arc<dyn Store>) {
    let (a, b) = (key("a"), key("b"));
    reconcile_reporting(&*store, &a, &[1, 2], 0).await;
    reconcile_reporting(&*store, &b, &[1, 2, 3], 10).await;
    reconcile_reporting(&*store, &a, &[3], 20).await;

    let mut delivered = Vec::new();
    let mut now = 100;
    loop {
        let items = store.claim_outbox("d1", t(now), LEASE, 10).await.unwrap();
        if items.is_empty() {
            break;
        }
        let mut branches: Vec<_> = items.iter().map(|i| i.key.branch.clone()).collect();
        branches.dedup();
        assert_eq!(
            branches.len(),
            items.len(),
            "one per preview: {:?}",
            numbers(&items)
        );
        // While they are in flight nobody else gets anything for these previews.
        assert!(
            store
                .claim_outbox("d2", t(now), LEASE, 10)
                .await
                .unwrap()
                .is_empty()
        );
        for item in &items {
            store.ack_outbox(item.id, t(now)).await.unwrap();
        }
        delivered.extend(numbers(&items));
        now += 1;
    }
    let of = |branch: &str| -> Vec<i64> {
        delivered
            .iter()
            .filter(|(b, _)| b == branch)
            .map(|(_, n)| *n)
            .collect()
    };
    assert_eq!((of("a"), of("b")), (vec![1, 2, 3], vec![1, 2, 3]));
    assert_eq!(store.outbox_backlog().await.unwrap(), (0, None));
}

pub async fn a_retried_message_waits_and_holds_back_its_successors(store: Arc<dyn Store>) {
    let k = key("main");
    reconcile_reporting(&*store, &k, &[1, 2], 0).await;
    let first = store
        .claim_outbox("d1", t(0), LEASE, 10)
        .await
        .unwrap()
        .remove(0);
    store
        .retry_outbox(first.id, t(10_000), "HTTP 502 from the callback")
        .await
        .unwrap();
    assert!(
        store
            .claim_outbox("d1", t(9_999), LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.outbox_backlog().await.unwrap(), (2, Some(t(0))));

    let again = store
        .claim_outbox("d2", t(10_000), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(numbers(&again), [("main".to_owned(), 1)]);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(
        again[0].last_error.as_deref(),
        Some("HTTP 502 from the callback")
    );
    store.ack_outbox(first.id, t(10_001)).await.unwrap();
    // A repeated ack is harmless; retrying a delivered message is a mistake.
    store.ack_outbox(first.id, t(10_002)).await.unwrap();
    let err = store
        .retry_outbox(first.id, t(20_000), "late")
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid { field: "id", .. }),
        "{err:?}"
    );

    let second = store
        .claim_outbox("d2", t(10_003), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(numbers(&second), [("main".to_owned(), 2)]);
    store.ack_outbox(second[0].id, t(10_004)).await.unwrap();
    assert_eq!(store.outbox_backlog().await.unwrap(), (0, None));
    let err = store
        .ack_outbox(second[0].id + 1_000, t(0))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid { field: "id", .. }),
        "{err:?}"
    );
}

pub async fn an_expired_outbox_lease_can_be_reclaimed(store: Arc<dyn Store>) {
    let k = key("main");
    reconcile_reporting(&*store, &k, &[1], 0).await;
    let lease = Duration::from_secs(5);
    let first = store.claim_outbox("d1", t(0), lease, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        store
            .claim_outbox("d2", t(5_000), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let second = store.claim_outbox("d2", t(5_001), lease, 10).await.unwrap();
    assert_eq!(
        second.iter().map(|i| i.id).collect::<Vec<_>>(),
        [first[0].id]
    );
}

pub async fn outbox_claim_respects_its_limit_oldest_first(store: Arc<dyn Store>) {
    for (i, b) in ["c", "a", "b"].iter().enumerate() {
        reconcile_reporting(&*store, &key(b), &[1], i as i64).await;
    }
    let items = store.claim_outbox("d1", t(10), LEASE, 2).await.unwrap();
    let branches: Vec<_> = items.iter().map(|i| i.key.branch.as_str()).collect();
    assert_eq!(branches, ["c", "a"]);
    assert!(
        store
            .claim_outbox("d1", t(10), LEASE, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn github_deployments_are_kept_per_generation(store: Arc<dyn Store>) {
    let k = key("qanote/issue-42");
    assert_eq!(store.deployment(&k, None).await.unwrap(), None);
    assert_eq!(store.save_deployment(&k, 1, 501, t(0)).await.unwrap(), 501);
    assert_eq!(
        store.save_deployment(&k, 1, 999, t(1)).await.unwrap(),
        501,
        "a redelivery keeps the first"
    );
    assert_eq!(store.save_deployment(&k, 2, 502, t(2)).await.unwrap(), 502);
    assert_eq!(store.deployment(&k, Some(1)).await.unwrap(), Some(501));
    assert_eq!(
        store.deployment(&k, None).await.unwrap(),
        Some(502),
        "the newest"
    );
    assert_eq!(store.deployment(&key("other"), None).await.unwrap(), None);
}

/// The `kind` column keeps the spelling `report` (issue 15: the enum must
/// not drift it), and a kind a newer version wrote is read back as such,
/// not refused, so the claim still succeeds.
pub async fn the_outbox_kind_is_stored_as_report_and_an_unknown_one_still_reads(
    store: Arc<dyn Store>,
    db: Sql,
) {
    let k = key("main");
    reconcile_reporting(&*store, &k, &[1], 1_000).await;
    // Changes a row only if the stored spelling is exactly `report`.
    db.execute("UPDATE outbox SET kind = 'from_the_future' WHERE kind = 'report'")
        .await;
    let items = store.claim_outbox("d1", t(1_000), LEASE, 10).await.unwrap();
    assert_eq!(
        items.iter().map(|i| &i.kind).collect::<Vec<_>>(),
        [&OutboxKind::Other("from_the_future".into())]
    );
}

/// The sticky comment's messages queue apart from the reports (issue 16,
/// item 7): a comment GitHub keeps refusing holds back later comments of
/// its preview, never its deployment statuses and callbacks.
pub async fn a_retried_comment_holds_back_comments_not_reports(store: Arc<dyn Store>) {
    let k = key("main");
    deploy(&*store, &k, "c0", 0).await;
    store.claim_due("w", t(0), LEASE, 10).await.unwrap();
    let comment = |n: i64| previewd_core::OutboxMessage {
        kind: OutboxKind::Comment,
        payload: serde_json::json!({ "n": n }),
    };
    let outbox = vec![report(1), comment(1), report(2), comment(2)];
    let write = update(Phase::Provisioning, 1, 3_600_000, outbox);
    store.record_status(&k, "w", &write, t(0)).await.unwrap();

    let kinds = |items: &[OutboxItem]| -> Vec<(String, i64)> {
        items
            .iter()
            .map(|i| (i.kind.to_string(), i.payload["n"].as_i64().unwrap()))
            .collect()
    };
    let first = store.claim_outbox("d1", t(0), LEASE, 10).await.unwrap();
    let mut got = kinds(&first);
    got.sort();
    assert_eq!(
        got,
        [("comment".into(), 1), ("report".into(), 1)],
        "the head of each queue"
    );
    for item in &first {
        if item.kind == OutboxKind::Comment {
            store
                .retry_outbox(item.id, t(60_000), "HTTP 403 from GitHub")
                .await
                .unwrap();
        } else {
            store.ack_outbox(item.id, t(0)).await.unwrap();
        }
    }
    let next = store.claim_outbox("d1", t(1), LEASE, 10).await.unwrap();
    assert_eq!(
        kinds(&next),
        [("report".into(), 2)],
        "the report goes on; the second comment waits for the first"
    );
    store.ack_outbox(next[0].id, t(1)).await.unwrap();
    let later = store
        .claim_outbox("d1", t(60_000), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(kinds(&later), [("comment".into(), 1)]);
}

pub async fn a_pull_request_is_kept_per_preview_until_forgotten(store: Arc<dyn Store>) {
    let (k, other) = (key("qanote/issue-42"), key("qanote/issue-43"));
    assert_eq!(store.pull_request(&k).await.unwrap(), None);
    store.set_pull_request(&k, Some(7), t(0)).await.unwrap();
    store.set_pull_request(&other, Some(8), t(0)).await.unwrap();
    assert_eq!(store.pull_request(&k).await.unwrap(), Some(7));
    store.set_pull_request(&k, Some(9), t(1)).await.unwrap();
    assert_eq!(store.pull_request(&k).await.unwrap(), Some(9), "replaced");
    store.set_pull_request(&k, None, t(2)).await.unwrap();
    store.set_pull_request(&k, None, t(3)).await.unwrap();
    assert_eq!(store.pull_request(&k).await.unwrap(), None, "forgotten");
    assert_eq!(store.pull_request(&other).await.unwrap(), Some(8));
}
