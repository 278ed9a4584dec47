//! The status page in a real headless Chromium: what a person sees for
//! previews that are Ready, Failed (with the reason) and Deleting, and on
//! a preview's own page its resources and events.
//!
//! Needs `/usr/bin/chromium` (Debian package `chromium`; `.ci/run`
//! installs it). Without it the test fails, it never skips.

use crate::*;
use previewd_sim::SimConfig;
use std::path::Path;
use std::process::{Command, Stdio};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs headless Chromium with a fresh profile and `args` after the fixed
/// ones, and returns what it printed. Chromium is slow to start, so this
/// waits up to a minute before calling it hung.
fn chromium(profile: &Path, args: &[&str]) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the status page test needs a real browser \
         (apt-get install -y chromium; .ci/run installs it)"
    );
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {CHROMIUM}: {e}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("waiting for chromium").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within a minute: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("chromium's output");
    assert!(
        out.status.success(),
        "chromium failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The DOM of `url` after Chromium loaded and rendered it.
async fn dom(url: String) -> String {
    tokio::task::spawn_blocking(move || {
        let profile = tempfile::tempdir().unwrap();
        chromium(profile.path(), &["--dump-dom", &url])
    })
    .await
    .unwrap()
}

/// The table row Chromium shows for a branch, found by its `data-branch`
/// attribute as the browser serializes it.
fn row<'a>(dom: &'a str, branch_attr: &str) -> &'a str {
    let start = dom
        .find(&format!("<tr data-branch=\"{branch_attr}\""))
        .unwrap_or_else(|| panic!("no row for {branch_attr} in:\n{dom}"));
    let len = dom[start..].find("</tr>").expect("the row ends");
    &dom[start..start + len]
}

/// Starts the daemon with previews in three phases. A service takes a
/// minute to drain, so the destroyed one stays Deleting; an IAM denial
/// fails the last one with AccessDenied.
async fn three_phases() -> TestApp {
    let sim = SimConfig {
        drain_after: Duration::from_secs(60),
        ..SimConfig::default()
    };
    let app = spawn_app(sim, Some("s3cret-token-for-the-e2e-tests-0001")).await;
    for (branch, commit) in [
        ("qanote/issue-1", "1111111aaa"),
        ("feature/<b>bold</b>", "2222222bbb"),
    ] {
        assert_eq!(
            app.api.post("/v1/dispatch", deploy(branch, commit)).await.0,
            202
        );
        app.api.wait_for(branch, WITHIN, phase_is("Ready", 1)).await;
    }
    let (status, _) = app
        .api
        .delete("/v1/previews/feature%2F%3Cb%3Ebold%3C%2Fb%3E")
        .await;
    assert_eq!(status, 202);
    app.api
        .wait_for("feature/<b>bold</b>", WITHIN, |p| p["phase"] == "Deleting")
        .await;
    app.sim.deny("elasticloadbalancing:CreateRule");
    let failing = deploy("qanote/issue-3", "3333333ccc");
    assert_eq!(app.api.post("/v1/dispatch", failing).await.0, 202);
    app.api
        .wait_for("qanote/issue-3", WITHIN, |p| p["phase"] == "Failed")
        .await;
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_shows_each_preview_with_its_phase_link_and_reason() {
    let app = three_phases().await;
    let page = dom(app.api.url("/")).await;
    assert!(
        page.contains("<meta http-equiv=\"refresh\" content=\"10\">"),
        "{page}"
    );

    let ready = row(&page, "qanote/issue-1");
    assert!(ready.contains(">Ready</span>"), "{ready}");
    assert!(
        ready.contains(
            "<a href=\"https://issue-1-preview.preview.example.com\">https://issue-1-preview.preview.example.com</a>"
        ),
        "{ready}"
    );
    assert!(ready.contains(">1111111</code>"), "short commit: {ready}");
    assert!(ready.contains("preview is ready"), "{ready}");

    let failed = row(&page, "qanote/issue-3");
    assert!(failed.contains(">Failed</span>"), "{failed}");
    assert!(
        failed.contains("AccessDenied: elasticloadbalancing:CreateRule"),
        "the reason is shown: {failed}"
    );

    // The branch name is shown as text: had the page not escaped it, the
    // browser would have made a <b> element of it (and Chromium escapes
    // `<` in the attribute it serializes, too).
    let deleting = row(&page, "feature/&lt;b&gt;bold&lt;/b&gt;");
    assert!(deleting.contains(">Deleting</span>"), "{deleting}");
    assert!(
        deleting.contains(">feature/&lt;b&gt;bold&lt;/b&gt;</a>"),
        "{deleting}"
    );
    assert!(
        !deleting.contains("https://"),
        "no link to what is going away: {deleting}"
    );
    assert!(!page.contains("<b>bold</b>"), "unescaped branch: {page}");

    // Each branch links to its own page.
    assert!(
        ready.contains("href=\"/previews/qanote%2Fissue-1\""),
        "{ready}"
    );

    // And the page renders to pixels, not just to a DOM.
    let shot = tokio::task::spawn_blocking({
        let url = app.api.url("/");
        move || {
            let dir = tempfile::tempdir().unwrap();
            let png = dir.path().join("status.png");
            let profile = dir.path().join("profile");
            chromium(
                &profile,
                &[
                    "--window-size=1280,800",
                    &format!("--screenshot={}", png.display()),
                    &url,
                ],
            );
            std::fs::read(&png).expect("chromium wrote the screenshot")
        }
    })
    .await
    .unwrap();
    assert!(shot.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_shows_a_previews_resources_and_events() {
    let app = three_phases().await;
    let page = dom(app.api.url("/previews/qanote%2Fissue-1")).await;
    for name in [
        "<code>pv-qanote-issue-1</code>",
        "<code>/ecs/pv-qanote-issue-1</code>",
        "<code>issue-1-preview.preview.example.com</code>",
    ] {
        assert!(page.contains(name), "missing {name} in:\n{page}");
    }
    let priority = app.api.get("/v1/previews/qanote%2Fissue-1").await.1["rule_priority"]
        .as_i64()
        .expect("a reserved priority");
    assert!(page.contains(&format!("<code>{priority}</code>")), "{page}");
    let events = &page[page.find("id=\"events\"").expect("an events table")..];
    let ready_at = events.find(">Ready</span>").expect("a Ready event");
    let provisioning_at = events
        .find(">Provisioning</span>")
        .expect("a Provisioning event");
    assert!(ready_at < provisioning_at, "newest first: {events}");

    let failed = dom(app.api.url("/previews/qanote%2Fissue-3")).await;
    assert!(failed.contains(">Failed</span>"), "{failed}");
    assert!(
        failed.contains("<code>AccessDenied</code>"),
        "last error: {failed}"
    );
    let deleting = dom(app.api.url("/previews/feature%2F%3Cb%3Ebold%3C%2Fb%3E")).await;
    assert!(
        deleting.contains("<h1>feature/&lt;b&gt;bold&lt;/b&gt; "),
        "{deleting}"
    );
    assert!(deleting.contains(">Deleting</span>"), "{deleting}");
}
