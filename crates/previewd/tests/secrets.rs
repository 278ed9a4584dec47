//! No secret reaches the logs: the real daemon at debug level, JSON logs,
//! every secret set to a distinctive value and actually used (a GitHub
//! status with the token, a signed callback, checked webhooks), then every
//! line it and its clients printed is searched for them.

mod daemon;

use daemon::{Daemon, client, fake_github, http, text, wait_for};

const API_TOKEN: &str = "api-token-Zq81xKp0Lm-Wd4Ty7Ub2Nc9";
const GITHUB_TOKEN: &str = "ghp_GithubTokenW7v3Nq5Rt9";
const WEBHOOK_SECRET: &str = "webhook-secret-Hf62Jd0Ss4";
const CALLBACK_SECRET: &str = "callback-secret-Pb93Ue1Yc7";
const SECRETS: [&str; 4] = [API_TOKEN, GITHUB_TOKEN, WEBHOOK_SECRET, CALLBACK_SECRET];

#[test]
fn no_secret_appears_in_debug_logs_or_client_output() {
    let (fake, seen) = fake_github();
    let github_url = format!("http://{fake}");
    let d = Daemon::start(&[
        ("PREVIEWD_API_TOKEN", API_TOKEN),
        ("PREVIEWD_GITHUB_TOKEN", GITHUB_TOKEN),
        ("PREVIEWD_GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("PREVIEWD_CALLBACK_SECRET", CALLBACK_SECRET),
        ("PREVIEWD_LOG", "debug"),
        ("PREVIEWD_LOG_FORMAT", "json"),
        ("PREVIEWD_PREVIEWS_PROJECT", "acme/shop"),
        ("PREVIEWD_GITHUB_API_URL", &github_url),
        ("PREVIEWD_CALLBACKS_ALLOWED_HOSTS", r#"["127.0.0.1:*"]"#),
    ]);
    let server = d.url();
    let auth = [("PREVIEWD_API_TOKEN", API_TOKEN), ("PREVIEWD_LOG", "debug")];
    let mut printed = Vec::new();

    // A good token: a deploy whose reports use the GitHub token and the
    // callback secret.
    let callback = format!("http://{fake}/done");
    let out = client(
        &server,
        &[
            "deploy",
            "qanote/issue-5",
            "--commit",
            "abc1234",
            "--callback-url",
            &callback,
        ],
        &auth,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    printed.push(out);
    wait_for(&server, &auth, "qanote/issue-5", |p| p["phase"] == "Ready");

    // A wrong token.
    let out = client(
        &server,
        &["list"],
        &[
            ("PREVIEWD_API_TOKEN", "wrong-token"),
            ("PREVIEWD_LOG", "debug"),
        ],
    );
    assert!(!out.status.success());
    printed.push(out);

    // Webhooks: a forged signature, then a good one deleting the branch.
    let body =
        r#"{"ref":"qanote/issue-5","ref_type":"branch","repository":{"full_name":"acme/shop"}}"#;
    let forged = http(
        &d.addr,
        "POST",
        "/v1/github/webhook",
        &[
            ("X-GitHub-Event", "delete"),
            ("X-GitHub-Delivery", "d-1"),
            ("X-Hub-Signature-256", &format!("sha256={}", "0".repeat(64))),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    assert_eq!(forged.0, 401, "{forged:?}");
    let signed = previewd_github::signature_header(WEBHOOK_SECRET.as_bytes(), body.as_bytes());
    let good = http(
        &d.addr,
        "POST",
        "/v1/github/webhook",
        &[
            ("X-GitHub-Event", "delete"),
            ("X-GitHub-Delivery", "d-2"),
            ("X-Hub-Signature-256", &signed),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    assert!((200..300).contains(&good.0), "{good:?}");
    wait_for(&server, &auth, "qanote/issue-5", |p| {
        p["phase"] == "Deleted"
    });

    // The secrets were really used: GitHub saw the token, the callback a
    // signature. Wait for the delivery worker to get there.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let requests = seen.lock().unwrap().clone();
        let authed = requests
            .iter()
            .any(|r| r.contains(&format!("Bearer {GITHUB_TOKEN}")) && r.contains("/statuses"));
        let signed = requests.iter().any(|r| {
            r.starts_with("POST /done")
                && r.to_ascii_lowercase()
                    .contains("x-previewd-signature-256: sha256=")
        });
        if authed && signed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "reports not delivered: {requests:#?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let mut lines = d.stop();
    assert!(
        lines
            .iter()
            .filter(|l| l.contains("\"level\":\"DEBUG\""))
            .count()
            > 10,
        "debug logging was not on: {lines:#?}"
    );
    for out in &printed {
        lines.push(text(&out.stdout));
        lines.push(text(&out.stderr));
    }
    for secret in SECRETS {
        let leaks: Vec<&String> = lines.iter().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "{secret} leaked: {leaks:#?}");
    }
}
