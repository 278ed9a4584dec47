//! Webhook deliveries: acted on once by id and by body, recorded with the
//! destroy they cause, stale closes spared, old deliveries forgotten.

use crate::support::*;
use previewd_core::ports::{Delivery, Store, StoreError, WebhookDestroy};
use previewd_core::{Desired, Phase};
use std::sync::Arc;

const DAY_MS: i64 = 24 * 60 * 60 * 1_000;

/// A "PR closed" body for `branch`, as GitHub signs it.
fn closed(branch: &str) -> String {
    format!(r#"{{"action":"closed","pull_request":{{"head":{{"ref":"{branch}"}}}}}}"#)
}

fn destroyed(out: WebhookDestroy) -> bool {
    matches!(out, WebhookDestroy::Applied(Some(o)) if o.changed && o.preview.desired == Desired::Absent)
}

pub async fn a_webhook_delivery_is_acted_on_once(store: Arc<dyn Store>) {
    let first = delivery("72d3162e-cc78-11e3-81ab-4c9367dc0958", "body");
    assert!(store.remember_delivery(&first, t(0)).await.unwrap());
    assert!(!store.remember_delivery(&first, t(5)).await.unwrap());
    assert!(
        !store
            .remember_delivery(&delivery(&first.id, "another body"), t(5))
            .await
            .unwrap(),
        "the same id with another body"
    );
    assert!(
        store
            .remember_delivery(&delivery("another", "another body"), t(5))
            .await
            .unwrap(),
        "the refused one above left nothing behind"
    );
}

pub async fn a_body_replayed_under_a_fresh_id_is_a_duplicate(store: Arc<dyn Store>) {
    let k = key("feature");
    deploy(&*store, &k, "c1", 0).await;
    let body = closed("feature");
    assert!(destroyed(
        store
            .apply_webhook_destroy(&delivery("d1", &body), &k, Some(t(500)), t(1_000))
            .await
            .unwrap()
    ));
    // Redeployed afterwards; the old signed body, sent again as new.
    deploy(&*store, &k, "c2", 2_000).await;
    let replay = delivery("d2", &body);
    assert_eq!(
        store
            .apply_webhook_destroy(&replay, &k, None, t(3_000))
            .await
            .unwrap(),
        WebhookDestroy::Duplicate
    );
    assert!(!store.remember_delivery(&replay, t(3_000)).await.unwrap());
    let row = store.get(&k).await.unwrap().unwrap();
    assert_eq!(row.desired, Desired::Present);
    assert_eq!(row.spec.commit_sha.as_deref(), Some("c2"));
}

pub async fn a_redelivered_destroy_is_a_duplicate_and_writes_nothing(store: Arc<dyn Store>) {
    let k = key("feature");
    deploy(&*store, &k, "c1", 0).await;
    let d = delivery("d1", &closed("feature"));
    assert!(destroyed(
        store
            .apply_webhook_destroy(&d, &k, Some(t(500)), t(1_000))
            .await
            .unwrap()
    ));
    let after_first = store.get(&k).await.unwrap().unwrap();
    deploy(&*store, &k, "c2", 2_000).await;
    let before = store.get(&k).await.unwrap().unwrap();
    assert_eq!(
        store
            .apply_webhook_destroy(&d, &k, Some(t(500)), t(3_000))
            .await
            .unwrap(),
        WebhookDestroy::Duplicate
    );
    assert_eq!(store.get(&k).await.unwrap().unwrap(), before);
    assert_eq!(before.generation, after_first.generation + 1);
}

pub async fn a_close_older_than_the_redeploy_is_stale_and_the_preview_stays(store: Arc<dyn Store>) {
    let k = key("feature");
    deploy(&*store, &k, "c1", 0).await;
    deploy(&*store, &k, "c2", 10_000).await;
    let before = store.get(&k).await.unwrap().unwrap();
    let d = delivery("d1", &closed("feature"));
    assert_eq!(
        store
            .apply_webhook_destroy(&d, &k, Some(t(5_000)), t(11_000))
            .await
            .unwrap(),
        WebhookDestroy::Stale
    );
    assert_eq!(
        store.get(&k).await.unwrap().unwrap(),
        before,
        "row untouched"
    );
    assert!(
        !store.remember_delivery(&d, t(12_000)).await.unwrap(),
        "a stale delivery is still recorded"
    );
}

pub async fn a_close_after_the_deploy_applies_though_status_was_written_since(
    store: Arc<dyn Store>,
) {
    let k = key("feature");
    deploy(&*store, &k, "c1", 0).await;
    // A status write moves updated_at past the close; the deploy stays at 0.
    assert_eq!(claim_all(&*store, "w", 20_000).await, vec![k.clone()]);
    store
        .record_status(&k, "w", &update(Phase::Ready, 1, 80_000, vec![]), t(20_000))
        .await
        .unwrap();
    let d = delivery("d1", &closed("feature"));
    assert!(destroyed(
        store
            .apply_webhook_destroy(&d, &k, Some(t(12_000)), t(21_000))
            .await
            .unwrap()
    ));
}

pub async fn a_close_without_a_time_skips_the_staleness_rule(store: Arc<dyn Store>) {
    let k = key("feature");
    deploy(&*store, &k, "c1", 10_000).await;
    let d = Delivery::of_body("d1", "delete", br#"{"ref":"feature","ref_type":"branch"}"#);
    assert!(destroyed(
        store
            .apply_webhook_destroy(&d, &k, None, t(11_000))
            .await
            .unwrap()
    ));
}

pub async fn a_webhook_destroy_does_what_apply_destroy_does(store: Arc<dyn Store>) {
    let (k, twin) = (key("feature"), key("twin"));
    assert_eq!(
        store
            .apply_webhook_destroy(&delivery("d0", "none"), &k, Some(t(0)), t(0))
            .await
            .unwrap(),
        WebhookDestroy::Applied(None),
        "no such preview"
    );
    deploy(&*store, &k, "c1", 0).await;
    deploy(&*store, &twin, "c1", 0).await;
    let WebhookDestroy::Applied(Some(webhook)) = store
        .apply_webhook_destroy(&delivery("d1", "a"), &k, Some(t(500)), t(1_000))
        .await
        .unwrap()
    else {
        panic!("not applied")
    };
    let plain = store.apply_destroy(&twin, t(1_000)).await.unwrap().unwrap();
    assert!(webhook.changed && plain.changed);
    assert_eq!(webhook.preview.desired, Desired::Absent);
    assert_eq!(
        (
            webhook.preview.generation,
            webhook.preview.next_reconcile_at
        ),
        (plain.preview.generation, plain.preview.next_reconcile_at)
    );
    assert_eq!(store.get(&k).await.unwrap().unwrap(), webhook.preview);
    assert_eq!(
        store
            .apply_webhook_destroy(&delivery("d2", "b"), &k, Some(t(1_500)), t(2_000))
            .await
            .unwrap(),
        WebhookDestroy::Applied(Some(previewd_core::ApplyOutcome {
            preview: webhook.preview,
            changed: false
        })),
        "already absent"
    );
}

/// The failure is real: a row this version cannot read (a newer version
/// wrote its phase) makes the destroy's `RETURNING` fail after the delivery
/// and the update were written, so both must roll back.
pub async fn a_failed_webhook_destroy_records_no_delivery(store: Arc<dyn Store>, db: Sql) {
    let k = key("feature");
    deploy(&*store, &k, "c1", 0).await;
    db.execute("UPDATE previews SET phase = 'FromTheFuture' WHERE branch = 'feature'")
        .await;
    let d = delivery("d1", &closed("feature"));
    let err = store
        .apply_webhook_destroy(&d, &k, Some(t(500)), t(1_000))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    db.execute("UPDATE previews SET phase = 'Pending' WHERE branch = 'feature'")
        .await;
    let row = store.get(&k).await.unwrap().unwrap();
    assert_eq!(
        (row.desired, row.generation),
        (Desired::Present, 1),
        "the update rolled back"
    );
    assert!(
        destroyed(
            store
                .apply_webhook_destroy(&d, &k, Some(t(500)), t(2_000))
                .await
                .unwrap()
        ),
        "GitHub's redelivery is acted on"
    );
}

pub async fn deliveries_older_than_thirty_days_are_forgotten(store: Arc<dyn Store>) {
    let (old, recent) = (delivery("old", "1"), delivery("recent", "2"));
    assert!(
        store
            .remember_delivery(&old, t(-31 * DAY_MS))
            .await
            .unwrap()
    );
    assert!(
        store
            .remember_delivery(&recent, t(-29 * DAY_MS))
            .await
            .unwrap()
    );
    // Any insert prunes; this one through the destroy path.
    assert_eq!(
        store
            .apply_webhook_destroy(&delivery("now", "3"), &key("gone"), None, t(0))
            .await
            .unwrap(),
        WebhookDestroy::Applied(None)
    );
    assert!(!store.remember_delivery(&recent, t(0)).await.unwrap());
    assert!(
        store.remember_delivery(&old, t(0)).await.unwrap(),
        "forgotten, so new again"
    );
}

pub async fn a_delivery_breaking_a_bound_is_refused_with_the_field_named(store: Arc<dyn Store>) {
    let good = delivery("d1", "body");
    let with = |f: fn(&mut Delivery)| {
        let mut d = good.clone();
        f(&mut d);
        d
    };
    for (bad, field) in [
        (with(|d| d.body_sha256.truncate(63)), "body_sha256"),
        (with(|d| d.body_sha256.push('0')), "body_sha256"),
        (
            with(|d| d.body_sha256 = d.body_sha256.to_uppercase()),
            "body_sha256",
        ),
        (
            with(|d| d.body_sha256.replace_range(..1, "g")),
            "body_sha256",
        ),
        (with(|d| d.id = "x".repeat(129)), "delivery_id"),
        (with(|d| d.id.clear()), "delivery_id"),
    ] {
        for err in [
            store.remember_delivery(&bad, t(0)).await.unwrap_err(),
            store
                .apply_webhook_destroy(&bad, &key("feature"), None, t(0))
                .await
                .unwrap_err(),
        ] {
            match err {
                StoreError::Invalid { field: named, .. } => assert_eq!(named, field, "{bad:?}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
    assert!(
        store.remember_delivery(&good, t(0)).await.unwrap(),
        "nothing was written"
    );
}
