use super::*;
use crate::config::ListenerEntry;

fn listener(name: &str) -> String {
    format!("arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/{name}/1/1")
}

fn waker(name: &str) -> String {
    format!(
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/previewd-waker-{name}/1"
    )
}

/// Sleep on, on AWS, over a pool of `albs`, with wakers for `with`.
fn config(albs: &[&str], with: &[&str]) -> Config {
    let mut c = Config::default();
    c.cloud.kind = CloudKind::Aws;
    c.cloud.listeners = albs
        .iter()
        .map(|a| ListenerEntry {
            arn: listener(a),
            alb_dns_name: format!("{a}.eu-west-1.elb.amazonaws.com"),
            alb_zone_id: "Z32O12XQLNTSW2".into(),
            priority_band_start: 1000,
            priority_band_end: 1999,
            rule_quota: 100,
            draining: false,
        })
        .collect();
    c.sleep.enabled = true;
    c.sleep.waker_target_groups = with
        .iter()
        .map(|a| (format!("app/{a}/1"), waker(a)))
        .collect();
    c
}

#[test]
fn sleep_serves_a_pool_whose_every_load_balancer_has_its_waker() {
    assert!(problems(&config(&["a", "b"], &["a", "b"])).is_empty());
}

#[test]
fn a_load_balancer_of_the_pool_without_a_waker_is_refused_by_name() {
    let found = problems(&config(&["a", "b", "c"], &["a"]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key, "sleep.waker_target_groups");
    assert!(
        found[0].message.contains("missing: app/b/1, app/c/1"),
        "{}",
        found[0].message
    );
    assert!(
        found[0].message.contains("could never sleep"),
        "{}",
        found[0].message
    );
}

#[test]
fn sleep_off_needs_no_waker() {
    let mut c = config(&["a", "b"], &[]);
    c.sleep.enabled = false;
    assert!(problems(&c).is_empty());
}
