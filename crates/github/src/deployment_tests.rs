//! Unit tests of the deployment vocabulary and bodies.

use super::*;

#[test]
fn environment_replaces_slashes_after_a_fixed_prefix() {
    assert_eq!(
        environment_for_branch("qanote/issue-42"),
        "preview/qanote-issue-42"
    );
    assert_eq!(environment_for_branch("main"), "preview/main");
    assert_eq!(
        environment_for_branch(&"é".repeat(300)).chars().count(),
        ENVIRONMENT_MAX
    );
}

#[test]
fn short_descriptions_pass_with_whitespace_collapsed() {
    assert_eq!(
        github_description("Ready at https://x"),
        "Ready at https://x"
    );
    assert_eq!(github_description("  two\nlines\t here "), "two lines here");
    assert_eq!(github_description(&"a".repeat(140)), "a".repeat(140));
}

#[test]
fn an_iam_failure_keeps_step_code_and_action_first() {
    let text = "CreateRule: AccessDenied: elasticloadbalancing:CreateRule (User: \
        arn:aws:iam::123456789012:user/previewd is not authorized to perform: \
        elasticloadbalancing:CreateRule on resource: arn:aws:elasticloadbalancing:\
        eu-west-1:123456789012:listener-rule/app/shared/50dc6c495c0c9188/f2f7dc8efc522ab2/* \
        because no identity-based policy allows the elasticloadbalancing:CreateRule action)";
    let d = github_description(text);
    assert!(
        d.chars().count() <= DESCRIPTION_MAX,
        "{} chars",
        d.chars().count()
    );
    assert!(d.starts_with("CreateRule: AccessDenied: elasticloadbalancing:CreateRule (User:"));
    assert!(d.ends_with('…'));
    assert!(!d.ends_with(" …"), "no space before the ellipsis: {d:?}");
}

#[test]
fn multibyte_text_is_cut_on_a_char_boundary() {
    let text = "Fehler: Überprüfung fehlgeschlagen – ".repeat(10);
    let d = github_description(&text);
    assert!(d.chars().count() <= DESCRIPTION_MAX);
    let no_spaces = "ü".repeat(500);
    let d = github_description(&no_spaces);
    assert_eq!(d.chars().count(), DESCRIPTION_MAX);
    assert!(d.ends_with("ü…"));
}

#[test]
fn success_body_defaults_auto_inactive_to_false() {
    let body = status_body(
        DeploymentState::Success,
        &StatusOpts {
            environment_url: Some("https://issue-42-preview.example.com".into()),
            ..StatusOpts::default()
        },
    );
    assert_eq!(
        body,
        json!({
            "state": "success",
            "environment_url": "https://issue-42-preview.example.com",
            "auto_inactive": false,
        })
    );
}

#[test]
fn other_states_send_only_what_was_given() {
    assert_eq!(
        status_body(DeploymentState::Queued, &StatusOpts::default()),
        json!({ "state": "queued" })
    );
    let body = status_body(
        DeploymentState::Inactive,
        &StatusOpts {
            auto_inactive: Some(true),
            ..StatusOpts::described("destroyed")
        },
    );
    assert_eq!(
        body,
        json!({ "state": "inactive", "description": "destroyed", "auto_inactive": true })
    );
}

#[test]
fn states_serialize_as_github_spells_them() {
    let names: Vec<String> = DeploymentState::ALL
        .iter()
        .map(|s| {
            serde_json::to_value(s)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "queued",
            "in_progress",
            "success",
            "failure",
            "error",
            "inactive"
        ]
    );
    for s in DeploymentState::ALL {
        assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
    }
}
