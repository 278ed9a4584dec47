//! Secrets that stay secret: a password in the file is refused, printed
//! URLs are redacted, GitHub is spoken to over TLS only.

use crate::daemon::BIN;
use std::process::{Command, Output};

fn config_check(file: &str, env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("previewd.toml");
    std::fs::write(&path, file).unwrap();
    Command::new(BIN)
        .args(["config", "check"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PREVIEWD_CONFIG", &path)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn all(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_password_in_store_url_in_the_file_is_refused_and_never_printed() {
    let out = config_check(
        "[store]\nurl = \"postgres://previewd:hunter2-Qm7@db.internal:5432/previews\"\n",
        &[],
    );
    let text = all(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("store.url") && text.contains("PREVIEWD_STORE_URL"),
        "{text}"
    );
    assert!(
        !text.contains("hunter2"),
        "the password was printed: {text}"
    );
}

#[test]
fn a_password_from_the_environment_is_accepted_and_printed_redacted() {
    let out = config_check(
        "",
        &[(
            "PREVIEWD_STORE_URL",
            "postgres://previewd:hunter2-Qm7@db.internal:5432/previews?sslpassword=Zx9-key",
        )],
    );
    let text = all(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("postgres://previewd:***@db.internal:5432/previews"),
        "{text}"
    );
    assert!(
        !text.contains("hunter2") && !text.contains("Zx9-key"),
        "{text}"
    );
}

#[test]
fn a_password_file_is_accepted_for_postgres_only() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "hunter2-Qm7\n").unwrap();
    let file = format!(
        "[store]\nurl = \"postgres://previewd@db.internal/previews\"\npassword_file = \"{}\"\n",
        pw.display()
    );
    let out = config_check(&file, &[]);
    assert!(out.status.success(), "{}", all(&out));
    let file = format!("[store]\npassword_file = \"{}\"\n", pw.display());
    let out = config_check(&file, &[]);
    assert!(!out.status.success());
    assert!(all(&out).contains("store.password_file"), "{}", all(&out));
}

#[test]
fn github_api_url_must_be_https_except_on_loopback() {
    for (url, ok) in [
        ("https://github.example.com/api/v3", true),
        ("http://127.0.0.1:9999", true),
        ("http://[::1]:9999", true),
        ("http://github.example.com/api/v3", false),
        ("http://10.0.0.5", false),
        ("ftp://github.example.com", false),
    ] {
        let out = config_check(&format!("[github]\napi_url = \"{url}\"\n"), &[]);
        assert_eq!(out.status.success(), ok, "{url}: {}", all(&out));
        if !ok {
            assert!(all(&out).contains("github.api_url"), "{}", all(&out));
        }
    }
}
