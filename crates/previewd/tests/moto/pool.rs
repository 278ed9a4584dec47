//! A pool of two load balancers on moto, each with another team's rule and
//! target group: previews spill onto the second when the first is full,
//! each record aliases its own load balancer, and a destroy frees room
//! that the next preview takes.

use crate::harness::{Api, Daemon, Moto, ours};
use serde_json::{Value, json};

const SHA: &str = "3333333333333333333333333333333333333333";

/// The rule of ours whose tags name `branch`, if any.
fn rule_of<'a>(snap: &'a Value, branch: &str) -> Option<&'a Value> {
    snap["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| ours(r) && r["tags"]["previewd:branch"] == branch)
}

/// Whether a rule ARN is of a rule on `listener`.
fn on(rule: &Value, listener: &Value) -> bool {
    let base = listener
        .as_str()
        .unwrap()
        .replacen(":listener/", ":listener-rule/", 1);
    rule["arn"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{base}/"))
}

/// The alias target of the preview's A record, once it exists.
fn alias_of(snap: &Value, host: &str) -> Option<String> {
    snap["records"].as_array().unwrap().iter().find_map(|r| {
        (r["Name"] == format!("{host}.") && r["Type"] == "A")
            .then(|| r["AliasTarget"]["DNSName"].as_str().map(str::to_owned))
            .flatten()
    })
}

/// Polls the account until `done` finds what it wants.
async fn until<T>(moto: &Moto, what: &str, log: &Daemon, done: impl Fn(&Value) -> Option<T>) -> T {
    for _ in 0..360 {
        let snap = moto.world(&["snapshot"]);
        if let Some(t) = done(&snap) {
            return t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("never {what}:\n{}", log.log_text());
}

/// A DNS name as Route53 keeps an alias target's: lower case, one dot.
fn dns(name: &Value) -> String {
    format!(
        "{}.",
        name.as_str()
            .unwrap()
            .trim_end_matches('.')
            .to_ascii_lowercase()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn previews_spill_onto_the_second_alb_and_a_destroy_frees_room() {
    let moto = Moto::start();
    let world = moto.world(&["setup"]);
    let subnets: Vec<&str> = world["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let second = moto.world(&[
        "second-alb",
        world["vpc_id"].as_str().unwrap(),
        subnets[0],
        subnets[1],
        world["security_group"].as_str().unwrap(),
    ]);
    // Each load balancer holds another team's rule and target group and
    // takes two rules: room for exactly one preview on each.
    let entry = |w: &Value| {
        json!({
            "listener_arn": w["listener_arn"],
            "alb_dns_name": w["alb_dns_name"],
            "alb_zone_id": w["alb_zone_id"],
            "rule_quota": 2,
        })
    };
    let daemon = Daemon::start_pool(&moto, &world, &[entry(&world), entry(&second)]);
    let api = Api::new(&daemon);
    let (l1, l2) = (&world["listener_arn"], &second["listener_arn"]);

    // The first preview goes on the first listener, the second spills.
    api.dispatch("deploy", "feature/one", Some(SHA)).await;
    let one = until(&moto, "a rule for feature/one", &daemon, |s| {
        rule_of(s, "feature/one").cloned()
    })
    .await;
    assert!(on(&one, l1), "{one:#}");
    api.dispatch("deploy", "feature/two", Some(SHA)).await;
    let two = until(&moto, "a rule for feature/two", &daemon, |s| {
        rule_of(s, "feature/two").cloned()
    })
    .await;
    assert!(on(&two, l2), "spilled onto the second listener: {two:#}");

    // Each record aliases its own load balancer.
    for (branch, alb) in [("feature/one", &world), ("feature/two", &second)] {
        let host = api.preview(branch).await["host"]
            .as_str()
            .unwrap()
            .to_owned();
        let target = until(&moto, "an alias record", &daemon, |s| alias_of(s, &host)).await;
        assert_eq!(dns(&json!(target)), dns(&alb["alb_dns_name"]), "{branch}");
        let p = api.preview(branch).await;
        assert_eq!(
            &p["listener_arn"],
            if branch == "feature/one" { l1 } else { l2 }
        );
    }

    // Both are full now: the third waits, and says why.
    api.dispatch("deploy", "feature/three", Some(SHA)).await;
    let waiting = api
        .wait("feature/three", "Pending with a reason", |p| {
            p["message"]
                .as_str()
                .is_some_and(|m| m.contains("every listener of the pool is full"))
        })
        .await;
    assert_eq!(waiting["phase"], "Pending", "{waiting:#}");
    let snap = moto.world(&["snapshot"]);
    assert!(rule_of(&snap, "feature/three").is_none());
    let three_tg = snap["target_groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| ours(t) && t["tags"]["previewd:branch"] == "feature/three");
    assert!(!three_tg, "nothing is created while the pool is full");

    // A destroy on the first frees its room; the third takes it.
    api.dispatch("destroy", "feature/one", None).await;
    let three = until(&moto, "a rule for feature/three", &daemon, |s| {
        rule_of(s, "feature/three").cloned()
    })
    .await;
    assert!(on(&three, l1), "{three:#}");
    let snap = moto.world(&["snapshot"]);
    assert!(rule_of(&snap, "feature/one").is_none());
    // The other teams' rules are where they were.
    for team in ["web", "api"] {
        let theirs = snap["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["tags"]["team"] == team)
            .count();
        assert_eq!(theirs, 1, "{team}");
    }
}
