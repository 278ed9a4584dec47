//! A project removed from the configuration while it still has previews
//! (issue 17, item 2): previewd refuses to start rather than leave them
//! running or touch them with another project's names, and says how to
//! retire the project instead; retired, the sweep is allowed to run.

use previewd_core::command::{Command, Expiry};
use previewd_core::key::PreviewKey;
use previewd_core::model::{DeployRequest, PreviewSpec};
use std::process::Output;

fn previewd(config: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("previewd.toml");
    std::fs::write(&path, config).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_previewd"))
        .arg("--config")
        .arg(&path)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("previewd runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn live_previews_of_an_unnamed_project_stop_the_start_until_it_is_retired() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    {
        let store = previewd_store::open(&url).await.unwrap();
        let deploy = Command::Deploy {
            request: DeployRequest {
                key: PreviewKey::new("acme/gone", "qanote/issue-1").unwrap(),
                spec: PreviewSpec {
                    commit_sha: Some("abc1234".into()),
                    ..Default::default()
                },
                expiry: Expiry::Never,
            },
            naming: previewd_core::NamingConfig::default(),
        };
        store.apply(&deploy, chrono::Utc::now()).await.unwrap();
    }
    let store = format!("[store]\nurl = \"{url}\"\n");

    let removed = previewd(
        &format!("{store}[previews]\nproject = \"acme/web\"\n"),
        &["gc", "--dry-run"],
    );
    assert!(!removed.status.success());
    let err = String::from_utf8_lossy(&removed.stderr);
    assert!(err.contains("acme/gone"), "{err}");
    assert!(err.contains("retired = true"), "{err}");

    let retired = previewd(
        &format!(
            "{store}[[projects]]\nproject = \"acme/web\"\n[[projects]]\nproject = \"acme/gone\"\nretired = true\n"
        ),
        &["gc", "--dry-run"],
    );
    let out = String::from_utf8_lossy(&retired.stdout);
    assert!(
        retired.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&retired.stderr)
    );
    // The dry run names the retired project's preview as the one to go.
    assert!(out.contains("qanote/issue-1"), "{out}");
    assert!(out.contains("1 expired preview(s)"), "{out}");
}
