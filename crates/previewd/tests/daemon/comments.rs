//! A fake GitHub that keeps one pull request's comments the way GitHub's
//! issue-comment API does (ids, bodies, `user`, `html_url`…), for the
//! sticky-comment tests; everything else gets [`super::fake_github`]'s
//! default answer.
// Not every test binary that includes `daemon` uses it.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Pull request `number` of `repo` and its comments, in creation order.
pub struct Thread {
    pub repo: &'static str,
    pub number: u64,
    /// The `head` query (`owner%3Abranch`, as previewd encodes it) that
    /// finds this pull request among the open ones; `None`: a lookup by
    /// branch finds nothing.
    pub open_head: Option<&'static str>,
    pub comments: Vec<(u64, String)>,
    next_id: u64,
}

impl Thread {
    pub fn new(
        repo: &'static str,
        number: u64,
        open_head: Option<&'static str>,
    ) -> Arc<Mutex<Thread>> {
        Arc::new(Mutex::new(Thread {
            repo,
            number,
            open_head,
            comments: Vec::new(),
            next_id: 0,
        }))
    }
}

/// One comment as GitHub's issue-comment API returns it.
fn comment(t: &Thread, id: u64, body: &str) -> Value {
    let (repo, number) = (t.repo, t.number);
    json!({
        "id": id,
        "node_id": format!("IC_kwDO{id}"),
        "url": format!("https://api.github.com/repos/{repo}/issues/comments/{id}"),
        "html_url": format!("https://github.com/{repo}/pull/{number}#issuecomment-{id}"),
        "issue_url": format!("https://api.github.com/repos/{repo}/issues/{number}"),
        "body": body,
        "user": { "login": "previewd[bot]", "id": 583231, "type": "Bot" },
        "created_at": "2026-12-04T22:00:00Z",
        "updated_at": "2026-12-04T22:00:00Z",
        "author_association": "NONE",
    })
}

/// `name`'s value in the request line's query.
fn query<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let q = line.split(' ').nth(1)?.split_once('?')?.1;
    q.split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
}

/// The answer function for [`super::fake_github_with`].
pub fn github(thread: Arc<Mutex<Thread>>) -> impl Fn(&str, &str) -> Option<(String, String)> {
    move |head, body| {
        let line = head.lines().next().unwrap_or_default();
        let mut parts = line.split(' ');
        let (method, target) = (parts.next()?, parts.next()?);
        let path = target.split('?').next().unwrap_or_default();
        let mut t = thread.lock().unwrap();
        let pulls = format!("/repos/{}/pulls", t.repo);
        let comments = format!("/repos/{}/issues/{}/comments", t.repo, t.number);
        let edits = format!("/repos/{}/issues/comments/", t.repo);
        let ok = |v: Value| Some(("200 OK".to_owned(), v.to_string()));
        let text = || -> Option<String> {
            Some(
                serde_json::from_str::<Value>(body).ok()?["body"]
                    .as_str()?
                    .to_owned(),
            )
        };
        match method {
            "GET" if path == pulls => {
                let open = query(line, "state") == Some("open")
                    && t.open_head.is_some()
                    && query(line, "head") == t.open_head;
                ok(if open {
                    json!([{ "number": t.number, "state": "open" }])
                } else {
                    json!([])
                })
            }
            "GET" if path == comments => {
                let page: usize = query(line, "page")?.parse().ok()?;
                let per: usize = query(line, "per_page")?.parse().ok()?;
                let list: Vec<Value> = t
                    .comments
                    .iter()
                    .skip((page - 1) * per)
                    .take(per)
                    .map(|(id, b)| comment(&t, *id, b))
                    .collect();
                ok(Value::Array(list))
            }
            "POST" if path == comments => {
                t.next_id += 1;
                let id = 9000 + t.next_id;
                let text = text()?;
                t.comments.push((id, text.clone()));
                Some(("201 Created".into(), comment(&t, id, &text).to_string()))
            }
            "PATCH" if path.starts_with(&edits) => {
                let id: u64 = path.rsplit('/').next()?.parse().ok()?;
                let text = text()?;
                let answer = comment(&t, id, &text);
                match t.comments.iter_mut().find(|(i, _)| *i == id) {
                    Some(c) => {
                        c.1 = text;
                        ok(answer)
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
pub fn ours(thread: &Mutex<Thread>) -> Vec<String> {
    thread
        .lock()
        .unwrap()
        .comments
        .iter()
        .filter(|(_, b)| b.contains("<!-- previewd:preview:"))
        .map(|(_, b)| b.clone())
        .collect()
}

/// Waits until previewd's one comment satisfies `done`; panics at once if
/// there are two, and with the thread after a generous deadline (a wait,
/// not a speed check).
pub fn comment_until(thread: &Mutex<Thread>, done: impl Fn(&str) -> bool) -> String {
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

/// How many requests with this method went to `repo`'s issue endpoints
/// (the comments).
pub fn comment_calls(seen: &Mutex<Vec<String>>, repo: &str, method: &str) -> usize {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|r| r.starts_with(&format!("{method} /repos/{repo}/issues/")))
        .count()
}
