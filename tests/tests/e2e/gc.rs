//! Garbage collection on the sim: TTL expiry through the normal destroy
//! path, orphans removed, foreign look-alikes untouched, the brake, grace.

use crate::*;
use previewd_controller::{SweepOptions, Sweeper};
use previewd_core::model::{DeployRequest, ListFilter, PreviewSpec};
use previewd_core::tags::{self, Tags};
use previewd_sim::SimConfig;
use previewd_tests::plant_orphans;
use std::time::Duration;

fn sweeper(app: &TestApp) -> Sweeper {
    Sweeper {
        cloud: previewd_controller::Cloud::from_one(app.sim.clone()),
        store: app.store.clone(),
        template: Arc::new(previewd_core::render::Template::default()),
        pool: Arc::new(previewd_core::pool::Pool::single(&Default::default())),
        projects: None,
    }
}

fn now_opts(max: usize) -> SweepOptions {
    SweepOptions {
        dry_run: false,
        grace: Duration::ZERO,
        max_deletions: max,
    }
}

fn foreign_look_alikes(sim: &previewd_sim::Sim) {
    sim.add_foreign_target_group("pv-ghost-old", Tags::new());
    sim.add_foreign_log_group("/ecs/pv-ghost-archive");
    sim.add_foreign_service("pv-ghost-legacy");
    let mut other = Tags::new();
    other.insert(tags::MANAGED_BY.into(), "another-previewd".into());
    other.insert(tags::SLUG.into(), "spectre".into());
    sim.add_foreign_target_group("pv-spectre", other);
    sim.add_foreign_record(previewd_core::observed::DnsRecord {
        name: "spectre-preview.preview.example.com".into(),
        kind: previewd_core::observed::RecordType::Txt,
        ttl: Some(300),
        values: vec![tags::dns_owner_marker("another-previewd", "spectre")],
        alias_target: None,
    });
}

#[tokio::test]
async fn orphans_are_removed_and_foreign_look_alikes_survive() {
    let app = spawn_app_with(SimConfig::default(), None, foreign_look_alikes).await;
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-1", "abc1234"))
        .await;
    app.api
        .wait_for("qanote/issue-1", WITHIN, phase_is("Ready", 1))
        .await;
    let live_before = app.sim.snapshot().owned_by(ID);
    plant_orphans(&app.sim, ID, "ghost").await;
    let foreign_before = app.sim.snapshot().foreign_to(ID);

    let report = sweeper(&app)
        .sweep(&now_opts(20), chrono::Utc::now())
        .await
        .unwrap();
    let kinds: Vec<String> = report
        .unwanted
        .iter()
        .map(|p| p.candidate.resource.kind.to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "dns-records",
            "target-group",
            "task-definitions",
            "log-group"
        ]
    );
    assert!(
        report
            .unwanted
            .iter()
            .all(|p| p.candidate.resource.slug == "ghost")
    );
    assert_eq!(
        (report.deleted, report.braked, report.errors.len()),
        (4, false, 0),
        "{:?}",
        report.errors
    );

    let snap = app.sim.snapshot();
    assert_eq!(snap.owned_by(ID), live_before, "only the orphans went");
    assert_eq!(
        snap.foreign_to(ID),
        foreign_before,
        "nothing foreign was touched"
    );
    // Idempotent: a second sweep finds nothing.
    let again = sweeper(&app)
        .sweep(&now_opts(20), chrono::Utc::now())
        .await
        .unwrap();
    assert!(again.unwanted.is_empty() && again.deleted == 0);
}

#[tokio::test]
async fn the_brake_stops_a_sweep_that_would_delete_too_much() {
    let app = spawn_app(SimConfig::default(), None).await;
    plant_orphans(&app.sim, ID, "ghost-a").await;
    plant_orphans(&app.sim, ID, "ghost-b").await;
    let before = app.sim.snapshot();
    let report = sweeper(&app)
        .sweep(&now_opts(5), chrono::Utc::now())
        .await
        .unwrap();
    assert!(report.braked);
    assert_eq!((report.unwanted.len(), report.deleted), (8, 0));
    assert_eq!(app.sim.snapshot(), before);
    assert!(report.to_table(0).contains("BRAKE"));
}

#[tokio::test]
async fn nothing_is_deleted_before_its_grace_period_has_passed() {
    let app = spawn_app(SimConfig::default(), None).await;
    plant_orphans(&app.sim, ID, "ghost").await;
    let opts = SweepOptions {
        grace: Duration::from_secs(3600),
        ..now_opts(20)
    };
    let t0 = chrono::Utc::now();
    let first = sweeper(&app).sweep(&opts, t0).await.unwrap();
    assert_eq!(first.deleted, 0);
    assert!(first.unwanted.iter().all(|p| !p.due));
    let dry = SweepOptions {
        dry_run: true,
        ..opts.clone()
    };
    let later = t0 + chrono::Duration::hours(2);
    let preview = sweeper(&app).sweep(&dry, later).await.unwrap();
    assert!(
        preview
            .unwanted
            .iter()
            .all(|p| p.due && p.first_seen.timestamp_millis() == t0.timestamp_millis())
    );
    assert_eq!(preview.deleted, 0, "a dry run deletes nothing");
    let second = sweeper(&app).sweep(&opts, later).await.unwrap();
    assert_eq!(second.deleted, 4);
    assert!(app.sim.snapshot().owned_by(ID).is_empty());
}

#[tokio::test]
async fn an_expired_preview_is_destroyed_through_the_normal_path() {
    let app = spawn_app(SimConfig::default(), None).await;
    let key =
        previewd_core::key::PreviewKey::new(previewd_tests::PROJECT, "qanote/issue-8").unwrap();
    let spec = PreviewSpec {
        commit_sha: Some("abc1234".into()),
        ..Default::default()
    };
    let soon = chrono::Utc::now() + chrono::Duration::milliseconds(300);
    let req = DeployRequest {
        key: key.clone(),
        spec,
        expiry: previewd_core::Expiry::At(soon),
    };
    app.store
        .apply_deploy(
            &req,
            &previewd_core::naming::NamingConfig::default(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    app.api
        .wait_for("qanote/issue-8", WITHIN, phase_is("Ready", 1))
        .await;
    let early = sweeper(&app)
        .sweep(
            &now_opts(20),
            chrono::Utc::now() - chrono::Duration::seconds(1),
        )
        .await
        .unwrap();
    assert!(early.expired.is_empty());
    let report = sweeper(&app).sweep(&now_opts(20), soon).await.unwrap();
    assert_eq!(report.expired.as_slice(), std::slice::from_ref(&key));
    // The reconciler (woken by the next poll) tears it down like a destroy.
    let p = app
        .api
        .wait_for("qanote/issue-8", WITHIN, phase_is("Deleted", 2))
        .await;
    assert_eq!(p["desired"], "absent");
    assert!(app.sim.snapshot().owned_by(ID).is_empty());
    let rows = app.store.list(&ListFilter::default()).await.unwrap();
    assert_eq!(rows.len(), 1, "the row stays as a tombstone");
}

/// Prints the table README shows: `cargo nextest run -p previewd-tests
/// gc_dry_run_table --no-capture`.
#[tokio::test]
async fn gc_dry_run_table() {
    let app = spawn_app_with(SimConfig::default(), None, foreign_look_alikes).await;
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-1", "abc1234"))
        .await;
    app.api
        .wait_for("qanote/issue-1", WITHIN, phase_is("Ready", 1))
        .await;
    let key =
        previewd_core::key::PreviewKey::new(previewd_tests::PROJECT, "feature/old-login").unwrap();
    let spec = PreviewSpec {
        commit_sha: Some("abc1234".into()),
        ..Default::default()
    };
    let expires_at = Some(chrono::Utc::now() + chrono::Duration::minutes(30));
    let req = DeployRequest {
        key,
        spec,
        expiry: expires_at.into(),
    };
    app.store
        .apply_deploy(
            &req,
            &previewd_core::naming::NamingConfig::default(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    plant_orphans(&app.sim, ID, "ghost").await;
    // A daemon sweep saw the orphans an hour ago (grace 15 min).
    let daemon = SweepOptions {
        dry_run: false,
        grace: Duration::from_secs(900),
        max_deletions: 20,
    };
    let t0 = chrono::Utc::now() - chrono::Duration::hours(1);
    let first = sweeper(&app).sweep(&daemon, t0).await.unwrap();
    assert_eq!(first.deleted, 0);
    let opts = SweepOptions {
        dry_run: true,
        ..daemon
    };
    let at = chrono::Utc::now() + chrono::Duration::hours(1);
    let report = sweeper(&app).sweep(&opts, at).await.unwrap();
    let table = report.to_table(900);
    println!("{table}");
    assert!(table.contains("orphan: no preview has this slug"));
    assert!(table.contains("feature/old-login") && table.contains("expired: past its TTL"));
    assert_eq!(report.unwanted.iter().filter(|p| p.due).count(), 4);
    assert!(!table.contains("issue-1"), "the live preview is not listed");
    assert!(
        !table.contains("spectre"),
        "another controller's resources are not listed"
    );
}

#[tokio::test]
async fn the_daemon_shows_its_next_sweep_and_changes_nothing() {
    let app = spawn_app(SimConfig::default(), None).await;
    plant_orphans(&app.sim, ID, "ghost").await;
    let before = app.sim.snapshot();
    let (status, report) = app.api.get("/v1/gc").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["dry_run"], true);
    let slugs: Vec<&str> = report["unwanted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["resource"]["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["ghost"; 4]);
    assert_eq!(app.sim.snapshot(), before);
}
