//! The sticky pull-request comment (`github.pr_comment`, issue 16 item 7)
//! through the real daemon, against a fake GitHub that keeps pull requests
//! and their comments the way GitHub's issue-comment API does: created
//! once, edited on every change, still one comment after a restart on the
//! same SQLite file, and saying "gone" after the destroy.

mod daemon;

use daemon::{Daemon, fake_github_with, http, wait_for};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "ghp_comment_test_token_0123456789";
const BRANCH: &str = "qanote/issue-42";
/// The pull request whose head is [`BRANCH`].
const NUMBER: u64 = 42;
/// A branch with no open pull request.
const LONE: &str = "qanote/issue-43";

/// One comment as GitHub's issue-comment API returns it.
fn comment(id: u64, body: &str, login: &str) -> Value {
    json!({
        "id": id,
        "node_id": format!("IC_kwDO{id}"),
        "url": format!("https://api.github.com/repos/acme/shop/issues/comments/{id}"),
        "html_url": format!("https://github.com/acme/shop/pull/{NUMBER}#issuecomment-{id}"),
        "issue_url": format!("https://api.github.com/repos/acme/shop/issues/{NUMBER}"),
        "body": body,
        "user": { "login": login, "id": 583231, "type": "Bot" },
        "created_at": "2026-12-04T22:00:00Z",
        "updated_at": "2026-12-04T22:00:00Z",
        "author_association": "NONE",
    })
}

/// The comments of pull request [`NUMBER`], in creation order.
#[derive(Default)]
struct Thread {
    comments: Vec<(u64, String)>,
    next_id: u64,
}

/// `name`'s value in the request line's query.
fn query<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let q = line.split(' ').nth(1)?.split_once('?')?.1;
    q.split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
}

/// Answers the pull-request and issue-comment calls from `thread`; the
/// rest (deployments, statuses) gets the fake's default answer.
fn github(thread: Arc<Mutex<Thread>>) -> impl Fn(&str, &str) -> Option<(String, String)> {
    move |head, body| {
        let line = head.lines().next().unwrap_or_default();
        let mut parts = line.split(' ');
        let (method, target) = (parts.next()?, parts.next()?);
        let path = target.split('?').next().unwrap_or_default();
        let comments = format!("/repos/acme/shop/issues/{NUMBER}/comments");
        let ok = |v: Value| Some(("200 OK".to_owned(), v.to_string()));
        let mut t = thread.lock().unwrap();
        match (method, path) {
            ("GET", "/repos/acme/shop/pulls") => {
                let open = query(line, "state") == Some("open")
                    && query(line, "head") == Some("acme%3Aqanote%2Fissue%2D42");
                let pulls = if open {
                    json!([{ "number": NUMBER, "state": "open",
                             "head": { "ref": BRANCH, "label": "acme:qanote/issue-42" } }])
                } else {
                    json!([])
                };
                ok(pulls)
            }
            ("GET", p) if p == comments => {
                let page: usize = query(line, "page")?.parse().ok()?;
                let per: usize = query(line, "per_page")?.parse().ok()?;
                let list: Vec<Value> = t
                    .comments
                    .iter()
                    .skip((page - 1) * per)
                    .take(per)
                    .map(|(id, b)| comment(*id, b, "previewd[bot]"))
                    .collect();
                ok(Value::Array(list))
            }
            ("POST", p) if p == comments => {
                t.next_id += 1;
                let id = 9000 + t.next_id;
                let text = serde_json::from_str::<Value>(body).ok()?["body"]
                    .as_str()?
                    .to_owned();
                t.comments.push((id, text.clone()));
                Some((
                    "201 Created".into(),
                    comment(id, &text, "previewd[bot]").to_string(),
                ))
            }
            ("PATCH", p) if p.starts_with("/repos/acme/shop/issues/comments/") => {
                let id: u64 = p.rsplit('/').next()?.parse().ok()?;
                let text = serde_json::from_str::<Value>(body).ok()?["body"]
                    .as_str()?
                    .to_owned();
                match t.comments.iter_mut().find(|(i, _)| *i == id) {
                    Some(c) => {
                        c.1 = text.clone();
                        ok(comment(id, &text, "previewd[bot]"))
                    }
                    None => Some((
                        "404 Not Found".into(),
                        json!({ "message": "Not Found" }).to_string(),
                    )),
                }
            }
            _ => None,
        }
    }
}

/// The comments that carry previewd's marker.
fn ours(thread: &Mutex<Thread>) -> Vec<String> {
    thread
        .lock()
        .unwrap()
        .comments
        .iter()
        .filter(|(_, b)| b.contains("<!-- previewd:preview:"))
        .map(|(_, b)| b.clone())
        .collect()
}

/// Waits until previewd's one comment satisfies `done`; panics with the
/// thread after a generous deadline (a wait, not a speed check).
fn comment_until(thread: &Mutex<Thread>, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = ours(thread);
        if let [one] = now.as_slice()
            && done(one)
        {
            return one.clone();
        }
        assert!(
            now.len() <= 1,
            "previewd posted more than one comment: {now:#?}"
        );
        assert!(
            Instant::now() < deadline,
            "the comment never got there: {now:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many requests with this method went to a comment endpoint.
fn comment_calls(seen: &Mutex<Vec<String>>, method: &str) -> usize {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|r| r.starts_with(&format!("{method} /repos/acme/shop/issues/")))
        .count()
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
    let thread = Arc::new(Mutex::new(Thread::default()));
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
