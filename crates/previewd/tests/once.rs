//! `previewd once` reports like the daemon: one GitHub deployment with its
//! statuses and the signed callback, all delivered before it exits.

// For its fake GitHub and fast sim settings; the daemon itself is not used.
#[allow(dead_code)]
mod daemon;

use daemon::{BIN, FAST, fake_github, text};
use std::process::Command;

#[test]
fn once_posts_the_github_statuses_and_the_signed_callback_before_it_exits() {
    let (fake, seen) = fake_github();
    let github_url = format!("http://{fake}");
    let callback = format!("http://{fake}/done");
    let out = Command::new(BIN)
        .args(["once", "--action", "deploy", "--branch", "qanote/issue-5"])
        .args(["--commit-sha", "abc1234", "--ai-run-id", "run-9"])
        .args(["--callback-url", &callback, "--timeout-secs", "60"])
        .env_clear()
        .envs(FAST)
        .env("PREVIEWD_PREVIEWS_PROJECT", "acme/shop")
        .env("PREVIEWD_GITHUB_TOKEN", "ghp_once_test_token")
        .env("PREVIEWD_GITHUB_API_URL", &github_url)
        .env("PREVIEWD_CALLBACK_SECRET", "once-callback-secret")
        .env("PREVIEWD_CALLBACKS_ALLOWED_HOSTS", r#"["127.0.0.1:*"]"#)
        .output()
        .expect("previewd once runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "https://issue-5-preview.preview.example.com"
    );
    let seen = seen.lock().unwrap().clone();
    let requests: Vec<&str> = seen
        .iter()
        .map(|r| r.lines().next().unwrap_or(""))
        .collect();
    assert!(
        requests.contains(&"POST /repos/acme/shop/deployments HTTP/1.1"),
        "{requests:?}"
    );
    let success = seen
        .iter()
        .find(|r| r.contains("/statuses") && r.contains(r#""state":"success""#))
        .unwrap_or_else(|| panic!("no success status in {requests:?}"));
    assert!(
        success.contains("https://issue-5-preview.preview.example.com"),
        "{success}"
    );
    let done = seen
        .iter()
        .find(|r| r.starts_with("POST /done"))
        .unwrap_or_else(|| panic!("no callback in {requests:?}"));
    assert!(
        done.to_ascii_lowercase()
            .contains("x-previewd-signature-256: sha256="),
        "{done}"
    );
    assert!(done.contains("run-9"), "{done}");
}
