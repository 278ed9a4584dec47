//! Webhook deliveries: signature checks and the events previewd acts on,
//! from GitHub's published example payloads (`tests/data/webhook-examples`,
//! see its README) and from fragments shaped like them.

use previewd_core::pull_request::{PrChange, PrIntent, intent};
use previewd_github::{
    PullRequestChange, WebhookEvent, parse_event, signature_header, verify_signature,
};
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
    // Opening is a change a labelled preview may act on (issue 16), never
    // a destroy; an action previewd has no use for stays Other.
    let opened = pull_request("opened", false, same.clone());
    assert!(matches!(
        parse_event("pull_request", &opened).unwrap(),
        WebhookEvent::PullRequestChanged(c) if c.change == PrChange::Opened
    ));
    let assigned = pull_request("assigned", false, same);
    assert_eq!(
        parse_event("pull_request", &assigned).unwrap(),
        WebhookEvent::Other("pull_request.assigned".into())
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

fn example(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/data/webhook-examples/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn changed(name: &str) -> PullRequestChange {
    match parse_event("pull_request", &example(name)).unwrap() {
        WebhookEvent::PullRequestChanged(c) => c,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn githubs_example_pull_request_changes_are_read_whole() {
    let c = changed("pull_request.labeled");
    assert_eq!(
        c,
        PullRequestChange {
            repo: "Codertocat/Hello-World".into(),
            number: 2,
            change: PrChange::Labeled,
            branch: "changes".into(),
            head_sha: "ec26c3e57ca3a959ca5aad62de7213c562f8c821".into(),
            labels: vec!["bug".into()],
            label: Some("bug".into()),
            updated_at: Some("2019-05-15T15:20:35Z".parse().unwrap()),
        }
    );
    for (name, want) in [
        ("pull_request.opened", PrChange::Opened),
        ("pull_request.reopened", PrChange::Reopened),
        ("pull_request.synchronize", PrChange::Synchronize),
        ("pull_request.unlabeled", PrChange::Unlabeled),
    ] {
        let c = changed(name);
        assert_eq!(c.change, want, "{name}");
        assert_eq!(
            (c.repo.as_str(), c.branch.as_str()),
            ("Codertocat/Hello-World", "changes")
        );
        assert_eq!(c.head_sha.len(), 40, "{name}: the head commit is read");
    }
}

/// The label flow end to end on GitHub's examples, watching their label
/// (`bug`): open, push, close; and label, unlabel.
#[test]
fn githubs_examples_drive_the_label_flow() {
    let watched = Some("bug");
    let decide = |name: &str| {
        let c = changed(name);
        intent(c.change, &c.labels, c.label.as_deref(), watched)
    };
    assert_eq!(decide("pull_request.opened"), PrIntent::Deploy);
    assert_eq!(decide("pull_request.synchronize"), PrIntent::Deploy);
    assert_eq!(decide("pull_request.labeled"), PrIntent::Deploy);
    // The example still lists `bug` among the labels: the delivery's own
    // `label` is what counts.
    assert_eq!(decide("pull_request.unlabeled"), PrIntent::Destroy);
    assert!(matches!(
        parse_event("pull_request", &example("pull_request.closed")).unwrap(),
        WebhookEvent::PullRequestClosed { ref branch, .. } if branch == "changes"
    ));
    // Another repository's label: nothing.
    let c = changed("pull_request.opened");
    assert!(matches!(
        intent(c.change, &c.labels, None, Some("preview")),
        PrIntent::Ignore(_)
    ));
}

#[test]
fn githubs_example_from_a_fork_is_not_a_preview() {
    let mut v: serde_json::Value =
        serde_json::from_slice(&example("pull_request.labeled")).unwrap();
    v["pull_request"]["head"]["repo"]["full_name"] = json!("mallory/Hello-World");
    let body = serde_json::to_vec(&v).unwrap();
    assert_eq!(
        parse_event("pull_request", &body).unwrap(),
        WebhookEvent::Other("pull_request.labeled from fork mallory/Hello-World".into())
    );
}

#[test]
fn githubs_example_deletion_is_of_a_tag_and_a_branch_would_be_read() {
    assert_eq!(
        parse_event("delete", &example("delete")).unwrap(),
        WebhookEvent::Other("delete.tag".into())
    );
    let mut v: serde_json::Value = serde_json::from_slice(&example("delete")).unwrap();
    v["ref_type"] = json!("branch");
    assert_eq!(
        parse_event("delete", &serde_json::to_vec(&v).unwrap()).unwrap(),
        WebhookEvent::BranchDeleted {
            repo: "Codertocat/Hello-World".into(),
            branch: "simple-tag".into(),
        }
    );
}
