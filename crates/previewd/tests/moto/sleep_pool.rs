//! Sleep across a pool of two load balancers on moto (issue 18 on issue
//! 17's pool): each load balancer has its own waker target group; each
//! preview's rule, modified in place, forwards to the waker of its own
//! load balancer while it sleeps, and back to its own group once a visit
//! woke it. The rule ARNs never change.

use crate::harness::{Api, Daemon, Moto, ours};
use crate::ready;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SHA: &str = "4444444444444444444444444444444444444444";

/// The rule of ours whose tags name `branch`: its ARN and where it
/// forwards.
fn rule_of(moto: &Moto, branch: &str) -> Option<(String, String)> {
    let snap = moto.world(&["snapshot"]);
    let r = snap["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| ours(r) && r["tags"]["previewd:branch"] == branch)?;
    Some((
        r["arn"].as_str().unwrap().to_owned(),
        r["actions"][0]["TargetGroupArn"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    ))
}

/// The target group of ours for `branch`, once it exists.
fn group_of(moto: &Moto, branch: &str) -> Option<String> {
    let snap = moto.world(&["snapshot"]);
    snap["target_groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| ours(t) && t["tags"]["previewd:branch"] == branch)
        .map(|t| t["arn"].as_str().unwrap().to_owned())
}

/// `app/<name>/<id>` of a listener ARN.
fn load_balancer(listener: &Value) -> String {
    let rest = listener
        .as_str()
        .unwrap()
        .split(":listener/")
        .nth(1)
        .unwrap();
    rest.split('/').take(3).collect::<Vec<_>>().join("/")
}

fn on(rule_arn: &str, listener: &Value) -> bool {
    let base = listener
        .as_str()
        .unwrap()
        .replacen(":listener/", ":listener-rule/", 1);
    rule_arn.starts_with(&format!("{base}/"))
}

async fn until<T>(what: &str, daemon: &Daemon, mut done: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        if let Some(t) = done() {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "never {what}:\n{}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn to_waker(waker: &str, host: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("http://{waker}/"))
        .header("host", host)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_sleeping_rule_forwards_to_the_waker_of_its_own_load_balancer() {
    let moto = Moto::start();
    let mut world = moto.world(&["setup"]);
    let vpc = world["vpc_id"].as_str().unwrap().to_owned();
    let subnets: Vec<String> = world["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    let second = moto.world(&[
        "second-alb",
        &vpc,
        &subnets[0],
        &subnets[1],
        world["security_group"].as_str().unwrap(),
    ]);
    let (l1, l2) = (
        world["listener_arn"].clone(),
        second["listener_arn"].clone(),
    );
    let waker_of = |name: &str| {
        moto.world(&["waker-target-group", &vpc, name])["arn"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (w1, w2) = (waker_of("previewd-waker"), waker_of("previewd-waker-2"));
    world["extra_toml"] = json!(format!(
        "[sleep]\nenabled = true\ncheck_interval_secs = 5\nidle_after_secs = 60\n\
         waker_listen = \"127.0.0.1:0\"\n\
         [sleep.waker_target_groups]\n\"{}\" = \"{w1}\"\n\"{}\" = \"{w2}\"\n",
        load_balancer(&l1),
        load_balancer(&l2),
    ));
    // Each load balancer holds another team's rule and takes two rules:
    // one preview on each.
    let entry = |w: &Value| {
        json!({
            "listener_arn": w["listener_arn"],
            "alb_dns_name": w["alb_dns_name"],
            "alb_zone_id": w["alb_zone_id"],
            "rule_quota": 2,
        })
    };
    let daemon = Daemon::start_pool(&moto, &world, &[entry(&world), entry(&second)]);
    let waker = daemon
        .logged_addr("sleep on: idle previews scale to zero; the waker is listening")
        .expect("the waker listens");
    let api = Api::new(&daemon);

    // One preview on each load balancer, Ready (moto runs no task: the
    // test registers the target ECS would).
    let mut previews = Vec::new();
    for (branch, listener, waker_tg) in [("feature/one", &l1, &w1), ("feature/two", &l2, &w2)] {
        api.dispatch("deploy", branch, Some(SHA)).await;
        let own = until("its target group", &daemon, || group_of(&moto, branch)).await;
        moto.world(&["register-target", &own]);
        api.wait(branch, "Ready", ready).await;
        let (rule, to) = rule_of(&moto, branch).unwrap();
        assert!(on(&rule, listener), "{branch}: {rule}");
        assert_eq!(to, own);
        let host = api.preview(branch).await["host"]
            .as_str()
            .unwrap()
            .to_owned();
        previews.push((branch, rule, own, waker_tg.clone(), host));
    }

    // Nobody visits: both sleep, each rule modified in place to the waker
    // of its own load balancer.
    for (branch, rule, _, waker_tg, _) in &previews {
        let got = until("asleep on its own waker", &daemon, || {
            rule_of(&moto, branch).filter(|(_, to)| to == waker_tg)
        })
        .await;
        assert_eq!(&got.0, rule, "{branch}: the same rule");
        api.wait(branch, "Sleeping", |p| p["phase"] == "Sleeping")
            .await;
    }

    // Another host gets nothing from the waker.
    assert_eq!(to_waker(&waker, "www.example.com").await, 404);

    // A visit to the second's host wakes it alone: its rule goes back to
    // its own group, the first stays on its waker.
    let (branch, rule, own, _, host) = &previews[1];
    assert_eq!(to_waker(&waker, host).await, 503);
    api.wait(branch, "Ready again", ready).await;
    let back = until("back on its own group", &daemon, || {
        rule_of(&moto, branch).filter(|(_, to)| to == own)
    })
    .await;
    assert_eq!(&back.0, rule);
    let (first, first_rule, _, first_waker, _) = &previews[0];
    assert_eq!(
        rule_of(&moto, first),
        Some((first_rule.clone(), first_waker.clone()))
    );
    assert_eq!(api.preview(first).await["asleep"], true);
}
