//! `previewd doctor`: checks a configuration against the live account
//! before the first preview, so the field's classic failures (a rerun
//! without `ModifyRule`, a task without its log group) show up as a row
//! with its fix instead of a failed deploy.

use crate::error::{self, Op};
use crate::{Aws, policy};
use previewd_core::CloudError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Worth knowing; a deploy still works.
    Warning,
    /// A deploy would break.
    Problem,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
    /// How to fix it (empty when OK).
    pub fix: String,
}

pub(crate) fn row(
    name: &'static str,
    verdict: Verdict,
    detail: impl Into<String>,
    fix: &str,
) -> Check {
    Check {
        name,
        verdict,
        detail: detail.into(),
        fix: fix.into(),
    }
}

/// What the doctor checks besides the adapters' own settings.
#[derive(Debug, Clone)]
pub struct DoctorInput {
    /// Where preview tasks run: every subnet and group must be in it.
    pub vpc_id: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// `naming.domain`: the hosted zone must cover it.
    pub domain: String,
    pub log_group_prefix: String,
    pub log_retention_days: i32,
    pub scope: policy::PolicyScope,
    /// The other projects (`[[projects]]`): each one's zone coverage and
    /// log groups are checked like the first's.
    pub other_projects: Vec<ProjectInput>,
    /// `sleep.waker_target_groups` when sleep is on (load balancer →
    /// target group ARN): each is checked; empty, no row.
    pub wakers: Vec<(String, String)>,
    /// The projects with access protection (`[access]`): every listener
    /// of the pool must then be HTTPS.
    pub protected_projects: Vec<String>,
}

/// What differs per project among the doctor's checks.
#[derive(Debug, Clone)]
pub struct ProjectInput {
    /// The repository, `owner/name`, named in each of its rows.
    pub project: String,
    pub domain: String,
    pub log_group_prefix: String,
    pub log_retention_days: i32,
}

impl Aws {
    /// Runs every check; never stops at the first problem.
    pub async fn doctor(&self, input: &DoctorInput) -> Vec<Check> {
        let mut out = Vec::new();
        let caller = self.check_identity(&mut out).await;
        self.check_cluster(&mut out).await;
        self.check_listener(input, &mut out).await;
        self.check_zone(input, &mut out).await;
        self.check_log_groups(input, &mut out).await;
        for p in &input.other_projects {
            let one = DoctorInput {
                domain: p.domain.clone(),
                log_group_prefix: p.log_group_prefix.clone(),
                log_retention_days: p.log_retention_days,
                other_projects: Vec::new(),
                wakers: Vec::new(),
                ..input.clone()
            };
            let mut rows = Vec::new();
            self.check_zone(&one, &mut rows).await;
            self.check_log_groups(&one, &mut rows).await;
            out.extend(rows.into_iter().map(|mut r| {
                r.detail = format!("project {}: {}", p.project, r.detail);
                r
            }));
        }
        self.check_wakers(&input.wakers, &mut out).await;
        self.check_roles(input, &mut out).await;
        self.check_ecr(input, &mut out).await;
        self.check_network(input, &mut out).await;
        match caller {
            Some(arn) => self.check_permissions(&arn, &mut out).await,
            None => out.push(row(
                "permissions",
                Verdict::Warning,
                "not simulated: the caller is unknown",
                "fix the credentials first",
            )),
        }
        out
    }

    async fn check_identity(&self, out: &mut Vec<Check>) -> Option<String> {
        let op = Op::GetCallerIdentity;
        match self.sts.get_caller_identity().send().await {
            Ok(me) => {
                let arn = me.arn().unwrap_or_default().to_owned();
                out.push(row(
                    "credentials",
                    Verdict::Ok,
                    format!("{arn} (account {})", me.account().unwrap_or("?")),
                    "",
                ));
                Some(arn)
            }
            Err(e) => {
                out.push(row(
                    "credentials",
                    Verdict::Problem,
                    error::map(op, e).to_string(),
                    "provide credentials through the standard chain (environment, profile, task role, web identity)",
                ));
                None
            }
        }
    }

    async fn check_cluster(&self, out: &mut Vec<Check>) {
        let op = Op::DescribeClusters;
        let cluster = &self.settings.cluster;
        let r = self.ecs.describe_clusters().clusters(cluster).send().await;
        out.push(match r {
            Ok(o) => match o.clusters().first().and_then(|c| c.status()) {
                Some("ACTIVE") => row(
                    "ECS cluster",
                    Verdict::Ok,
                    format!("{cluster} is ACTIVE"),
                    "",
                ),
                other => row(
                    "ECS cluster",
                    Verdict::Problem,
                    format!("{cluster}: {}", other.unwrap_or("not found")),
                    "create the cluster or fix cloud.cluster",
                ),
            },
            Err(e) => denied_or(op, e, "ECS cluster", "fix cloud.cluster"),
        });
    }

    /// One row per listener of the pool (`cloud.listeners`, or the one
    /// `cloud.listener_arn`).
    async fn check_listener(&self, input: &DoctorInput, out: &mut Vec<Check>) {
        let op = Op::DescribeListeners;
        let mut arns = self.settings.listener_arns.clone();
        if arns.is_empty() {
            arns.push(self.settings.listener_arn.clone());
        }
        let fix = "fix cloud.listeners (or cloud.listener_arn)";
        for arn in &arns {
            let r = self
                .elb
                .describe_listeners()
                .listener_arns(arn)
                .send()
                .await;
            let name = "ALB listener";
            let which = short_listener(arn);
            let fix = format!("{which}: {fix}");
            out.push(match r {
                Ok(o) => match o.listeners().first() {
                    Some(l) => {
                        let protocol = l.protocol().map(|p| p.as_str()).unwrap_or("?");
                        // Authenticate actions on a plain listener: every
                        // CreateRule would be refused.
                        if let Some(why) = previewd_core::access::plain_listener(
                            arn,
                            protocol,
                            &input.protected_projects,
                        ) {
                            out.push(row(name, Verdict::Problem, why, "put the pool on HTTPS listeners (cloud.listeners), or turn [access] off for these projects"));
                            continue;
                        }
                        let verdict = if protocol == "HTTPS" {
                            Verdict::Ok
                        } else {
                            Verdict::Warning
                        };
                        row(
                            name,
                            verdict,
                            format!("{which}: {protocol}:{} on {}", l.port().unwrap_or(0), l.load_balancer_arn().unwrap_or("?")),
                            if verdict == Verdict::Ok { "" } else { "previews are usually served on an HTTPS listener with a wildcard certificate" },
                        )
                    }
                    None => row(name, Verdict::Problem, format!("{which}: not found"), &fix),
                },
                Err(e) => denied_or(op, e, name, &fix),
            });
        }
    }

    async fn check_zone(&self, input: &DoctorInput, out: &mut Vec<Check>) {
        let op = Op::GetHostedZone;
        let id = &self.settings.hosted_zone_id;
        let r = self.route53.get_hosted_zone().id(id).send().await;
        out.push(match r {
            Ok(o) => {
                let name = o.hosted_zone().map(|z| z.name()).unwrap_or_default();
                let zone = name.trim_end_matches('.').to_ascii_lowercase();
                let domain = input.domain.to_ascii_lowercase();
                if domain == zone || domain.ends_with(&format!(".{zone}")) {
                    row(
                        "hosted zone",
                        Verdict::Ok,
                        format!("{id} is {zone}, covering {domain}"),
                        "",
                    )
                } else {
                    row(
                        "hosted zone",
                        Verdict::Problem,
                        format!("{id} is {zone}, which does not cover naming.domain {domain}"),
                        "point cloud.hosted_zone_id at the zone of naming.domain",
                    )
                }
            }
            Err(e) => denied_or(op, e, "hosted zone", "fix cloud.hosted_zone_id"),
        });
    }

    async fn check_network(&self, input: &DoctorInput, out: &mut Vec<Check>) {
        let op = Op::DescribeSubnets;
        let r = self
            .ec2
            .describe_subnets()
            .set_subnet_ids(Some(input.subnets.clone()))
            .send()
            .await;
        out.push(match r {
            Ok(o) => {
                let elsewhere: Vec<String> = o
                    .subnets()
                    .iter()
                    .filter(|s| s.vpc_id() != Some(input.vpc_id.as_str()))
                    .filter_map(|s| s.subnet_id().map(str::to_owned))
                    .collect();
                if elsewhere.is_empty() {
                    row(
                        "subnets",
                        Verdict::Ok,
                        format!("{} in {}", input.subnets.join(", "), input.vpc_id),
                        "",
                    )
                } else {
                    row(
                        "subnets",
                        Verdict::Problem,
                        format!("not in {}: {}", input.vpc_id, elsewhere.join(", ")),
                        "list subnets of cloud.vpc_id in cloud.subnets",
                    )
                }
            }
            Err(e) => denied_or(
                op,
                e,
                "subnets",
                "fix cloud.subnets (one of them does not exist)",
            ),
        });
        let op = Op::DescribeSecurityGroups;
        let r = self
            .ec2
            .describe_security_groups()
            .set_group_ids(Some(input.security_groups.clone()))
            .send()
            .await;
        out.push(match r {
            Ok(o) => {
                let elsewhere: Vec<String> = o
                    .security_groups()
                    .iter()
                    .filter(|g| g.vpc_id() != Some(input.vpc_id.as_str()))
                    .filter_map(|g| g.group_id().map(str::to_owned))
                    .collect();
                if elsewhere.is_empty() {
                    row(
                        "security groups",
                        Verdict::Ok,
                        format!("{} in {}", input.security_groups.join(", "), input.vpc_id),
                        "",
                    )
                } else {
                    row(
                        "security groups",
                        Verdict::Problem,
                        format!("not in {}: {}", input.vpc_id, elsewhere.join(", ")),
                        "list security groups of cloud.vpc_id in cloud.security_groups",
                    )
                }
            }
            Err(e) => denied_or(
                op,
                e,
                "security groups",
                "fix cloud.security_groups (one of them does not exist)",
            ),
        });
    }

    async fn check_log_groups(&self, input: &DoctorInput, out: &mut Vec<Check>) {
        use previewd_core::ports::Logs;
        match self.log_groups(&input.log_group_prefix).await {
            Ok(groups) => {
                let off = groups
                    .iter()
                    .filter(|g| g.retention_days != Some(input.log_retention_days))
                    .count();
                out.push(row(
                    "log groups",
                    if off == 0 {
                        Verdict::Ok
                    } else {
                        Verdict::Warning
                    },
                    format!(
                        "{} under {}, {off} with a retention other than {} days",
                        groups.len(),
                        input.log_group_prefix,
                        input.log_retention_days
                    ),
                    if off == 0 {
                        ""
                    } else {
                        "previewd sets the retention of its own groups on their next pass"
                    },
                ));
            }
            Err(e) => out.push(problem_row("log groups", e, "allow logs:DescribeLogGroups")),
        }
    }
}

/// A denied check names the action to allow; anything else is a problem
/// with the given fix.
pub(crate) fn denied_or<E>(
    op: Op,
    e: aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
    name: &'static str,
    fix: &str,
) -> Check
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    problem_row(name, error::map(op, e), fix)
}

pub(crate) fn problem_row(name: &'static str, e: CloudError, fix: &str) -> Check {
    let fix = match &e {
        CloudError::AccessDenied { action, .. } => format!("allow {action}"),
        _ => fix.to_owned(),
    };
    Check {
        name,
        verdict: Verdict::Problem,
        detail: e.to_string(),
        fix,
    }
}

/// The report as a table; `true` when nothing would break a deploy.
pub fn table(checks: &[Check]) -> (String, bool) {
    let mut s = format!("{:<28} {:<8} {}\n", "CHECK", "RESULT", "DETAIL / FIX");
    for c in checks {
        let verdict = match c.verdict {
            Verdict::Ok => "OK",
            Verdict::Warning => "WARNING",
            Verdict::Problem => "PROBLEM",
        };
        s.push_str(&format!("{:<28} {:<8} {}\n", c.name, verdict, c.detail));
        if !c.fix.is_empty() {
            s.push_str(&format!("{:<28} {:<8} fix: {}\n", "", "", c.fix));
        }
    }
    let ok = checks.iter().all(|c| c.verdict != Verdict::Problem);
    (s, ok)
}

/// `app/<alb>/<id>/<id>` of a listener ARN: enough to tell them apart.
fn short_listener(arn: &str) -> &str {
    arn.split_once(":listener/").map_or(arn, |(_, rest)| rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_fails_the_report_and_a_warning_does_not() {
        let warn = row("x", Verdict::Warning, "w", "f");
        assert!(table(std::slice::from_ref(&warn)).1);
        let bad = row("y", Verdict::Problem, "p", "fix it");
        let (text, ok) = table(&[warn, bad]);
        assert!(!ok);
        assert!(text.contains("PROBLEM"));
        assert!(text.contains("fix: fix it"));
    }
}
