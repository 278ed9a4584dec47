//! Access protection on the wire (issue 18): on an HTTPS listener (an ACM
//! certificate from moto), a preview's rule authenticates with OIDC
//! before it forwards, and a sleep, a wake and a redeploy keep that on
//! the same rule; a project with access protection is refused an HTTP
//! listener by `serve` and by `doctor`, naming both.
//!
//! moto 5.2.5 stores authenticate actions as sent and echoes them back
//! whole, the client secret included (AWS never returns it), and takes
//! them on HTTP listeners too (AWS refuses them): so the secret sent is
//! seen here, and the refusal is previewd's own.

use crate::harness::{Api, Daemon, Moto, find, ours, previewd, write_config};
use crate::{BRANCH, FAMILY, SHA1, SHA2, ready, register_target_when_ready};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const HOST: &str = "issue-42-preview.preview.example.com";
const SECRET: &str = "moto-oidc-client-secret-4f9a";
const SECRET_VAR: &str = "OIDC_CLIENT_SECRET";

const OIDC: &str = r#"
[access]
kind = "oidc"
issuer = "https://idp.example.com"
authorization_endpoint = "https://idp.example.com/authorize"
token_endpoint = "https://idp.example.com/token"
user_info_endpoint = "https://idp.example.com/userinfo"
client_id = "previews"
client_secret_env = "OIDC_CLIENT_SECRET"
scope = "openid email"
"#;

/// Our one rule as moto holds it.
fn our_rule(moto: &Moto) -> Value {
    let snap = moto.world(&["snapshot"]);
    let rules: Vec<&Value> = snap["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| ours(r))
        .collect();
    assert_eq!(rules.len(), 1, "{rules:#?}");
    rules[0].clone()
}

/// The rule's actions authenticate with the configured client first and
/// forward to `to` second; returns the OIDC config as moto keeps it.
fn assert_protected(rule: &Value, to: &str) -> Value {
    let actions = rule["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 2, "{rule:#}");
    let mut actions = actions.clone();
    actions.sort_by_key(|a| a["Order"].as_i64());
    assert_eq!(actions[0]["Type"], "authenticate-oidc", "{rule:#}");
    assert_eq!(actions[0]["Order"], 1);
    let oidc = &actions[0]["AuthenticateOidcConfig"];
    assert_eq!(oidc["Issuer"], "https://idp.example.com");
    assert_eq!(oidc["ClientId"], "previews");
    assert_eq!(oidc["Scope"], "openid email");
    assert_eq!(oidc["OnUnauthenticatedRequest"], "authenticate");
    assert_eq!(actions[1]["Type"], "forward", "{rule:#}");
    assert_eq!(actions[1]["Order"], 2);
    assert_eq!(actions[1]["TargetGroupArn"], to, "{rule:#}");
    oidc.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oidc_protected_rule_survives_a_sleep_a_wake_and_a_redeploy_on_moto() {
    let moto = Moto::start();
    let mut world = moto.world(&["setup"]);
    let https = moto.world(&["https-listener", world["alb_arn"].as_str().unwrap()]);
    assert_eq!(https["protocol"], "HTTPS");
    let listener = https["listener_arn"].as_str().unwrap().to_owned();
    world["listener_arn"] = json!(listener);
    let vpc = world["vpc_id"].as_str().unwrap().to_owned();
    let waker_tg = moto.world(&["waker-target-group", &vpc])["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    let lb: Vec<&str> = listener
        .split(":listener/")
        .nth(1)
        .unwrap()
        .split('/')
        .take(3)
        .collect();
    world["extra_toml"] = json!(format!(
        "[sleep]\nenabled = true\ncheck_interval_secs = 5\nidle_after_secs = 60\n\
         waker_listen = \"127.0.0.1:0\"\n\
         [sleep.waker_target_groups]\n\"{}\" = \"{waker_tg}\"\n{OIDC}",
        lb.join("/")
    ));
    let daemon = Daemon::start(
        &moto,
        &world,
        ("testing", "testing"),
        &[(SECRET_VAR, SECRET)],
    );
    let waker = daemon
        .logged_addr("sleep on: idle previews scale to zero; the waker is listening")
        .expect("the waker listens");
    let api = Api::new(&daemon);

    // Dispatch: the rule authenticates, then forwards; the secret was sent
    // with the CreateRule (AWS requires it; moto shows what it was given).
    api.dispatch("deploy", BRANCH, Some(SHA1)).await;
    let tg_arn = register_target_when_ready(&moto, || daemon.log_text()).await;
    api.wait(BRANCH, "Ready", ready).await;
    let rule = our_rule(&moto);
    let rule_arn = rule["arn"].as_str().unwrap().to_owned();
    let created = assert_protected(&rule, &tg_arn);
    assert_eq!(created["ClientSecret"], SECRET);

    // Sleep: the same rule now forwards to the waker and still
    // authenticates first; the secret AWS holds is kept, not sent again.
    moto.world(&["put-requests", &listener, &tg_arn, "0"]);
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let rule = our_rule(&moto);
        let on_waker = rule["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["TargetGroupArn"] == waker_tg.as_str());
        if on_waker {
            assert_eq!(rule["arn"], rule_arn.as_str());
            let slept = assert_protected(&rule, &waker_tg);
            assert_eq!(slept["UseExistingClientSecret"], true, "{slept:#}");
            assert!(slept.get("ClientSecret").is_none(), "{slept:#}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never asleep: {:#}",
            api.preview(BRANCH).await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    api.wait(BRANCH, "Sleeping", |p| p["phase"] == "Sleeping")
        .await;

    // Wake: a visit reaches the waker (behind the same authenticating
    // rule); once healthy the same rule forwards to the preview again.
    let resp = reqwest::Client::new()
        .get(format!("http://{waker}/"))
        .header("host", HOST)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    api.wait(BRANCH, "Ready again", ready).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let rule = loop {
        let rule = our_rule(&moto);
        let forwards_home = rule["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["TargetGroupArn"] == tg_arn.as_str());
        if forwards_home {
            break rule;
        }
        assert!(Instant::now() < deadline, "{rule:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(rule["arn"], rule_arn.as_str());
    assert_protected(&rule, &tg_arn);

    // Redeploy: a new revision, the same protected rule. (moto starts no
    // second rollout, so the service moving to revision 2 is the sign.)
    api.dispatch("deploy", BRANCH, Some(SHA2)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let snap = moto.world(&["snapshot"]);
        let svc = find(&snap["services"], "name", FAMILY).unwrap();
        if svc["task_definition"].as_str().unwrap().ends_with(":2") {
            break;
        }
        assert!(Instant::now() < deadline, "never redeployed: {svc:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let rule = our_rule(&moto);
    assert_eq!(rule["arn"], rule_arn.as_str());
    assert_protected(&rule, &tg_arn);

    // The secret is in no log line, page or API answer.
    assert!(!daemon.log_text().contains(SECRET));
    let http = reqwest::Client::new();
    for path in [
        "/",
        "/metrics",
        "/v1/previews",
        "/v1/previews/qanote%2Fissue-42",
    ] {
        let body = http
            .get(format!("{}{path}", daemon.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!body.contains(SECRET), "{path}: {body}");
    }
}

/// Runs `previewd ARGS` on `world` with `[access]` appended; its exit
/// status and everything it printed.
fn run(moto: &Moto, world: &Value, args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, world);
    let text = std::fs::read_to_string(&config).unwrap() + OIDC;
    std::fs::write(&config, text).unwrap();
    let mut child = previewd(&dir, moto, ("testing", "testing"), &[(SECRET_VAR, SECRET)])
        .arg("--config")
        .arg(&config)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("previewd {args:?} did not exit: it should have refused");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn an_http_listener_is_refused_to_a_protected_project_by_serve_and_doctor() {
    let moto = Moto::start();
    let world = moto.world(&["setup"]);
    let listener = world["listener_arn"].as_str().unwrap();

    let (ok, text) = run(&moto, &world, &["serve"]);
    assert!(!ok, "serve started on an HTTP listener:\n{text}");
    assert!(text.contains("refusing to serve"), "{text}");
    assert!(text.contains(listener), "{text}");
    assert!(text.contains("project acme/shop"), "{text}");
    assert!(text.contains("only on HTTPS listeners"), "{text}");
    assert!(!text.contains(SECRET), "{text}");

    let (ok, table) = run(&moto, &world, &["doctor"]);
    assert!(!ok, "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("ALB listener"))
        .unwrap_or_default();
    assert!(
        row.contains("PROBLEM") && row.contains("acme/shop"),
        "{table}"
    );
    assert!(row.contains(listener), "{table}");
    assert!(!table.contains(SECRET), "{table}");

    // `config check` knows no protocol, but shows who authenticates and
    // where the secret comes from, never the secret.
    let (ok, checked) = run(&moto, &world, &["config", "check"]);
    assert!(ok, "{checked}");
    assert!(
        checked.contains("access protection: acme/shop: oidc (issuer https://idp.example.com, client id previews), client secret from the variable OIDC_CLIENT_SECRET"),
        "{checked}"
    );
    assert!(!checked.contains(SECRET), "{checked}");
}
