//! Cases for `Store::apply`, the one write path: the expiry it resolves
//! from the row it reads, the wake-up it gives after a write, and a
//! labelled pull request's deploy (recorded, stale, duplicate).

use crate::support::*;
use previewd_core::ports::Store;
use previewd_core::{Command, DeployRequest, Desired, Effect, Expiry, Lifetime, Phase, ReportTo};
use std::sync::Arc;
use std::time::Duration;

const HOUR_MS: i64 = 3_600_000;

/// A deploy of `commit` living by `lifetime`, as the API builds one.
fn deploy_by_lifetime(branch: &str, commit: &str, lifetime: Lifetime) -> Command {
    Command::Deploy {
        request: DeployRequest {
            expiry: Expiry::Lifetime(lifetime),
            ..deploy_request(&key(branch), commit)
        },
        naming: naming(),
    }
}

async fn expires_at(store: &dyn Store, command: &Command, at: i64) -> Option<i64> {
    let out = store.apply(command, t(at)).await.unwrap().into_outcome();
    let expires = out.expect("a deploy leaves a row").preview.expires_at;
    expires.map(|e| e.timestamp_millis() - T0)
}

pub async fn a_deploy_by_lifetime_counts_from_the_row_it_overwrites(store: Arc<dyn Store>) {
    let lifetime = Lifetime {
        ttl: Duration::from_secs(72 * 3600),
        max_lifetime: Duration::from_secs(100 * 3600),
    };
    let k = key("main");
    let first = deploy_by_lifetime("main", "abc123", lifetime);
    assert_eq!(expires_at(&*store, &first, 0).await, Some(72 * HOUR_MS));
    // A redeploy gets the ttl again, capped by the creation of the row.
    let second = deploy_by_lifetime("main", "def456", lifetime);
    assert_eq!(
        expires_at(&*store, &second, 50 * HOUR_MS).await,
        Some(100 * HOUR_MS)
    );
    // Torn down and Deleted: a deploy over it starts a new lifetime.
    store
        .apply(&Command::Destroy(k.clone()), t(60 * HOUR_MS))
        .await
        .unwrap();
    assert_eq!(claim_all(&*store, "w", 60 * HOUR_MS).await, vec![k.clone()]);
    let gone = update(Phase::Deleted, 3, 70 * HOUR_MS, vec![]);
    store
        .record_status(&k, "w", &gone, t(61 * HOUR_MS))
        .await
        .unwrap();
    assert_eq!(
        expires_at(&*store, &first, 200 * HOUR_MS).await,
        Some(272 * HOUR_MS)
    );
}

/// Whether the store's wake-up fires within a short while.
async fn woken(store: &dyn Store) -> bool {
    let wake = store.wakeups();
    tokio::time::timeout(Duration::from_millis(200), wake.notified())
        .await
        .is_ok()
}

pub async fn a_write_that_makes_a_row_due_wakes_the_loop_and_a_no_op_does_not(
    store: Arc<dyn Store>,
) {
    let k = key("main");
    let deploy = Command::Deploy {
        request: deploy_request(&k, "abc123"),
        naming: naming(),
    };
    assert!(!woken(&*store).await, "nothing written yet");
    assert!(store.apply(&deploy, t(0)).await.unwrap().changed());
    assert!(woken(&*store).await, "a new row");
    assert!(!store.apply(&deploy, t(1)).await.unwrap().changed());
    assert!(!woken(&*store).await, "an identical resend");
    let expired = store
        .apply(&Command::Expire(k.clone()), t(2))
        .await
        .unwrap();
    let row = expired.outcome().expect("the row").preview.clone();
    assert_eq!((row.desired, row.generation), (Desired::Absent, 2));
    assert!(woken(&*store).await, "an expiry");
    for again in [Command::Expire(k.clone()), Command::Destroy(k.clone())] {
        assert!(!store.apply(&again, t(3)).await.unwrap().changed());
    }
    assert!(!woken(&*store).await, "destroying an absent row");
    let close = Command::WebhookDestroy {
        delivery: delivery("d1", "closed"),
        key: key("never-deployed"),
        event_at: None,
    };
    assert_eq!(
        store.apply(&close, t(4)).await.unwrap(),
        Effect::Applied(None)
    );
    assert_eq!(store.apply(&close, t(5)).await.unwrap(), Effect::Duplicate);
    assert!(!woken(&*store).await, "a webhook that found no row");
}

/// A labelled pull request's deploy of `commit`, changed at `event_at`.
fn webhook_deploy(id: &str, commit: &str, event_at: Option<i64>) -> Command {
    Command::WebhookDeploy {
        delivery: delivery(id, &format!("synchronize {commit}")),
        request: deploy_request(&key("changes"), commit),
        naming: naming(),
        event_at: event_at.map(t),
        pull_request: Some(7),
    }
}

pub async fn a_labelled_deploy_is_recorded_and_never_rolls_a_newer_deploy_back(
    store: Arc<dyn Store>,
) {
    let first = webhook_deploy("d1", "c1", Some(0));
    let out = store.apply(&first, t(500)).await.unwrap();
    assert!(out.changed(), "{out:?}");
    assert_eq!(
        store.apply(&first, t(600)).await.unwrap(),
        Effect::Duplicate
    );
    // A push in the deploy's own second cannot be told older: it deploys.
    let same_second = webhook_deploy("d2", "c2", Some(0));
    assert!(store.apply(&same_second, t(900)).await.unwrap().changed());
    // A change from a second before the last deploy is stale, and recorded.
    let late = webhook_deploy("d3", "c0", Some(-1_000));
    assert_eq!(store.apply(&late, t(2_000)).await.unwrap(), Effect::Stale);
    assert_eq!(
        store.apply(&late, t(2_100)).await.unwrap(),
        Effect::Duplicate
    );
    let row = store.get(&key("changes")).await.unwrap().unwrap();
    assert_eq!(
        (row.spec.commit_sha.as_deref(), row.generation),
        (Some("c2"), 2)
    );
    // Without a time nothing is stale.
    let timeless = webhook_deploy("d4", "c3", None);
    assert!(store.apply(&timeless, t(3_000)).await.unwrap().changed());
    // The pull request is kept for the sticky comment (issue 16, item 7).
    assert_eq!(store.pull_request(&key("changes")).await.unwrap(), Some(7));
}

/// A destroy's own run id and callback replace the deploy's on the row
/// (the Deleted report reads them there); what it leaves out stays.
pub async fn a_destroy_keeps_its_own_run_and_callback_for_the_report(store: Arc<dyn Store>) {
    let k = key("main");
    let mut request = deploy_request(&k, "abc123");
    request.spec.ai_run_id = Some("run-deploy".into());
    request.spec.callback_url = Some("https://qa.example.com/deployed".into());
    let deploy = Command::Deploy {
        request,
        naming: naming(),
    };
    store.apply(&deploy, t(0)).await.unwrap();
    let destroy = Command::DestroyFor {
        key: k.clone(),
        report_to: ReportTo {
            ai_run_id: Some("run-destroy".into()),
            callback_url: None,
        },
    };
    let out = store.apply(&destroy, t(1)).await.unwrap();
    let row = out.outcome().expect("the row").preview.clone();
    assert_eq!((row.desired, row.generation), (Desired::Absent, 2));
    assert_eq!(row.spec.ai_run_id.as_deref(), Some("run-destroy"));
    assert_eq!(
        row.spec.callback_url.as_deref(),
        Some("https://qa.example.com/deployed"),
        "none given: the deploy's stays"
    );
    assert_eq!(store.get(&k).await.unwrap().unwrap().spec, row.spec);
}
