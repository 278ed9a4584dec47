//! The commands around the daemon, on moto: `previewd once` and
//! `previewd doctor`.

use crate::harness::{Moto, find, ours, previewd, write_config};
use crate::{BRANCH, FAMILY, SHA1, foreign, register_target_when_ready};

/// `previewd once`, as the workflow runs it: no daemon, no database.
#[tokio::test(flavor = "multi_thread")]
async fn once_deploys_then_destroys_on_moto_and_exits_zero() {
    let moto = Moto::start();
    let world = moto.world(&["setup"]);
    let before = moto.world(&["snapshot"]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, &world);
    let run = |action: &str| {
        let mut cmd = previewd(&dir, &moto, ("testing", "testing"), &[]);
        cmd.arg("--config")
            .arg(&config)
            .args(["once", "--action", action, "--branch", BRANCH])
            .args(["--timeout-secs", "120"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if action == "deploy" {
            cmd.args(["--commit-sha", SHA1]);
        }
        cmd.spawn().expect("previewd once starts")
    };

    let deploy = run("deploy");
    register_target_when_ready(&moto, || "(once keeps its output until it exits)".into()).await;
    let out = tokio::task::spawn_blocking(move || deploy.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "once deploy failed:\n{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "https://issue-42-preview.preview.example.com"
    );
    // Each step as it happened, a plain line each (not a terminal here).
    assert!(stderr.contains("Provisioning: "), "{stderr}");
    assert!(stderr.contains("Ready: preview is ready"), "{stderr}");
    let snap = moto.world(&["snapshot"]);
    assert!(find(&snap["services"], "name", FAMILY).is_some_and(ours));

    let destroy = run("destroy");
    let out = tokio::task::spawn_blocking(move || destroy.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "once destroy failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = moto.world(&["snapshot"]);
    for key in ["rules", "target_groups", "log_groups"] {
        assert!(
            !after[key].as_array().unwrap().iter().any(ours),
            "{key} left: {:#}",
            after[key]
        );
    }
    assert_eq!(foreign(&after), foreign(&before));
}

#[test]
fn once_refuses_bad_input_with_exit_code_two_and_the_field() {
    let moto = Moto::start();
    let world = moto.world(&["setup"]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, &world);
    let out = previewd(&dir, &moto, ("testing", "testing"), &[])
        .arg("--config")
        .arg(&config)
        .args(["once", "--action", "deploy", "--branch", BRANCH])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(r#""field":"commit_sha""#), "{stderr}");
    // Nothing was created for a refused request.
    let snap = moto.world(&["snapshot"]);
    assert!(!snap["target_groups"].as_array().unwrap().iter().any(ours));
}

/// `previewd doctor` on a configuration that can deploy, and on one that
/// cannot: each problem is a row with its fix, and the exit code says so.
#[test]
fn doctor_checks_the_account_and_names_each_fix() {
    let moto = Moto::start();
    let world = moto.world(&["setup"]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, &world);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "log_retention_days = 7",
        &format!(
            "log_retention_days = 7\nexecution_role_arn = \"{}\"",
            world["execution_role_arn"].as_str().unwrap()
        ),
    );
    let good = text.replace(
        "call_timeout_secs = 10",
        "call_timeout_secs = 10\necr_repository = \"previews\"",
    );
    std::fs::write(&config, &good).unwrap();
    let doctor = || {
        previewd(&dir, &moto, ("testing", "testing"), &[])
            .arg("--config")
            .arg(&config)
            .arg("doctor")
            .output()
            .unwrap()
    };
    let out = doctor();
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result_of = |table: &str, check: &str| -> String {
        table
            .lines()
            .find(|l| l.starts_with(check))
            .unwrap_or_else(|| panic!("no {check} row in:\n{table}"))
            .split_whitespace()
            .find(|w| ["OK", "WARNING", "PROBLEM"].contains(w))
            .unwrap()
            .to_owned()
    };
    for check in [
        "credentials",
        "ECS cluster",
        "hosted zone",
        "log groups",
        "task role",
        "ECR repository",
        "subnets",
        "security groups",
    ] {
        assert_eq!(result_of(&table, check), "OK", "{check}:\n{table}");
    }
    // moto has no IAM simulation: said plainly, not a failure.
    assert_eq!(result_of(&table, "permissions"), "WARNING", "{table}");
    assert!(table.contains("not simulated"), "{table}");

    // The wrong cluster, a zone that does not cover the domain, a subnet
    // that does not exist.
    let subnet = world["subnets"][0].as_str().unwrap();
    let bad = good
        .replace("cluster = \"previews\"", "cluster = \"nope\"")
        .replace(subnet, "subnet-0000000000000000f")
        .replace(
            "domain = \"preview.example.com\"",
            "domain = \"preview.other.org\"",
        );
    std::fs::write(&config, bad).unwrap();
    let out = doctor();
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert_eq!(result_of(&table, "ECS cluster"), "PROBLEM", "{table}");
    assert_eq!(result_of(&table, "hosted zone"), "PROBLEM", "{table}");
    assert_eq!(result_of(&table, "subnets"), "PROBLEM", "{table}");
    assert!(
        table.contains("fix: fix cloud.cluster") || table.contains("fix: create the cluster"),
        "{table}"
    );
    assert!(
        table.contains("point cloud.hosted_zone_id at the zone of naming.domain"),
        "{table}"
    );
}
