//! Webhooks that cost nothing to reject and cannot be replayed.

use crate::daemon::{Daemon, http, raw, wait_for};
use crate::{deploy_body, previews, refusal};
use previewd_github::signature_header;

const SECRET: &str = "webhook-secret-Rr51Lq8Zt3";

fn closed_body(branch: &str, closed_at: &str) -> String {
    serde_json::json!({
        "action": "closed",
        "number": 7,
        "pull_request": {
            "number": 7,
            "state": "closed",
            "closed_at": closed_at,
            "merged": true,
            "head": { "ref": branch, "repo": { "full_name": "acme/shop" } },
            "base": { "ref": "main", "repo": { "full_name": "acme/shop" } },
        },
        "repository": { "full_name": "acme/shop" },
    })
    .to_string()
}

fn deliver(d: &Daemon, event: &str, delivery: &str, body: &str) -> (u16, serde_json::Value) {
    let signature = signature_header(SECRET.as_bytes(), body.as_bytes());
    let (status, reply) = http(
        &d.addr,
        "POST",
        "/v1/github/webhook",
        &[
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", event),
            ("X-GitHub-Delivery", delivery),
            ("X-Hub-Signature-256", &signature),
        ],
        body,
    );
    (
        status,
        serde_json::from_str(&reply).unwrap_or_else(|_| panic!("{reply}")),
    )
}

fn daemon() -> Daemon {
    Daemon::start(&[
        ("PREVIEWD_GITHUB_WEBHOOK_SECRET", SECRET),
        ("PREVIEWD_PREVIEWS_PROJECT", "acme/shop"),
    ])
}

fn deploy(d: &Daemon, branch: &str) {
    let (status, reply) = http(
        &d.addr,
        "POST",
        "/v1/dispatch",
        &[("Content-Type", "application/json")],
        &deploy_body(branch, None),
    );
    assert_eq!(status, 202, "{reply}");
}

#[test]
fn a_replayed_close_under_a_fresh_delivery_id_does_not_destroy_the_redeployed_preview() {
    let d = daemon();
    let server = d.url();
    deploy(&d, "qanote/issue-8");
    wait_for(&server, &[], "qanote/issue-8", |p| p["phase"] == "Ready");
    let body = closed_body("qanote/issue-8", &chrono::Utc::now().to_rfc3339());
    let (status, reply) = deliver(&d, "pull_request", "delivery-1", &body);
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["found"], true, "{reply}");
    wait_for(&server, &[], "qanote/issue-8", |p| p["phase"] == "Deleted");
    // Reopened and redeployed.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut redeploy =
        serde_json::from_str::<serde_json::Value>(&deploy_body("qanote/issue-8", None)).unwrap();
    redeploy["commit_sha"] = "def5678".into();
    let (status, _) = http(
        &d.addr,
        "POST",
        "/v1/dispatch",
        &[("Content-Type", "application/json")],
        &redeploy.to_string(),
    );
    assert_eq!(status, 202);
    wait_for(&server, &[], "qanote/issue-8", |p| p["phase"] == "Ready");
    // The attacker replays the signed body: same id, then a fresh id.
    for id in ["delivery-1", "delivery-2-fresh"] {
        let (status, reply) = deliver(&d, "pull_request", id, &body);
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["duplicate"], true, "{reply}");
    }
    // A close of the same pull request from before the redeploy, never
    // seen before (a late delivery): older than the last deploy, ignored.
    let late = closed_body("qanote/issue-8", "2020-01-01T00:00:00Z");
    let (status, reply) = deliver(&d, "pull_request", "delivery-3-late", &late);
    assert_eq!(status, 202, "{reply}");
    assert!(reply["ignored"].is_string(), "{reply}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let list = previews(&d, None);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["desired"], "present", "{list:?}");
    assert_eq!(list[0]["phase"], "Ready", "{list:?}");
}

#[test]
fn headers_are_judged_before_the_body_is_read() {
    let d = daemon();
    let json = "Content-Type: application/json\r\n";
    let sig = "X-Hub-Signature-256: sha256=0000000000000000000000000000000000000000000000000000000000000000\r\n";
    // Each refusal comes with a 2 MB body declared but never sent: the
    // answer arrives at once, so the daemon did not wait to read it.
    let cases: [(&str, u16, &str); 5] = [
        (
            "X-GitHub-Event: ping\r\nX-GitHub-Delivery: d\r\n",
            401,
            "X-Hub-Signature-256",
        ),
        (
            "X-GitHub-Event: ping\r\nX-GitHub-Delivery: d\r\nX-Hub-Signature-256: sha256=zz\r\n",
            401,
            "X-Hub-Signature-256",
        ),
        (
            "X-GitHub-Event: push\r\nX-GitHub-Delivery: d\r\n",
            422,
            "X-GitHub-Event",
        ),
        ("X-GitHub-Event: ping\r\n", 422, "X-GitHub-Delivery"),
        (
            "X-GitHub-Event: ping\r\nX-GitHub-Delivery: d\r\n",
            413,
            "body",
        ),
    ];
    for (i, (headers, want, field)) in cases.iter().enumerate() {
        let sig = if i < 2 { "" } else { sig };
        let request = format!(
            "POST /v1/github/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{json}{sig}{headers}\
             Content-Length: 2097152\r\n\r\n"
        );
        let started = std::time::Instant::now();
        let (status, _, reply) = raw(&d.addr, request.as_bytes());
        refusal(status, &reply, *want, field);
        assert!(
            started.elapsed().as_secs() < 5,
            "the daemon waited for the body"
        );
    }
    let long_id = format!(
        "X-GitHub-Event: ping\r\nX-GitHub-Delivery: {}\r\n",
        "d".repeat(200)
    );
    let request = format!(
        "POST /v1/github/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{json}{sig}{long_id}Content-Length: 2\r\n\r\n{{}}"
    );
    let (status, _, reply) = raw(&d.addr, request.as_bytes());
    refusal(status, &reply, 422, "X-GitHub-Delivery");
}

/// The daemon's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn unsigned_two_megabyte_bodies_do_not_grow_the_daemon() {
    let d = daemon();
    let body = "x".repeat(2 * 1024 * 1024);
    // Warm up: the first requests allocate what every request reuses.
    for _ in 0..5 {
        let _ = http(&d.addr, "GET", "/healthz", &[], "");
    }
    let before = rss_kib(d.pid());
    for i in 0..100 {
        let request = format!(
            "POST /v1/github/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/json\r\nX-GitHub-Event: pull_request\r\nX-GitHub-Delivery: d-{i}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (status, _, reply) = raw(&d.addr, request.as_bytes());
        refusal(status, &reply, 401, "X-Hub-Signature-256");
    }
    let after = rss_kib(d.pid());
    // Buffering them (the old behaviour) grew the daemon by 185 MB.
    assert!(
        after < before + 16 * 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );
}
