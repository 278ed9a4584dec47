//! Sleep on the wire (issue 18): ALB request counts put into CloudWatch
//! with PutMetricData, read back by the idle check's GetMetricData; the
//! preview sleeps with its rule modified in place to the waker target
//! group; a request to the waker for its host wakes it, and a request for
//! any other host gets nothing.

use crate::harness::{Api, Daemon, Moto, find, ours};
use crate::{BRANCH, FAMILY, SHA1, ready, register_target_when_ready};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const HOST: &str = "issue-42-preview.preview.example.com";

/// Our one rule: its ARN and the group it forwards to.
fn our_rule(moto: &Moto) -> (String, String) {
    let snap = moto.world(&["snapshot"]);
    let rules: Vec<&Value> = snap["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| ours(r))
        .collect();
    assert_eq!(rules.len(), 1, "{rules:#?}");
    let arn = rules[0]["arn"].as_str().unwrap().to_owned();
    let to = rules[0]["actions"][0]["TargetGroupArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (arn, to)
}

fn desired(moto: &Moto) -> i64 {
    let snap = moto.world(&["snapshot"]);
    find(&snap["services"], "name", FAMILY).unwrap()["desired"]
        .as_i64()
        .unwrap()
}

async fn to_waker(waker: &str, host: &str) -> (u16, Option<String>, String) {
    let resp = reqwest::Client::new()
        .get(format!("http://{waker}/"))
        .header("host", host)
        .header("accept", "*/*")
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_preview_sleeps_on_moto_and_a_visit_to_the_waker_wakes_it() {
    let moto = Moto::start();
    let mut world = moto.world(&["setup"]);
    let vpc = world["vpc_id"].as_str().unwrap().to_owned();
    let listener = world["listener_arn"].as_str().unwrap().to_owned();
    let waker_tg = moto.world(&["waker-target-group", &vpc])["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    let load_balancer = listener.split(":listener/").nth(1).unwrap();
    let load_balancer: Vec<&str> = load_balancer.split('/').take(3).collect();
    world["extra_toml"] = json!(format!(
        "[sleep]\nenabled = true\ncheck_interval_secs = 5\nidle_after_secs = 60\n\
         waker_listen = \"127.0.0.1:0\"\nretry_after_secs = 7\n\
         [sleep.waker_target_groups]\n\"{}\" = \"{waker_tg}\"\n",
        load_balancer.join("/")
    ));
    let daemon = Daemon::start(&moto, &world, ("testing", "testing"), &[]);
    let waker = daemon
        .logged_addr("sleep on: idle previews scale to zero; the waker is listening")
        .expect("the waker listens");
    let api = Api::new(&daemon);
    api.dispatch("deploy", BRANCH, Some(SHA1)).await;
    let tg_arn = register_target_when_ready(&moto, || daemon.log_text()).await;
    api.wait(BRANCH, "Ready", ready).await;
    let (rule_arn, to) = our_rule(&moto);
    assert_eq!(to, tg_arn);
    // The preview's group answered nothing; the web team's next door did.
    moto.world(&["put-requests", &listener, &tg_arn, "0"]);
    let snap = moto.world(&["snapshot"]);
    let prod = find(&snap["target_groups"], "name", "prod-web").unwrap()["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    moto.world(&["put-requests", &listener, &prod, "25"]);

    // idle_after (60 s) after it became Ready, the idle check puts it to
    // sleep: the same rule now forwards to the waker, the service is at 0.
    let deadline = Instant::now() + Duration::from_secs(120);
    let p = loop {
        let p = api.preview(BRANCH).await;
        if p["phase"] == "Sleeping" && p["asleep"] == true {
            break p;
        }
        let warnings: Vec<String> = daemon
            .log_lines()
            .iter()
            .filter(|l| l["level"] != "INFO" && l["level"] != "DEBUG")
            .map(|l| l.to_string())
            .collect();
        assert!(
            Instant::now() < deadline,
            "never asleep: {p:#}\n{warnings:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(p["url"], format!("https://{HOST}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while our_rule(&moto).1 != waker_tg || desired(&moto) != 0 {
        assert!(Instant::now() < deadline, "{:?}", our_rule(&moto));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(our_rule(&moto), (rule_arn.clone(), waker_tg.clone()));

    // Any other host gets nothing from the waker, and wakes nothing.
    for host in ["www.example.com", "issue-43-preview.preview.example.com"] {
        let (status, retry, body) = to_waker(&waker, host).await;
        assert_eq!((status, retry, body.as_str()), (404, None, ""), "{host}");
    }
    assert_eq!(api.preview(BRANCH).await["asleep"], true);

    // The preview's host: 503 with Retry-After, and it wakes; once its
    // target is healthy the same rule goes back to its own group.
    let (status, retry, _) = to_waker(&waker, HOST).await;
    assert_eq!((status, retry.as_deref()), (503, Some("7")));
    api.wait(BRANCH, "Ready again", ready).await;
    assert_eq!(our_rule(&moto), (rule_arn, tg_arn));
    assert_eq!(desired(&moto), 1);
}
