//! Authentication that cannot be switched off by accident.

use crate::daemon::{BIN, Daemon, http};
use crate::{TOKEN, deploy_body, previews, refusal};
use std::process::Command;

/// `serve` with `env` (and nothing of ours), expected to refuse to start.
fn refused_start(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/previewd.db", dir.path().display());
    let out = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PREVIEWD_STORE_URL", &db)
        .env("PREVIEWD_SERVER_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!out.status.success(), "serve started with {env:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_token_file_holding_only_a_newline_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "\n").unwrap();
    let path = file.display().to_string();
    let err = refused_start(&[("PREVIEWD_SERVER_API_TOKEN_FILE", &path)]);
    assert!(err.contains("server.api_token_file"), "{err}");
    assert!(err.contains(&path) && err.contains("empty"), "{err}");
    // Not even on 0.0.0.0, where an empty token used to be taken as one.
    let err = refused_start(&[
        ("PREVIEWD_SERVER_API_TOKEN_FILE", &path),
        ("PREVIEWD_SERVER_LISTEN", "0.0.0.0:0"),
    ]);
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn weak_tokens_from_the_environment_refuse_to_start_naming_the_variable() {
    for (token, rule) in [
        ("", "empty"),
        ("   ", "empty"),
        ("short-token", "shorter than 32"),
    ] {
        let err = refused_start(&[("PREVIEWD_API_TOKEN", token)]);
        assert!(
            err.contains("PREVIEWD_API_TOKEN") && err.contains(rule),
            "{token:?}: {err}"
        );
        assert!(
            token.trim().is_empty() || !err.contains(token),
            "the token is echoed: {err}"
        );
    }
}

#[test]
fn empty_missing_and_wrong_tokens_are_refused_counted_and_logged_without_the_value() {
    let d = Daemon::start(&[("PREVIEWD_API_TOKEN", TOKEN)]);
    let body = deploy_body("qanote/issue-1", None);
    let json = ("Content-Type", "application/json");
    let wrong = format!("Bearer {}x", &TOKEN[..TOKEN.len() - 1]);
    for auth in [
        None,
        Some("Bearer "),
        Some("Bearer"),
        Some("Basic YTpi"),
        Some(wrong.as_str()),
    ] {
        let mut headers = vec![json];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        let (status, reply) = http(&d.addr, "POST", "/v1/dispatch", &headers, &body);
        refusal(status, &reply, 401, "Authorization");
    }
    assert!(
        previews(&d, Some(TOKEN)).is_empty(),
        "a refused request wrote a row"
    );
    // RFC 7235: the scheme is case-insensitive.
    let lower = format!("bearer {TOKEN}");
    let (status, reply) = http(
        &d.addr,
        "POST",
        "/v1/dispatch",
        &[json, ("Authorization", &lower)],
        &body,
    );
    assert_eq!(status, 202, "{reply}");
    let (_, metrics) = http(&d.addr, "GET", "/metrics", &[], "");
    for reason in ["missing", "empty", "malformed", "wrong"] {
        assert!(
            metrics.contains(&format!(
                "previewd_auth_failures_total{{reason=\"{reason}\"}}"
            )),
            "{reason} not counted:\n{metrics}"
        );
    }
    let lines = d.stop();
    let refusals: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("refused a /v1 request"))
        .collect();
    // Five refusals within ten seconds: one line, the rest held back.
    assert_eq!(refusals.len(), 1, "{refusals:#?}");
    assert!(
        lines.iter().all(|l| !l.contains(&TOKEN[..TOKEN.len() - 1])),
        "a token reached the log"
    );
}
