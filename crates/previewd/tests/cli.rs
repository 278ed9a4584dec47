//! The previewd binary as a person runs it.

use std::io::Write;
use std::process::{Command, Output};

fn previewd(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_previewd"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("previewd runs")
}

fn config_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_lists_the_subcommands_with_one_line_descriptions() {
    let out = previewd(&["--help"], &[]);
    assert!(out.status.success());
    // Column widths follow the longest name; compare words, not spaces.
    let text = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for line in [
        "serve Run the daemon",
        "migrate Apply the database migrations",
        "config Work with the configuration",
        "once Deploy or destroy one preview now",
        "iam-policy Print the least-privilege IAM policy",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[test]
fn config_check_reports_each_of_three_mistakes_with_its_key() {
    let f = config_file(
        r#"
[server]
listen = "not-an-address"
[controller]
workers = "many"
[naming]
prefix = "Bad-Prefix"
"#,
    );
    let out = previewd(
        &["--config", f.path().to_str().unwrap(), "config", "check"],
        &[],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("3 problem(s)"), "{err}");
    for key in ["server.listen:", "controller.workers:", "naming.prefix:"] {
        assert!(err.contains(key), "missing {key} in:\n{err}");
    }
}

#[test]
fn the_example_config_is_valid() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/examples/previewd.toml"
    );
    let out = previewd(&["--config", path, "config", "check"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn unknown_keys_and_secrets_in_the_file_are_refused() {
    let f =
        config_file("[server]\nlisen = \"127.0.0.1:1\"\napi_token = \"hunter2\"\n[servr]\nx = 1\n");
    let out = previewd(
        &["--config", f.path().to_str().unwrap(), "config", "check"],
        &[],
    );
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("server.lisen: unknown field"), "{err}");
    assert!(
        err.contains("server.api_token: secrets never sit in the file"),
        "{err}"
    );
    assert!(err.contains("servr: unknown section"), "{err}");
    assert!(
        !err.contains("hunter2"),
        "a secret reached the output: {err}"
    );
}

#[test]
fn the_api_share_is_a_percentage() {
    for bad in ["0", "101"] {
        let out = previewd(
            &["config", "check"],
            &[("PREVIEWD_CLOUD_API_SHARE_PERCENT", bad)],
        );
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains("cloud.api_share_percent: must be 1..=100"),
            "{bad}: {err}"
        );
    }
    let out = previewd(
        &["config", "check"],
        &[("PREVIEWD_CLOUD_API_SHARE_PERCENT", "25")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn the_image_wait_is_refused_outside_a_second_to_a_day_naming_the_key() {
    for bad in ["0", "86401"] {
        let out = previewd(
            &["config", "check"],
            &[("PREVIEWD_CONTAINER_IMAGE_WAIT_SECS", bad)],
        );
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains("container.image_wait_secs: must be 1..=86400"),
            "{bad}: {err}"
        );
    }
    let out = previewd(
        &["config", "check"],
        &[("PREVIEWD_CONTAINER_IMAGE_WAIT_SECS", "60")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn environment_overrides_any_key() {
    let out = previewd(
        &["config", "check"],
        &[
            ("PREVIEWD_CONTROLLER_WORKERS", "0"),
            ("PREVIEWD_SERVER_LISTEN", "0.0.0.0:9999"),
        ],
    );
    let err = stderr(&out);
    assert!(
        err.contains("controller.workers: must be between 1 and 256"),
        "{err}"
    );
    let out = previewd(
        &["config", "check"],
        &[("PREVIEWD_SERVER_LISTEN", "0.0.0.0:9999")],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("listen 0.0.0.0:9999"));
}

#[test]
fn serve_refuses_a_public_address_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/p.db", dir.path().display());
    let out = previewd(
        &["serve"],
        &[
            ("PREVIEWD_SERVER_LISTEN", "0.0.0.0:0"),
            ("PREVIEWD_STORE_URL", &db),
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("refusing to listen on 0.0.0.0:0 without an API token"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn gc_dry_run_prints_its_table_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/p.db", dir.path().display());
    let out = previewd(&["gc", "--dry-run"], &[("PREVIEWD_STORE_URL", &db)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("KIND"), "{text}");
    assert!(text.contains("dry run: nothing changed"), "{text}");
}

#[test]
fn a_numeric_looking_override_of_a_text_key_is_taken_as_text() {
    let out = previewd(
        &["config", "check"],
        &[
            ("PREVIEWD_CONTAINER_CPU", "1024"),
            ("PREVIEWD_CONTROLLER_ID", "2024"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = previewd(
        &["config", "check"],
        &[("PREVIEWD_CONTROLLER_WORKERS", "many")],
    );
    assert!(
        stderr(&out).contains("controller.workers: invalid type"),
        "{}",
        stderr(&out)
    );
}

/// Regression: a SIGTERM used to end `serve` with "the controller stopped
/// unexpectedly" because the drained controller finished first.
#[test]
fn serve_drains_and_exits_zero_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/p.db", dir.path().display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_previewd"))
        .arg("serve")
        .env_clear()
        .env("PREVIEWD_SERVER_LISTEN", "127.0.0.1:0")
        .env("PREVIEWD_STORE_URL", &db)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("previewd listening"));
    assert!(listening, "serve did not start");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status:?}: {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("previewd stopped")),
        "{rest:?}"
    );
}

/// The policy committed under deploy/iam/ is the one the example config
/// generates: regenerate it with the command in deploy/iam/README.md.
#[test]
fn the_committed_iam_policy_is_the_generated_one() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let config = format!("{root}/deploy/examples/previewd.toml");
    let out = previewd(&["--config", &config, "iam-policy"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let generated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/deploy/iam/previewd-policy.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        generated, committed,
        "deploy/iam/previewd-policy.json is stale"
    );
    let text = generated.to_string();
    assert!(!text.contains(r#""Action":"*""#));
    assert!(text.contains("elasticloadbalancing:ModifyRule"));
}
