//! previewd's AWS adapters on the wire: the real daemon, the official AWS
//! SDK, and moto as the AWS account. Known moto gaps are in docs/design.md
//! ("Two AWS back-ends for tests"); the tests register the target that
//! ECS would, and expect no second rollout from moto after a redeploy.

// For its fake GitHub and callback receiver; the sim daemon is not used.
mod access;
#[allow(dead_code)]
#[path = "../daemon/mod.rs"]
mod daemon;
mod doctor_sleep;
mod harness;
mod images;
mod pool;
mod projects;
mod sleep;
mod sleep_pool;
mod tools;

use harness::{Api, Daemon, Moto, find, ours};
use serde_json::Value;

const BRANCH: &str = "qanote/issue-42";
const SHA1: &str = "1111111111111111111111111111111111111111";
const SHA2: &str = "2222222222222222222222222222222222222222";
/// The preview's ECS family, target group and service name.
const FAMILY: &str = "pv-qanote-issue-42";

/// Everything in the account that is not previewd's, for before/after.
fn foreign(snapshot: &Value) -> Value {
    let not_ours = |key: &str| -> Vec<Value> {
        snapshot[key]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| !ours(r))
            .cloned()
            .collect()
    };
    let records: Vec<Value> = snapshot["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            // Ours are the preview's alias A and its ownership TXT.
            let name = r["Name"].as_str().unwrap();
            !(name == "issue-42-preview.preview.example.com."
                && (r["Type"] == "A"
                    || r["ResourceRecords"][0]["Value"]
                        .as_str()
                        .is_some_and(|v| v.contains("previewd"))))
        })
        .cloned()
        .collect();
    let mut tds = snapshot["task_definitions"].clone();
    tds.as_object_mut()
        .unwrap()
        .retain(|family, _| !family.starts_with("pv-"));
    serde_json::json!({
        "rules": not_ours("rules"),
        "target_groups": not_ours("target_groups"),
        "records": records,
        "log_groups": not_ours("log_groups"),
        "services": not_ours("services"),
        "task_definitions": tds,
    })
}

/// Waits for the preview's target group, then registers the task's IP in
/// it, as ECS would once the task runs (moto launches none).
pub(crate) async fn register_target_when_ready(moto: &Moto, log: impl Fn() -> String) -> String {
    for _ in 0..240 {
        let snap = moto.world(&["snapshot"]);
        if let Some(tg) = find(&snap["target_groups"], "name", FAMILY) {
            let arn = tg["arn"].as_str().unwrap().to_owned();
            moto.world(&["register-target", &arn]);
            return arn;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("the target group was never created:\n{}", log());
}

pub(crate) fn ready(p: &Value) -> bool {
    p["phase"] == "Ready" && p["observed_generation"] == p["generation"]
}

/// The index of the first debug line saying a plan step was applied.
fn applied_at(daemon: &Daemon, step: &str) -> Option<usize> {
    daemon
        .log_lines()
        .iter()
        .position(|l| l["fields"]["message"] == "applied" && l["fields"]["step"] == step)
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_redeploy_destroy_on_moto_touches_only_what_is_ours() {
    let moto = Moto::start();
    let world = moto.world(&["setup"]);
    let before = moto.world(&["snapshot"]);
    let daemon = Daemon::start(&moto, &world, ("testing", "testing"), &[]);
    let api = Api::new(&daemon);

    // Deploy.
    api.dispatch("deploy", BRANCH, Some(SHA1)).await;
    let tg_arn = register_target_when_ready(&moto, || daemon.log_text()).await;
    let p = api.wait(BRANCH, "Ready", ready).await;
    assert_eq!(
        p["url"], "https://issue-42-preview.preview.example.com",
        "{p:#}"
    );
    let snap = moto.world(&["snapshot"]);

    // The log group existed, with its retention, before the task definition
    // that logs to it.
    let group = find(&snap["log_groups"], "name", "/ecs/pv-qanote-issue-42").expect("log group");
    assert_eq!(group["retention"], 7);
    assert!(ours(group), "{group:#}");
    let created = applied_at(&daemon, "CreateLogGroup").expect("CreateLogGroup applied");
    let registered =
        applied_at(&daemon, "RegisterTaskDefinition").expect("RegisterTaskDefinition applied");
    assert!(created < registered, "log group after task definition");

    // Task definition: image from the commit, the preview's variables, logs
    // to its group.
    let td = &snap["task_definitions"][FAMILY];
    assert_eq!(td["revision"], 1);
    assert_eq!(td["networkMode"], "awsvpc");
    assert_eq!(td["requiresCompatibilities"][0], "FARGATE");
    let c = &td["containerDefinitions"][0];
    assert_eq!(c["image"], format!("registry.example.com/shop:{SHA1}"));
    let env: Vec<(String, String)> = c["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| {
            (
                kv["name"].as_str().unwrap().into(),
                kv["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    for (k, v) in [
        (
            "PREVIEW_URL",
            "https://issue-42-preview.preview.example.com",
        ),
        ("PREVIEW_BRANCH", BRANCH),
        ("PREVIEW_COMMIT_SHA", SHA1),
    ] {
        assert!(env.contains(&(k.into(), v.into())), "{k} missing: {env:?}");
    }
    let logs = &c["logConfiguration"];
    assert_eq!(logs["logDriver"], "awslogs");
    assert_eq!(logs["options"]["awslogs-group"], "/ecs/pv-qanote-issue-42");
    assert!(td["tags"]["previewd:spec-hash"].is_string(), "{td:#}");

    // Target group, rule, service, records.
    let tg = find(&snap["target_groups"], "name", FAMILY).unwrap();
    assert_eq!(tg["target_type"], "ip");
    assert!(ours(tg));
    let rules: Vec<&Value> = snap["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| ours(r))
        .collect();
    assert_eq!(rules.len(), 1, "{rules:#?}");
    let rule = rules[0];
    let rule_arn = rule["arn"].as_str().unwrap().to_owned();
    assert_eq!(
        rule["conditions"][0]["HostHeaderConfig"]["Values"][0],
        "issue-42-preview.preview.example.com"
    );
    assert_eq!(rule["actions"][0]["TargetGroupArn"], tg_arn);
    let priority: i32 = rule["priority"].as_str().unwrap().parse().unwrap();
    assert!((1000..=1999).contains(&priority), "{priority}");
    let svc = find(&snap["services"], "name", FAMILY).expect("service");
    assert_eq!(svc["launch_type"], "FARGATE");
    assert_eq!(svc["load_balancers"][0]["targetGroupArn"], tg_arn);
    assert_eq!(
        svc["network"]["awsvpcConfiguration"]["subnets"],
        world["subnets"]
    );
    assert!(ours(svc));
    let records: Vec<&Value> = snap["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["Name"] == "issue-42-preview.preview.example.com.")
        .collect();
    let alias = records.iter().find(|r| r["Type"] == "A").expect("alias A");
    assert_eq!(
        alias["AliasTarget"]["DNSName"]
            .as_str()
            .unwrap()
            .trim_end_matches('.'),
        world["alb_dns_name"].as_str().unwrap()
    );
    let txt = records.iter().find(|r| r["Type"] == "TXT").expect("TXT");
    assert!(
        txt["ResourceRecords"][0]["Value"]
            .as_str()
            .unwrap()
            .contains("previewd"),
        "{txt:#}"
    );

    // Redeploy: a new revision, the service moved to it, the same rule.
    api.dispatch("deploy", BRANCH, Some(SHA2)).await;
    let mut snap = moto.world(&["snapshot"]);
    for _ in 0..240 {
        let svc = find(&snap["services"], "name", FAMILY).unwrap();
        if svc["task_definition"]
            .as_str()
            .unwrap()
            .ends_with("pv-qanote-issue-42:2")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        snap = moto.world(&["snapshot"]);
    }
    let td = &snap["task_definitions"][FAMILY];
    assert_eq!(td["revision"], 2, "no new revision: {td:#}");
    assert_eq!(
        td["containerDefinitions"][0]["image"],
        format!("registry.example.com/shop:{SHA2}")
    );
    let svc = find(&snap["services"], "name", FAMILY).unwrap();
    assert!(
        svc["task_definition"]
            .as_str()
            .unwrap()
            .ends_with("pv-qanote-issue-42:2"),
        "{svc:#}"
    );
    let rules: Vec<&Value> = snap["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| ours(r))
        .collect();
    assert_eq!(rules.len(), 1, "a second rule appeared: {rules:#?}");
    assert_eq!(rules[0]["arn"], rule_arn.as_str(), "the rule was replaced");
    let ours_count = |key: &str| {
        snap[key]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| ours(r))
            .count()
    };
    assert_eq!(ours_count("target_groups"), 1);
    assert_eq!(ours_count("services"), 1);
    assert_eq!(ours_count("log_groups"), 1);

    // A hand edit of the rule is repaired by ModifyRule: the same rule.
    moto.world(&["drift-rule", &rule_arn, "hand-edited.example.com"]);
    let mut repaired = None;
    for _ in 0..240 {
        let snap = moto.world(&["snapshot"]);
        let rules: Vec<Value> = snap["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| ours(r))
            .cloned()
            .collect();
        let host = &rules[0]["conditions"][0]["HostHeaderConfig"]["Values"][0];
        if rules.len() == 1 && host == "issue-42-preview.preview.example.com" {
            repaired = Some(rules[0].clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let repaired = repaired.expect("the hand-edited rule was never repaired");
    assert_eq!(repaired["arn"], rule_arn.as_str(), "repaired by replacing");
    assert!(
        applied_at(&daemon, "ModifyRule").is_some(),
        "repaired without ModifyRule"
    );

    // Destroy: nothing of ours is left, nothing of theirs changed.
    api.dispatch("destroy", BRANCH, None).await;
    api.wait(BRANCH, "Deleted", |p| p["phase"] == "Deleted")
        .await;
    let after = moto.world(&["snapshot"]);
    for key in ["rules", "target_groups", "log_groups"] {
        let left: Vec<&Value> = after[key]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| ours(r))
            .collect();
        assert!(left.is_empty(), "{key} left behind: {left:#?}");
    }
    let live: Vec<&Value> = after["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| ours(s) && s["status"] == "ACTIVE")
        .collect();
    assert!(live.is_empty(), "services left: {live:#?}");
    assert!(
        after["task_definitions"].get(FAMILY).is_none(),
        "task definitions left ACTIVE: {:#}",
        after["task_definitions"]
    );
    assert_eq!(foreign(&after), foreign(&before));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_without_modify_rule_fails_naming_the_missing_permission() {
    let moto = Moto::start();
    let mut world = moto.world(&["setup"]);
    let user = moto.world(&["iam-user"]);
    let keys = (
        user["key"].as_str().unwrap().to_owned(),
        user["secret"].as_str().unwrap().to_owned(),
    );
    // moto checks the signature of a body-less GET against a payload hash
    // the SDK never sent, so Route53 (whose reads are GETs) cannot run
    // under its IAM enforcement. It gets a moto of its own through the
    // standard per-service variable, which this also proves is honoured.
    let dns = Moto::start();
    world["hosted_zone_id"] = dns.world(&["zone"])["hosted_zone_id"].clone();
    let daemon = Daemon::start(
        &moto,
        &world,
        (&keys.0, &keys.1),
        &[("AWS_ENDPOINT_URL_ROUTE_53", &dns.endpoint)],
    );
    let api = Api::new(&daemon);

    // The first deploy needs only Create* and Describe*: it works.
    api.dispatch("deploy", BRANCH, Some(SHA1)).await;
    register_target_when_ready(&moto, || daemon.log_text()).await;
    api.wait(BRANCH, "Ready", ready).await;

    // Someone edits the rule in the console; the rerun must modify it.
    let snap = moto.world(&["snapshot"]);
    let rule = snap["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| ours(r))
        .unwrap();
    moto.world(&[
        "drift-rule",
        rule["arn"].as_str().unwrap(),
        "hand-edited.example.com",
    ]);
    moto.enforce_iam();

    api.dispatch("deploy", BRANCH, Some(SHA2)).await;
    let p = api
        .wait(BRANCH, "Failed", |p| {
            p["phase"] == "Failed" && p["observed_generation"] == p["generation"]
        })
        .await;
    let message = p["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("elasticloadbalancing:ModifyRule"),
        "the failure does not name the action: {p:#}"
    );
    assert_eq!(p["last_error"]["class"], "terminal", "{p:#}");
}
