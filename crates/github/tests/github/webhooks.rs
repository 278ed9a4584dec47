//! Webhook deliveries: signature checks and the events previewd acts on,
//! from payload fragments shaped like GitHub's.

use previewd_github::{WebhookEvent, parse_event, signature_header, verify_signature};
use serde_json::json;

const SECRET: &[u8] = b"webhook-secret";

#[test]
fn githubs_published_example_signature_verifies() {
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert!(verify_signature(
        b"It's a Secret to Everybody",
        b"Hello, World!",
        sig
    ));
}

#[test]
fn a_delivery_signature_is_checked_against_the_exact_body() {
    let body = br#"{"action":"closed"}"#;
    let good = signature_header(SECRET, body);
    assert!(verify_signature(SECRET, body, &good));
    assert!(
        !verify_signature(SECRET, br#"{"action":"opened"}"#, &good),
        "body changed"
    );
    assert!(!verify_signature(b"other", body, &good), "wrong secret");
    let sha1_style = good.replacen("sha256=", "sha1=", 1);
    assert!(!verify_signature(SECRET, body, &sha1_style), "wrong prefix");
    assert!(!verify_signature(SECRET, body, ""), "missing");
}

fn pull_request(action: &str, merged: bool, head_repo: serde_json::Value) -> Vec<u8> {
    json!({
        "action": action,
        "number": 42,
        "pull_request": {
            "number": 42,
            "state": "closed",
            "closed_at": "2026-11-30T10:15:00Z",
            "merged": merged,
            "merge_commit_sha": "e5bd3914e2e596debea16f433f57875b5b90bcd6",
            "head": {
                "label": "acme:qanote/issue-42",
                "ref": "qanote/issue-42",
                "sha": "3f786850e387550fdab836ed7e6dc881de23001b",
                "repo": head_repo,
            },
            "base": { "ref": "main", "repo": { "full_name": "acme/shop" } },
        },
        "repository": { "id": 1296269, "name": "shop", "full_name": "acme/shop" },
        "sender": { "login": "octocat" },
    })
    .to_string()
    .into_bytes()
}

#[test]
fn a_merged_pull_request_names_its_head_branch() {
    let body = pull_request("closed", true, json!({ "full_name": "acme/shop" }));
    assert_eq!(
        parse_event("pull_request", &body).unwrap(),
        WebhookEvent::PullRequestClosed {
            repo: "acme/shop".into(),
            branch: "qanote/issue-42".into(),
            merged: true,
            closed_at: Some("2026-11-30T10:15:00Z".parse().unwrap()),
        }
    );
}

#[test]
fn a_closed_unmerged_pull_request_is_closed_too() {
    let body = pull_request("closed", false, json!({ "full_name": "acme/shop" }));
    let event = parse_event("pull_request", &body).unwrap();
    assert!(
        matches!(event, WebhookEvent::PullRequestClosed { merged: false, .. }),
        "{event:?}"
    );
}

#[test]
fn other_pull_request_actions_and_forks_are_not_destroys() {
    let same = json!({ "full_name": "acme/shop" });
    let opened = pull_request("opened", false, same);
    assert_eq!(
        parse_event("pull_request", &opened).unwrap(),
        WebhookEvent::Other("pull_request.opened".into())
    );
    let fork = pull_request("closed", false, json!({ "full_name": "alice/shop" }));
    assert_eq!(
        parse_event("pull_request", &fork).unwrap(),
        WebhookEvent::Other("pull_request.closed from fork alice/shop".into())
    );
    let gone = pull_request("closed", false, json!(null));
    assert!(matches!(
        parse_event("pull_request", &gone).unwrap(),
        WebhookEvent::Other(_)
    ));
}

#[test]
fn a_deleted_branch_is_named_and_a_deleted_tag_ignored() {
    let branch = json!({
        "ref": "qanote/issue-42", "ref_type": "branch", "pusher_type": "user",
        "repository": { "full_name": "acme/shop" }, "sender": { "login": "octocat" },
    });
    assert_eq!(
        parse_event("delete", branch.to_string().as_bytes()).unwrap(),
        WebhookEvent::BranchDeleted {
            repo: "acme/shop".into(),
            branch: "qanote/issue-42".into()
        }
    );
    let tag =
        json!({ "ref": "v1.0", "ref_type": "tag", "repository": { "full_name": "acme/shop" } });
    assert_eq!(
        parse_event("delete", tag.to_string().as_bytes()).unwrap(),
        WebhookEvent::Other("delete.tag".into())
    );
}

#[test]
fn ping_and_unknown_events() {
    let ping = json!({ "zen": "Keep it logically awesome.", "hook_id": 1, "hook": { "type": "Repository" } });
    assert_eq!(
        parse_event("ping", ping.to_string().as_bytes()).unwrap(),
        WebhookEvent::Ping
    );
    assert_eq!(
        parse_event("push", b"{}").unwrap(),
        WebhookEvent::Other("push".into())
    );
}

#[test]
fn unreadable_deliveries_are_terminal_errors() {
    let err = parse_event("pull_request", b"{\"action\":\"closed\"}").unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.to_string().starts_with("pull_request payload: "),
        "{err}"
    );
    let err = parse_event("delete", b"not json").unwrap_err();
    assert_eq!(err.label(), "payload");
    let err = parse_event("  ", b"{}").unwrap_err();
    assert_eq!(err.label(), "missing_event");
}
