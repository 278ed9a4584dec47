//! `previewd doctor`'s sleep rows: each configured waker target group
//! exists, is on the load balancer it is configured for, and has previewd
//! registered as its target (issue 18).

use crate::Aws;
use crate::doctor::{Check, Verdict, denied_or, row};
use crate::error::Op;
use aws_sdk_elasticloadbalancingv2::types as t;
use previewd_core::sleep::WAKER_HEALTH_PATH;

const NAME: &str = "waker target group";

impl Aws {
    /// One row or two per waker (`sleep.waker_target_groups`: load
    /// balancer `app/<name>/<id>` → target group ARN).
    pub(crate) async fn check_wakers(&self, wakers: &[(String, String)], out: &mut Vec<Check>) {
        for (lb, arn) in wakers {
            let fix = format!(
                "sleep.waker_target_groups.\"{lb}\": create the waker target group on {lb} (the CloudFormation stack does) or fix its ARN"
            );
            let r = self
                .elb
                .describe_target_groups()
                .target_group_arns(arn)
                .send()
                .await;
            let group = match r {
                Ok(o) => match o.target_groups().first() {
                    Some(g) => g.clone(),
                    None => {
                        out.push(row(
                            NAME,
                            Verdict::Problem,
                            format!("{lb}: {arn} not found"),
                            &fix,
                        ));
                        continue;
                    }
                },
                Err(e) => {
                    let mut c = denied_or(Op::DescribeTargetGroups, e, NAME, &fix);
                    c.detail = format!("{lb}: {}", c.detail);
                    out.push(c);
                    continue;
                }
            };
            out.push(placement(lb, arn, &group, &fix));
            self.check_waker_target(lb, arn, out).await;
        }
    }

    /// Whether previewd (its waker port) is registered in the group.
    async fn check_waker_target(&self, lb: &str, arn: &str, out: &mut Vec<Check>) {
        let r = self
            .elb
            .describe_target_health()
            .target_group_arn(arn)
            .send()
            .await;
        let fix = "register previewd's waker port (sleep.waker_listen) in the group: the stack's ECS service maps it";
        out.push(match r {
            Ok(o) => {
                let targets = o.target_health_descriptions();
                let healthy = targets
                    .iter()
                    .filter(|d| {
                        d.target_health().and_then(|h| h.state())
                            == Some(&t::TargetHealthStateEnum::Healthy)
                    })
                    .count();
                match (targets.len(), healthy) {
                    (0, _) => row(
                        "waker target",
                        Verdict::Problem,
                        format!("{lb}: no target registered in the waker group: a sleeping preview's visitors would get the load balancer's 503 and nothing would wake it"),
                        fix,
                    ),
                    (n, 0) => row(
                        "waker target",
                        Verdict::Warning,
                        format!("{lb}: {n} target(s) registered, none healthy yet"),
                        &format!("the load balancer checks {WAKER_HEALTH_PATH} on the waker port; is previewd running with sleep.enabled?"),
                    ),
                    (n, h) => row(
                        "waker target",
                        Verdict::Ok,
                        format!("{lb}: {h} of {n} target(s) healthy"),
                        "",
                    ),
                }
            }
            Err(e) => {
                let mut c = denied_or(Op::DescribeTargetHealth, e, "waker target", fix);
                c.detail = format!("{lb}: {}", c.detail);
                c
            }
        });
    }
}

/// Whether the group is on `lb` (a target group serves one load balancer:
/// a rule of another cannot forward to it).
fn placement(lb: &str, arn: &str, g: &t::TargetGroup, fix: &str) -> Check {
    let on: Vec<&str> = g
        .load_balancer_arns()
        .iter()
        .filter_map(|a| a.split_once(":loadbalancer/").map(|(_, rest)| rest))
        .collect();
    let ip = g.target_type() == Some(&t::TargetTypeEnum::Ip);
    if !on.is_empty() && !on.contains(&lb) {
        return row(
            NAME,
            Verdict::Problem,
            format!(
                "{lb}: {arn} is on {}, not on {lb}: that load balancer's rules cannot forward to it",
                on.join(", ")
            ),
            fix,
        );
    }
    if !ip {
        return row(
            NAME,
            Verdict::Problem,
            format!(
                "{lb}: {arn} has target type {:?}, not ip: previewd runs on Fargate (awsvpc)",
                g.target_type().map(|t| t.as_str()).unwrap_or("?")
            ),
            fix,
        );
    }
    if on.is_empty() {
        return row(
            NAME,
            Verdict::Warning,
            format!("{lb}: {arn} is on no load balancer yet (no rule forwards to it)"),
            "the first sleeping preview's rule attaches it; the stack attaches it with a rule of its own so ECS can register previewd at once",
        );
    }
    let path = g.health_check_path().unwrap_or("/");
    if path != WAKER_HEALTH_PATH {
        return row(
            NAME,
            Verdict::Warning,
            format!("{lb}: {arn} health-checks {path}"),
            &format!("health-check {WAKER_HEALTH_PATH}: every other path of the waker answers 404"),
        );
    }
    row(NAME, Verdict::Ok, format!("{lb}: {arn}"), "")
}
