//! Label-driven previews through the real daemon (`github.preview_label`
//! = `bug`), fed GitHub's own example deliveries: the labelled pull request
//! gets a preview of its head commit, moved on each push, gone when it
//! closes or loses the label; late and replayed deliveries change nothing.

mod daemon;

use daemon::{Daemon, http, wait_for};
use serde_json::Value;

const SECRET: &str = "label-flow-secret";
/// The examples' repository, served as the project: the deliveries stay
/// as GitHub wrote them but for the fields a step changes.
const PROJECT: &str = "Codertocat/Hello-World";
const FIRST: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const SECOND: &str = "1111111111111111111111111111111111111111";
const OLDER: &str = "2222222222222222222222222222222222222222";

/// GitHub's example delivery for `pull_request.<action>`, parsed.
fn example(action: &str) -> Value {
    let path = format!(
        "{}/../github/tests/data/webhook-examples/pull_request.{action}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The example as a change made now, on `branch` at `sha`.
fn now(action: &str, branch: &str, sha: &str) -> Value {
    let mut v = example(action);
    let t = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    v["pull_request"]["updated_at"] = t.clone().into();
    if action == "closed" {
        v["pull_request"]["closed_at"] = t.into();
    }
    v["pull_request"]["head"]["ref"] = branch.into();
    v["pull_request"]["head"]["sha"] = sha.into();
    v
}

/// Signs and sends one delivery; the status and the answer.
fn send(d: &Daemon, id: &str, body: &Value) -> (u16, Value) {
    let raw = serde_json::to_string(body).unwrap();
    let sig = previewd_github::signature_header(SECRET.as_bytes(), raw.as_bytes());
    let (status, answer) = http(
        &d.addr,
        "POST",
        "/v1/github/webhook",
        &[
            ("X-GitHub-Event", "pull_request"),
            ("X-GitHub-Delivery", id),
            ("X-Hub-Signature-256", &sig),
            ("Content-Type", "application/json"),
        ],
        &raw,
    );
    (status, serde_json::from_str(&answer).unwrap_or(Value::Null))
}

fn start(label: Option<&str>) -> Daemon {
    let mut env = vec![
        ("PREVIEWD_GITHUB_WEBHOOK_SECRET", SECRET),
        ("PREVIEWD_PREVIEWS_PROJECT", PROJECT),
    ];
    if let Some(l) = label {
        env.push(("PREVIEWD_GITHUB_PREVIEW_LABEL", l));
    }
    Daemon::start(&env)
}

fn ready_at(sha: &'static str) -> impl Fn(&Value) -> bool {
    move |p| p["phase"] == "Ready" && p["commit_sha"] == sha && p["desired"] == "present"
}

/// Waits past the current second: GitHub's times are whole seconds, and a
/// close in the second of the deploy cannot be told newer than it.
fn next_second() {
    let ms = chrono::Utc::now().timestamp_subsec_millis();
    std::thread::sleep(std::time::Duration::from_millis(1_050 - u64::from(ms)));
}

#[test]
fn opened_pushed_and_closed_a_labelled_pull_request() {
    let d = start(Some("bug"));
    let server = d.url();
    let (s, a) = send(&d, "o-1", &now("opened", "changes", FIRST));
    assert_eq!(
        (s, &a["action"], &a["commit_sha"]),
        (202, &"deploy".into(), &FIRST.into()),
        "{a}"
    );
    wait_for(&server, &[], "changes", ready_at(FIRST));

    let (s, a) = send(&d, "s-1", &now("synchronize", "changes", SECOND));
    assert_eq!((s, &a["changed"]), (202, &true.into()), "{a}");
    let p = wait_for(&server, &[], "changes", ready_at(SECOND));
    assert_eq!(p["generation"], 2, "{p}");

    // A push older than the deploy (GitHub's own 2019 example, under a
    // fresh id) must not roll the preview back.
    let mut late = example("synchronize");
    late["pull_request"]["head"]["sha"] = OLDER.into();
    let (s, a) = send(&d, "s-0", &late);
    assert_eq!(
        (s, &a["ignored"]),
        (202, &"older than the preview's last deploy".into()),
        "{a}"
    );
    // The same delivery again is a duplicate, by id and by body.
    let (s, a) = send(&d, "s-1", &now("synchronize", "changes", SECOND));
    assert_eq!((s, &a["duplicate"]), (200, &true.into()), "{a}");
    let (s, a) = send(&d, "s-0-again", &late);
    assert_eq!((s, &a["duplicate"]), (200, &true.into()), "{a}");
    let p = wait_for(&server, &[], "changes", ready_at(SECOND));
    assert_eq!(p["generation"], 2, "nothing moved: {p}");

    next_second();
    let (s, a) = send(&d, "c-1", &now("closed", "changes", SECOND));
    assert_eq!((s, &a["found"]), (202, &true.into()), "{a}");
    wait_for(&server, &[], "changes", |p| p["phase"] == "Deleted");
    d.stop();
}

#[test]
fn labeled_then_unlabeled_creates_then_destroys() {
    let d = start(Some("bug"));
    let server = d.url();
    let (s, a) = send(&d, "l-1", &now("labeled", "wip/labels", FIRST));
    assert_eq!((s, &a["action"]), (202, &"deploy".into()), "{a}");
    wait_for(&server, &[], "wip/labels", ready_at(FIRST));
    next_second();
    let (s, a) = send(&d, "u-1", &now("unlabeled", "wip/labels", FIRST));
    assert_eq!((s, &a["action"]), (202, &"destroy".into()), "{a}");
    wait_for(&server, &[], "wip/labels", |p| p["phase"] == "Deleted");
    d.stop();
}

#[test]
fn without_a_preview_label_a_pull_request_gets_no_preview() {
    let d = start(None);
    let (s, a) = send(&d, "o-1", &now("opened", "changes", FIRST));
    assert_eq!(s, 202, "{a}");
    assert!(a["ignored"].as_str().unwrap().contains("off"), "{a}");
    let (s, a) = send(&d, "l-1", &now("labeled", "changes", FIRST));
    assert!(s == 202 && a["ignored"].is_string(), "{a}");
    let (status, _) = http(&d.addr, "GET", "/v1/previews/changes", &[], "");
    assert_eq!(status, 404);
    d.stop();
}

#[test]
fn a_blank_or_overlong_preview_label_is_refused_by_name() {
    for bad in ["  ", &"x".repeat(51)] {
        let out = std::process::Command::new(daemon::BIN)
            .arg("serve")
            .env_clear()
            .env("PREVIEWD_GITHUB_PREVIEW_LABEL", bad)
            .env("PREVIEWD_STORE_URL", "sqlite::memory:")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = daemon::text(&out.stderr);
        assert!(err.contains("github.preview_label"), "{err}");
    }
}

/// Issue 16, item 7: with `github.pr_comment`, a labelled pull request's
/// comment goes to the pull request the delivery names (number 2 in
/// GitHub's examples), which the store keeps: here a lookup by branch
/// finds no open pull request, so only the kept number can place it. The
/// close edits it to say the preview is gone.
#[test]
fn a_labelled_pull_request_gets_its_comment_where_the_delivery_says() {
    use daemon::comments::{Thread, comment_until, github};
    let thread = Thread::new(PROJECT, 2, None);
    let (fake, _seen) = daemon::fake_github_with(github(thread.clone()));
    let api = format!("http://{fake}");
    let d = Daemon::start(&[
        ("PREVIEWD_GITHUB_WEBHOOK_SECRET", SECRET),
        ("PREVIEWD_PREVIEWS_PROJECT", PROJECT),
        ("PREVIEWD_GITHUB_PREVIEW_LABEL", "bug"),
        ("PREVIEWD_GITHUB_TOKEN", "ghp_label_comment_token"),
        ("PREVIEWD_GITHUB_API_URL", api.as_str()),
        ("PREVIEWD_GITHUB_PR_COMMENT", "true"),
    ]);
    let server = d.url();
    let (s, a) = send(&d, "o-1", &now("opened", "changes", FIRST));
    assert_eq!(s, 202, "{a}");
    wait_for(&server, &[], "changes", ready_at(FIRST));
    comment_until(&thread, |b| {
        b.contains("✅ Ready") && b.contains(&format!("`{FIRST}`"))
    });
    next_second();
    let (s, a) = send(&d, "c-1", &now("closed", "changes", FIRST));
    assert_eq!((s, &a["found"]), (202, &true.into()), "{a}");
    wait_for(&server, &[], "changes", |p| p["phase"] == "Deleted");
    let gone = comment_until(&thread, |b| b.contains("🗑️ Deleted"));
    assert!(gone.contains("| URL | gone |"), "{gone}");
    d.stop();
}
