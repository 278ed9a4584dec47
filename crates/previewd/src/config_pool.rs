//! `cloud.listeners`: the pool of ALB listeners previews are placed on,
//! and its validation. Without it the single-listener keys
//! (`cloud.listener_arn`, `alb_dns_name`, `alb_zone_id`,
//! `priority_band_start`/`_end`, `alb_rule_quota`) make a pool of one,
//! exactly as before.

use super::{CloudKind, CloudSection, Config};
use previewd_core::pool::{Pool, PoolListener};
use serde::Deserialize;
use std::collections::BTreeMap;

/// One `[[cloud.listeners]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerEntry {
    /// The listener's ARN (`arn:aws:elasticloadbalancing:…:listener/app/…`).
    pub arn: String,
    /// Its load balancer's DNS name: where the preview's alias points.
    #[serde(default)]
    pub alb_dns_name: String,
    /// Its load balancer's canonical hosted zone id.
    #[serde(default)]
    pub alb_zone_id: String,
    #[serde(default = "default_band_start")]
    pub priority_band_start: i32,
    #[serde(default = "default_band_end")]
    pub priority_band_end: i32,
    /// Rules its load balancer may hold (AWS's adjustable quota).
    #[serde(default = "default_rule_quota")]
    pub rule_quota: usize,
    /// Takes no new previews; keeps the ones it has.
    #[serde(default)]
    pub draining: bool,
}

fn default_band_start() -> i32 {
    1000
}

fn default_band_end() -> i32 {
    1999
}

fn default_rule_quota() -> usize {
    100
}

impl Config {
    /// The pool: `cloud.listeners`, or the single listener's keys as a
    /// pool of one. Its first listener holds the rows placed before the
    /// pool existed.
    pub fn pool(&self) -> Pool {
        let c = &self.cloud;
        if c.listeners.is_empty() {
            return Pool::single(&self.template());
        }
        Pool {
            listeners: c
                .listeners
                .iter()
                .map(|l| PoolListener {
                    arn: l.arn.clone(),
                    alb_dns_name: l.alb_dns_name.clone(),
                    alb_zone_id: l.alb_zone_id.clone(),
                    priority_band: (l.priority_band_start, l.priority_band_end),
                    rule_quota: l.rule_quota,
                    draining: l.draining,
                })
                .collect(),
        }
    }
}

/// The listener ARN shape, for either key that names one.
pub(super) fn is_listener_arn(arn: &str) -> bool {
    let parts = arn.split(':').collect::<Vec<_>>();
    parts.len() >= 6
        && parts[0] == "arn"
        && parts[2] == "elasticloadbalancing"
        && parts[5].starts_with("listener/app/")
}

/// Every problem with `cloud.listeners`, each naming its entry and field.
pub(super) fn problems(c: &CloudSection) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if c.listeners.is_empty() {
        return out;
    }
    let single = CloudSection::default();
    for (key, set) in [
        ("cloud.listener_arn", c.listener_arn != single.listener_arn),
        ("cloud.alb_dns_name", c.alb_dns_name != single.alb_dns_name),
        ("cloud.alb_zone_id", c.alb_zone_id != single.alb_zone_id),
        (
            "cloud.priority_band_start",
            c.priority_band_start != single.priority_band_start
                || c.priority_band_end != single.priority_band_end,
        ),
        (
            "cloud.alb_rule_quota",
            c.alb_rule_quota != single.alb_rule_quota,
        ),
    ] {
        if set {
            out.push((
                key.to_owned(),
                "set it in the entries of cloud.listeners instead: a pool and a single \
                 listener are two ways of saying the same thing, give one"
                    .to_owned(),
            ));
        }
    }
    let mut arns: BTreeMap<&str, usize> = BTreeMap::new();
    let mut albs: BTreeMap<String, usize> = BTreeMap::new();
    for (i, l) in c.listeners.iter().enumerate() {
        let key = |field: &str| format!("cloud.listeners[{i}].{field}");
        if c.kind == CloudKind::Aws && !is_listener_arn(&l.arn) {
            out.push((
                key("arn"),
                "must be an Application Load Balancer listener ARN \
                 (arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/…)"
                    .into(),
            ));
        } else if l.arn.trim().is_empty() {
            out.push((key("arn"), "must not be empty".into()));
        }
        if let Some(j) = arns.insert(&l.arn, i) {
            out.push((
                key("arn"),
                format!(
                    "{} is already cloud.listeners[{j}]: a listener is in the pool once, \
                     with one priority band",
                    l.arn
                ),
            ));
        }
        if c.dns_mode == "alias" {
            if l.alb_dns_name.trim().is_empty() || l.alb_zone_id.trim().is_empty() {
                out.push((
                    key("alb_dns_name"),
                    "alias records need each load balancer's DNS name and canonical zone id \
                     (alb_zone_id)"
                        .into(),
                ));
            }
            // Two listeners on one ALB would share its 100 target groups
            // and each count them as its own.
            let dns = l.alb_dns_name.to_ascii_lowercase();
            if !dns.is_empty()
                && let Some(j) = albs.insert(dns, i)
            {
                out.push((
                    key("alb_dns_name"),
                    format!(
                        "cloud.listeners[{j}] is on the same load balancer: the pool takes one \
                         listener per ALB"
                    ),
                ));
            }
        }
        let (start, end) = (l.priority_band_start, l.priority_band_end);
        if !(1..=50_000).contains(&start) || !(1..=50_000).contains(&end) || start > end {
            out.push((
                key("priority_band_start"),
                "the band must lie within 1..=50000 with start <= end".into(),
            ));
        }
        if l.rule_quota == 0 {
            out.push((key("rule_quota"), "must be at least 1".into()));
        }
    }
    // Priorities are per listener, and a listener is in the pool once
    // (above), so no two bands can overlap on one listener.
    if c.listeners.iter().all(|l| l.draining) {
        out.push((
            "cloud.listeners".into(),
            "every listener is draining: no new preview could be placed; leave one open".into(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize) -> ListenerEntry {
        ListenerEntry {
            arn: format!(
                "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/p{i}/1/1"
            ),
            alb_dns_name: format!("p{i}.eu-west-1.elb.amazonaws.com"),
            alb_zone_id: "Z32O12XQLNTSW2".into(),
            priority_band_start: 1000,
            priority_band_end: 1999,
            rule_quota: 100,
            draining: false,
        }
    }

    fn pooled(entries: Vec<ListenerEntry>) -> CloudSection {
        CloudSection {
            kind: CloudKind::Aws,
            listeners: entries,
            ..CloudSection::default()
        }
    }

    fn keys(c: &CloudSection) -> Vec<String> {
        problems(c).into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn a_good_pool_has_no_problem_and_an_empty_one_is_the_single_listener() {
        assert!(problems(&pooled(vec![entry(0), entry(1)])).is_empty());
        assert!(problems(&CloudSection::default()).is_empty());
    }

    #[test]
    fn each_bad_entry_is_named_by_index_and_field() {
        let mut bad = vec![entry(0), entry(1), entry(2), entry(3)];
        bad[1].arn = bad[0].arn.clone();
        bad[2].alb_dns_name = bad[0].alb_dns_name.to_uppercase();
        bad[3].priority_band_start = 3000;
        bad[3].rule_quota = 0;
        assert_eq!(
            keys(&pooled(bad)),
            [
                "cloud.listeners[1].arn",
                "cloud.listeners[2].alb_dns_name",
                "cloud.listeners[3].priority_band_start",
                "cloud.listeners[3].rule_quota",
            ]
        );
        let mut not_arn = entry(0);
        not_arn.arn = "arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/x/1".into();
        assert_eq!(keys(&pooled(vec![not_arn])), ["cloud.listeners[0].arn"]);
    }

    #[test]
    fn a_pool_and_the_single_listener_keys_are_not_both_given() {
        let mut c = pooled(vec![entry(0)]);
        c.listener_arn = entry(5).arn;
        c.alb_rule_quota = 200;
        assert_eq!(keys(&c), ["cloud.listener_arn", "cloud.alb_rule_quota"]);
    }

    #[test]
    fn a_pool_where_every_listener_drains_is_refused() {
        let mut e = entry(0);
        e.draining = true;
        assert_eq!(keys(&pooled(vec![e])), ["cloud.listeners"]);
    }
}
