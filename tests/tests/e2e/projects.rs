//! Several projects on the sim (issue 17, item 2): a retired project's
//! previews are destroyed by the next sweep, with its own template, and
//! another project's preview of the same branch is left alone.

use crate::*;
use previewd_controller::{SweepOptions, Sweeper};
use previewd_core::key::PreviewKey;
use previewd_core::model::{DeployRequest, Desired, Phase, PreviewSpec};
use previewd_core::projects::{Project, Projects};
use previewd_core::render::Template;
use previewd_core::{Expiry, Lifetime};
use previewd_sim::SimConfig;
use std::time::Duration;

const BRANCH: &str = "qanote/issue-5";
const OTHER: &str = "acme/other";

#[tokio::test]
async fn a_retired_projects_previews_are_destroyed_by_the_sweep_and_no_other() {
    let app = spawn_app(SimConfig::default(), None).await;
    let lifetime = Lifetime {
        ttl: Duration::from_secs(72 * 3600),
        max_lifetime: Duration::from_secs(14 * 24 * 3600),
    };
    let retired = PreviewKey::new(previewd_tests::PROJECT, BRANCH).unwrap();
    let other = PreviewKey::new(OTHER, BRANCH).unwrap();
    for key in [&retired, &other] {
        let req = DeployRequest {
            key: key.clone(),
            spec: PreviewSpec {
                commit_sha: Some("abc1234".into()),
                ..Default::default()
            },
            expiry: Expiry::Lifetime(lifetime),
        };
        app.store
            .apply_deploy(
                &req,
                &previewd_core::naming::NamingConfig::default(),
                chrono::Utc::now(),
            )
            .await
            .unwrap();
    }
    app.api.wait_for(BRANCH, WITHIN, phase_is("Ready", 1)).await;
    let deadline = std::time::Instant::now() + WITHIN;
    while app.store.get(&other).await.unwrap().unwrap().status.phase != Phase::Ready {
        assert!(
            std::time::Instant::now() < deadline,
            "the other project's preview never got Ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let template = Arc::new(Template::default());
    let project = |name: &str, retired: bool| Project {
        name: name.into(),
        template: template.clone(),
        lifetime,
        retired,
    };
    let projects = Projects::new(vec![
        project(previewd_tests::PROJECT, true),
        project(OTHER, false),
    ])
    .unwrap();
    let sweeper = Sweeper {
        cloud: previewd_controller::Cloud::from_one(app.sim.clone()),
        store: app.store.clone(),
        template: template.clone(),
        pool: Arc::new(previewd_core::pool::Pool::single(&template)),
        projects: Some(Arc::new(projects)),
    };
    let opts = SweepOptions {
        dry_run: false,
        grace: Duration::from_secs(900),
        max_deletions: 20,
    };
    let report = sweeper.sweep(&opts, chrono::Utc::now()).await.unwrap();
    assert_eq!(report.expired.as_slice(), std::slice::from_ref(&retired));
    // Torn down through the normal path, like a destroy.
    app.api
        .wait_for(BRANCH, WITHIN, phase_is("Deleted", 2))
        .await;
    let kept = app.store.get(&other).await.unwrap().unwrap();
    assert_eq!(
        (kept.desired, kept.status.phase),
        (Desired::Present, Phase::Ready)
    );
    // A second sweep has nothing more to expire.
    let again = sweeper.sweep(&opts, chrono::Utc::now()).await.unwrap();
    assert!(again.expired.is_empty(), "{:?}", again.expired);
}

/// A preview of a project the configuration does not name (a replica
/// configured differently wrote it) is never built with another project's
/// names: its pass calls AWS not at all and fails, retryably, saying why.
#[tokio::test]
async fn a_preview_of_an_unconfigured_project_is_left_alone() {
    let sim = previewd_sim::Sim::new(SimConfig::default());
    let store = previewd_store::open("sqlite::memory:").await.unwrap();
    let key = PreviewKey::new("acme/elsewhere", BRANCH).unwrap();
    let req = DeployRequest {
        key: key.clone(),
        spec: PreviewSpec {
            commit_sha: Some("abc1234".into()),
            ..Default::default()
        },
        expiry: Expiry::Never,
    };
    store
        .apply(
            &previewd_core::Command::Deploy {
                request: req,
                naming: previewd_core::naming::NamingConfig::default(),
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let p = store.get(&key).await.unwrap().unwrap();
    let template = Arc::new(Template::default());
    let only = Projects::new(vec![Project {
        name: previewd_tests::PROJECT.into(),
        template: template.clone(),
        lifetime: Lifetime {
            ttl: Duration::from_secs(3600),
            max_lifetime: Duration::from_secs(7200),
        },
        retired: false,
    }])
    .unwrap();
    let reconciler = previewd_controller::Reconciler::new(
        store.clone(),
        previewd_controller::Cloud::from_one(sim.clone()),
        template,
        previewd_controller::ControllerConfig::default(),
    )
    .with_projects(Arc::new(only));
    let before = sim.calls();
    let outcome = reconciler
        .attempt(&p, None, tokio::time::Instant::now())
        .await;
    let previewd_core::decide::Outcome::Error(e) = &outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(e.code(), "ProjectNotConfigured");
    assert_eq!(e.class(), previewd_core::ErrorClass::Retryable);
    assert!(e.to_string().contains("acme/elsewhere"), "{e}");
    assert_eq!(sim.calls(), before, "AWS was called for it");
    let update = reconciler.decide(&p, &outcome);
    assert_ne!(update.status.phase, Phase::Failed, "{update:?}");
}
