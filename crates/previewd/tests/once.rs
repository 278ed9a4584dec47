//! `previewd once` reports like the daemon: one GitHub deployment with its
//! statuses and the signed callback, all delivered before it exits; a
//! destroy marks the branch's deployment inactive, and a run that times
//! out reports the failure.

// For its fake GitHub and fast sim settings; the daemon itself is not used.
#[allow(dead_code)]
mod daemon;

use daemon::{BIN, FAST, fake_github, text};
use std::process::{Command, Output};

/// `previewd once` with `args`, against the fake GitHub at `fake`, with
/// extra `env`.
fn once(fake: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .arg("once")
        .args(args)
        .env_clear()
        .envs(FAST)
        .envs(env.iter().copied())
        .env("PREVIEWD_PREVIEWS_PROJECT", "acme/shop")
        .env("PREVIEWD_GITHUB_TOKEN", "ghp_once_test_token")
        .env("PREVIEWD_GITHUB_API_URL", format!("http://{fake}"))
        .env("PREVIEWD_CALLBACK_SECRET", "once-callback-secret")
        .env("PREVIEWD_CALLBACKS_ALLOWED_HOSTS", r#"["127.0.0.1:*"]"#)
        .output()
        .expect("previewd once runs")
}

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

#[test]
fn once_destroy_marks_the_branchs_deployment_inactive() {
    let (fake, seen) = fake_github();
    let callback = format!("http://{fake}/gone");
    let args = ["--action", "destroy", "--branch", "qanote/issue-6"];
    let out = once(
        &fake,
        &[
            &args[..],
            &["--ai-run-id", "run-6", "--callback-url", &callback],
        ]
        .concat(),
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seen = seen.lock().unwrap().clone();
    let first_lines: Vec<&str> = seen
        .iter()
        .map(|r| r.lines().next().unwrap_or(""))
        .collect();
    assert!(
        first_lines.contains(
            &"GET /repos/acme/shop/deployments?environment=preview%2Fqanote%2Dissue%2D6&per_page=100 HTTP/1.1"
        ),
        "{first_lines:?}"
    );
    let inactive = seen
        .iter()
        .find(|r| r.starts_with("POST /repos/acme/shop/deployments/77/statuses"))
        .unwrap_or_else(|| panic!("no status for the deployment found in {first_lines:?}"));
    assert!(inactive.contains(r#""state":"inactive""#), "{inactive}");
    let gone = seen
        .iter()
        .find(|r| r.starts_with("POST /gone"))
        .unwrap_or_else(|| panic!("no callback in {first_lines:?}"));
    assert!(
        gone.contains(r#""state":"inactive""#) && gone.contains("run-6"),
        "{gone}"
    );
}

#[test]
fn once_that_times_out_posts_the_failure_with_the_phase_reached_and_calls_back() {
    let (fake, seen) = fake_github();
    let callback = format!("http://{fake}/done");
    let args = [
        "--action",
        "deploy",
        "--branch",
        "qanote/issue-7",
        "--commit-sha",
        "abc1234",
    ];
    let more = [
        "--ai-run-id",
        "run-7",
        "--callback-url",
        &callback,
        "--timeout-secs",
        "1",
    ];
    // The targets never turn healthy within the run.
    let slow = [("PREVIEWD_SIM_TARGET_HEALTHY_AFTER_MS", "600000")];
    let out = once(&fake, &[&args[..], &more[..]].concat(), &slow);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("timed out") || text(&out.stderr).contains("timed out"));
    let seen = seen.lock().unwrap().clone();
    let first_lines: Vec<&str> = seen
        .iter()
        .map(|r| r.lines().next().unwrap_or(""))
        .collect();
    let failure = seen
        .iter()
        .find(|r| r.contains("/statuses") && r.contains(r#""state":"failure""#))
        .unwrap_or_else(|| panic!("no failure status in {first_lines:?}"));
    assert!(
        failure.contains("timed out after 1s in Provisioning"),
        "{failure}"
    );
    let done = seen
        .iter()
        .find(|r| r.starts_with("POST /done"))
        .unwrap_or_else(|| panic!("no callback in {first_lines:?}"));
    assert!(
        done.contains(r#""state":"failure""#) && done.contains("run-7"),
        "{done}"
    );
    assert!(
        done.contains("timed out after 1s in Provisioning"),
        "{done}"
    );
}

/// Issue 16, item 7: with `github.pr_comment`, the comment a `once` run
/// keeps on the branch's pull request ends showing the timeout's failure.
#[test]
fn once_that_times_out_shows_the_failure_in_the_pull_request_comment() {
    use daemon::comments::{Thread, comment_until, github};
    let thread = Thread::new("acme/shop", 8, Some("acme%3Aqanote%2Fissue%2D8"));
    let (fake, _seen) = daemon::fake_github_with(github(thread.clone()));
    let args = [
        "--action",
        "deploy",
        "--branch",
        "qanote/issue-8",
        "--commit-sha",
        "abc1234",
        "--timeout-secs",
        "1",
    ];
    let env = [
        ("PREVIEWD_SIM_TARGET_HEALTHY_AFTER_MS", "600000"),
        ("PREVIEWD_GITHUB_PR_COMMENT", "true"),
    ];
    let out = once(&fake, &args, &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let shown = comment_until(&thread, |b| b.contains("❌ Failed"));
    assert!(
        shown.contains("timed out after 1s in Provisioning"),
        "{shown}"
    );
}
