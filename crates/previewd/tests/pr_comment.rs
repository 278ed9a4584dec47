//! The sticky pull-request comment (`github.pr_comment`, issue 16 item 7)
//! through the real daemon, against a fake GitHub that keeps pull requests
//! and their comments the way GitHub's issue-comment API does: created
//! once, edited on every change, still one comment after a restart on the
//! same SQLite file, and saying "gone" after the destroy.

mod daemon;

use daemon::comments::{Thread, comment_until, github};
use daemon::{Daemon, fake_github_with, http, wait_for};
use serde_json::{Value, json};
use std::sync::Mutex;

const TOKEN: &str = "ghp_comment_test_token_0123456789";
const REPO: &str = "acme/shop";
const BRANCH: &str = "qanote/issue-42";
/// A branch with no open pull request.
const LONE: &str = "qanote/issue-43";

fn comment_calls(seen: &Mutex<Vec<String>>, method: &str) -> usize {
    daemon::comments::comment_calls(seen, REPO, method)
}

fn dispatch(d: &Daemon, body: Value) {
    let json = ("Content-Type", "application/json");
    let (status, reply) = http(&d.addr, "POST", "/v1/dispatch", &[json], &body.to_string());
    assert_eq!(status, 202, "{reply}");
}

fn deploy(d: &Daemon, branch: &str, commit: &str) {
    dispatch(
        d,
        json!({ "action": "deploy", "branch": branch, "commit_sha": commit }),
    );
    wait_for(&d.url(), &[], branch, |p| {
        p["phase"] == "Ready" && p["commit_sha"] == commit && p["desired"] == "present"
    });
}

#[test]
fn one_comment_is_created_edited_on_each_change_kept_across_a_restart_and_marked_gone() {
    // Pull request 42's head is BRANCH.
    let thread = Thread::new(REPO, 42, Some("acme%3Aqanote%2Fissue%2D42"));
    // Someone else's comment comes first, and must stay as it is.
    thread
        .lock()
        .unwrap()
        .comments
        .push((1, "Looks good to me".into()));
    let (fake, seen) = fake_github_with(github(thread.clone()));
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/previewd.db", dir.path().display());
    let api = format!("http://{fake}");
    let env = [
        ("PREVIEWD_STORE_URL", db.as_str()),
        ("PREVIEWD_PREVIEWS_PROJECT", "acme/shop"),
        ("PREVIEWD_GITHUB_TOKEN", TOKEN),
        ("PREVIEWD_GITHUB_API_URL", api.as_str()),
        ("PREVIEWD_GITHUB_PR_COMMENT", "true"),
    ];

    let first = Daemon::start(&env);
    deploy(&first, BRANCH, "abc1234");
    let text = comment_until(&thread, |b| {
        b.contains("✅ Ready") && b.contains("`abc1234`")
    });
    assert!(
        text.contains("`https://issue-42-preview.preview.example.com`"),
        "{text}"
    );
    assert_eq!(comment_calls(&seen, "POST"), 1, "created once");

    deploy(&first, BRANCH, "def5678");
    comment_until(&thread, |b| {
        b.contains("✅ Ready") && b.contains("`def5678`")
    });
    assert_eq!(comment_calls(&seen, "POST"), 1, "edited, not posted again");
    assert!(comment_calls(&seen, "PATCH") >= 1);

    // A branch without an open pull request: no comment, nothing retried.
    deploy(&first, LONE, "1111111");
    let lines = first.stop();

    // The same SQLite file, a new process: the comment is found again by
    // its marker, never posted twice.
    let listed_before = comment_calls(&seen, "GET");
    let second = Daemon::start(&env);
    deploy(&second, BRANCH, "0123abc");
    comment_until(&thread, |b| {
        b.contains("✅ Ready") && b.contains("`0123abc`")
    });
    assert_eq!(comment_calls(&seen, "POST"), 1, "still the one comment");
    assert!(
        comment_calls(&seen, "GET") > listed_before,
        "found again by reading the comments"
    );

    dispatch(&second, json!({ "action": "destroy", "branch": BRANCH }));
    wait_for(&second.url(), &[], BRANCH, |p| p["phase"] == "Deleted");
    let gone = comment_until(&thread, |b| b.contains("🗑️ Deleted"));
    assert!(gone.contains("| URL | gone |"), "{gone}");
    assert_eq!(comment_calls(&seen, "POST"), 1);
    let lines = [lines, second.stop()].concat();

    let t = thread.lock().unwrap();
    assert_eq!(t.comments[0], (1, "Looks good to me".into()), "not ours");
    assert_eq!(t.comments.len(), 2, "{:?}", t.comments);
    drop(t);
    let seen = seen.lock().unwrap().clone();
    let lone = seen
        .iter()
        .filter(|r| r.contains("qanote%2Fissue%2D43"))
        .count();
    assert!(lone >= 1, "the lone branch's pull request was looked up");
    assert!(
        !lines.iter().any(|l| l.contains("will retry")),
        "a branch without a pull request is not an error: {lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains(TOKEN)),
        "the token reached the log"
    );
}

/// A comment GitHub keeps failing (a 502 on every comment call) is logged
/// and retried on its own queue: the deployment statuses still go out.
#[test]
fn a_failing_comment_never_holds_back_the_deployment_statuses() {
    let (fake, seen) = fake_github_with(|head, _| {
        head.starts_with("GET /repos/acme/shop/pulls")
            .then(|| ("200 OK".into(), json!([{ "number": 42 }]).to_string()))
            .or_else(|| {
                head.contains(" /repos/acme/shop/issues/").then(|| {
                    let busy = json!({ "message": "Server Error" }).to_string();
                    ("502 Bad Gateway".into(), busy)
                })
            })
    });
    let api = format!("http://{fake}");
    let d = Daemon::start(&[
        ("PREVIEWD_PREVIEWS_PROJECT", REPO),
        ("PREVIEWD_GITHUB_TOKEN", TOKEN),
        ("PREVIEWD_GITHUB_API_URL", api.as_str()),
        ("PREVIEWD_GITHUB_PR_COMMENT", "true"),
    ]);
    deploy(&d, BRANCH, "abc1234");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let success = |seen: &Mutex<Vec<String>>| {
        seen.lock().unwrap().iter().any(|r| {
            r.starts_with("POST /repos/acme/shop/deployments/1/statuses")
                && r.contains(r#""state":"success""#)
        })
    };
    while !(success(&seen) && comment_calls(&seen, "GET") >= 2) {
        assert!(
            std::time::Instant::now() < deadline,
            "no success status, or the comment was not retried: {:#?}",
            seen.lock().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let lines = d.stop();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("will retry") && l.contains("comment")),
        "the comment's failure is logged and retried: {lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains(TOKEN)),
        "the token reached the log"
    );
}
