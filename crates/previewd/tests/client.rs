//! `previewd list|get|deploy|destroy` against a real daemon on 127.0.0.1.

mod daemon;

use daemon::{Daemon, client, http, text, wait_for};

const TOKEN: &str = "client-test-token-0123456789abcdef";
const AUTH: [(&str, &str); 1] = [("PREVIEWD_API_TOKEN", TOKEN)];

#[test]
fn the_client_deploys_lists_gets_and_destroys_a_preview() {
    let d = Daemon::start(&AUTH);
    let server = d.url();
    let out = client(
        &server,
        &[
            "deploy",
            "qanote/issue-7",
            "--commit",
            "abc1234def",
            "--ai-run-id",
            "run-9",
        ],
        &AUTH,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("branch      qanote/issue-7"), "{shown}");
    assert!(shown.contains("changed     true"), "{shown}");

    wait_for(&server, &AUTH, "qanote/issue-7", |p| p["phase"] == "Ready");
    let out = client(&server, &["list"], &AUTH);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    let mut lines = listed.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("BRANCH"), "{listed}");
    for column in ["PHASE", "URL", "COMMIT", "AGE", "MESSAGE"] {
        assert!(header.contains(column), "{listed}");
    }
    let row = lines.next().expect("one preview");
    assert!(row.starts_with("qanote/issue-7"), "{listed}");
    for cell in [
        "Ready",
        "https://issue-7-preview.preview.example.com",
        "abc1234 ",
        "preview is ready",
    ] {
        assert!(row.contains(cell), "missing {cell:?} in {listed}");
    }

    let out = client(&server, &["get", "qanote/issue-7"], &AUTH);
    let got = text(&out.stdout);
    assert!(got.contains("phase          Ready"), "{got}");
    assert!(got.contains("ai run id      run-9"), "{got}");
    let out = client(&server, &["get", "qanote/issue-7", "-o", "json"], &AUTH);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["commit_sha"], "abc1234def");

    let out = client(
        &server,
        &["destroy", "qanote/issue-7", "--output", "json"],
        &AUTH,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["action"].as_str(), v["changed"].as_bool()),
        (Some("destroy"), Some(true))
    );
    wait_for(&server, &AUTH, "qanote/issue-7", |p| {
        p["phase"] == "Deleted"
    });
    d.stop();
}

#[test]
fn api_errors_are_printed_with_their_field_and_fail_the_command() {
    let d = Daemon::start(&AUTH);
    let server = d.url();
    let out = client(&server, &["deploy", "main", "--commit", "not-hex"], &AUTH);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("422 Unprocessable Entity"), "{err}");
    assert!(err.contains("(field: commit_sha)"), "{err}");

    let out = client(&server, &["list"], &[("PREVIEWD_API_TOKEN", "wrong")]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("401 Unauthorized"),
        "{}",
        text(&out.stderr)
    );

    let out = client(&server, &["get", "no/such-branch"], &AUTH);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("404 Not Found"),
        "{}",
        text(&out.stderr)
    );

    let out = client(&server, &["list", "--server", "ftp://x"], &AUTH);
    assert!(text(&out.stderr).contains("--server: must be an http:// or https:// URL"));
    d.stop();

    let out = client(&server, &["list"], &AUTH);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!("cannot reach the daemon at {server}")),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_status_page_can_be_turned_off_and_metrics_stay() {
    let off = Daemon::start(&[("PREVIEWD_SERVER_STATUS_PAGE", "false")]);
    assert_eq!(http(&off.addr, "GET", "/", &[], "").0, 404);
    let (status, body) = http(&off.addr, "GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    assert!(
        body.contains("previewd_previews{phase=\"Ready\"} 0"),
        "{body}"
    );
    off.stop();
    let on = Daemon::start(&[]);
    let (status, body) = http(&on.addr, "GET", "/", &[], "");
    assert_eq!(status, 200);
    assert!(body.contains("No previews yet."), "{body}");
    on.stop();
}
