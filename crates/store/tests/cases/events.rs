//! Cases for the event history: written with the status, deduplicated,
//! pruned per preview, read newest first.

use crate::support::*;
use previewd_core::ports::{Store, StoreError};
use previewd_core::{EVENTS_KEPT, Phase, PreviewKey};
use std::sync::Arc;

/// Claims `k` as `w` at `T0 + at` and writes `phase` with `message`.
async fn write(store: &dyn Store, k: &PreviewKey, phase: Phase, message: &str, at: i64) {
    let claimed = store.claim_due("w", t(at), LEASE, 1_000).await.unwrap();
    assert!(
        claimed.iter().any(|p| p.key == *k),
        "{k} was not due at {at}"
    );
    let mut u = update(phase, 1, at, vec![]);
    u.status.message = Some(message.to_owned());
    store.record_status(k, "w", &u, t(at)).await.unwrap();
}

pub async fn status_changes_are_kept_as_events_newest_first(store: Arc<dyn Store>) {
    let (k, other) = (key("qanote/issue-42"), key("other"));
    deploy(&*store, &k, "abc", 0).await;
    deploy(&*store, &other, "def", 0).await;
    assert!(store.events(&k, 10).await.unwrap().is_empty());
    write(&*store, &k, Phase::Provisioning, "applying changes", 10).await;
    // A resync that finds nothing new adds nothing.
    write(&*store, &k, Phase::Provisioning, "applying changes", 20).await;
    // Same phase, new message: worth a line.
    write(&*store, &k, Phase::Provisioning, "waiting for 1 task", 30).await;
    write(&*store, &k, Phase::Ready, "preview is ready", 40).await;
    let events = store.events(&k, 10).await.unwrap();
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e.phase, e.message.as_deref().unwrap(), e.at, e.generation))
        .collect();
    assert_eq!(
        seen,
        [
            (Phase::Ready, "preview is ready", t(40), 1),
            (Phase::Provisioning, "waiting for 1 task", t(30), 1),
            (Phase::Provisioning, "applying changes", t(10), 1),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].id > w[1].id), "{events:?}");
    assert_eq!(store.events(&k, 1).await.unwrap(), events[..1]);
    // The other preview's history is its own.
    assert!(store.events(&other, 10).await.unwrap().is_empty());
}

pub async fn events_are_pruned_to_the_newest_fifty_per_preview(store: Arc<dyn Store>) {
    let (k, other) = (key("busy"), key("quiet"));
    deploy(&*store, &k, "abc", 0).await;
    deploy(&*store, &other, "def", 0).await;
    let n = EVENTS_KEPT + 10;
    for i in 0..n {
        let at = 10 + i;
        // `other` is claimed too the first time, and stays leased meanwhile.
        let claimed = store.claim_due("w", t(at), LEASE, 1_000).await.unwrap();
        assert!(
            claimed.iter().any(|p| p.key == k),
            "{k} was not due at {at}"
        );
        let mut u = update(Phase::Provisioning, 1, at + 1, vec![]);
        u.status.message = Some(format!("step {i}"));
        store.record_status(&k, "w", &u, t(at)).await.unwrap();
    }
    write(&*store, &other, Phase::Ready, "preview is ready", 40_000).await;
    let events = store.events(&k, 1_000).await.unwrap();
    assert_eq!(events.len() as i64, EVENTS_KEPT);
    assert_eq!(
        events.first().unwrap().message.as_deref(),
        Some(format!("step {}", n - 1).as_str())
    );
    assert_eq!(
        events.last().unwrap().message.as_deref(),
        Some(format!("step {}", n - EVENTS_KEPT).as_str())
    );
    // Pruning one preview's history leaves the others' alone.
    assert_eq!(store.events(&other, 1_000).await.unwrap().len(), 1);
}

pub async fn a_status_write_with_a_lost_lease_notes_no_event(store: Arc<dyn Store>) {
    let k = key("main");
    deploy(&*store, &k, "abc", 0).await;
    claim_all(&*store, "w1", 0).await;
    let mut u = update(Phase::Failed, 1, 100, vec![]);
    u.status.message = Some("AccessDenied".into());
    let err = store.record_status(&k, "w2", &u, t(10)).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost(_)), "{err:?}");
    assert!(store.events(&k, 10).await.unwrap().is_empty());
}
