//! `previewd doctor`: checks a configuration against the live account
//! before the first preview, so the field's classic failures (a rerun
//! without `ModifyRule`, a task without its log group) show up as a row
//! with its fix instead of a failed deploy.

use crate::error::{self, Op};
use crate::{Aws, policy};
use previewd_core::CloudError;

/// Operations only the doctor calls (with the operator's credentials);
/// the daemon's policy does not need them.
pub const DOCTOR_OPERATIONS: &[Op] = &[
    Op::new("sts", "GetCallerIdentity"),
    Op::new("ecs", "DescribeClusters"),
    Op::new("route53", "GetHostedZone"),
    Op::new("iam", "GetRole"),
    Op::new("iam", "SimulatePrincipalPolicy"),
    Op::new("ecr", "DescribeRepositories"),
    Op::new("ecr", "GetLifecyclePolicy"),
];

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

fn row(name: &'static str, verdict: Verdict, detail: impl Into<String>, fix: &str) -> Check {
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
    /// `naming.domain`: the hosted zone must cover it.
    pub domain: String,
    pub log_group_prefix: String,
    pub log_retention_days: i32,
    pub scope: policy::PolicyScope,
}

const SIMULATE: Op = Op::new("iam", "SimulatePrincipalPolicy");

impl Aws {
    /// Runs every check; never stops at the first problem.
    pub async fn doctor(&self, input: &DoctorInput) -> Vec<Check> {
        let mut out = Vec::new();
        let caller = self.check_identity(&mut out).await;
        self.check_cluster(&mut out).await;
        self.check_listener(&mut out).await;
        self.check_zone(input, &mut out).await;
        self.check_log_groups(input, &mut out).await;
        self.check_roles(input, &mut out).await;
        self.check_ecr(input, &mut out).await;
        out.push(row(
            "subnets and security groups",
            Verdict::Warning,
            "not checked: this build has no EC2 client",
            "check that cloud.subnets and cloud.security_groups exist in cloud.vpc_id",
        ));
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
        let op = Op::new("sts", "GetCallerIdentity");
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
        let op = Op::new("ecs", "DescribeClusters");
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

    async fn check_listener(&self, out: &mut Vec<Check>) {
        let op = Op::new("elasticloadbalancing", "DescribeListeners");
        let arn = &self.settings.listener_arn;
        let r = self
            .elb
            .describe_listeners()
            .listener_arns(arn)
            .send()
            .await;
        out.push(match r {
            Ok(o) => match o.listeners().first() {
                Some(l) => {
                    let protocol = l.protocol().map(|p| p.as_str()).unwrap_or("?");
                    let verdict = if protocol == "HTTPS" {
                        Verdict::Ok
                    } else {
                        Verdict::Warning
                    };
                    row(
                        "ALB listener",
                        verdict,
                        format!("{protocol}:{} on {}", l.port().unwrap_or(0), l.load_balancer_arn().unwrap_or("?")),
                        if verdict == Verdict::Ok { "" } else { "previews are usually served on an HTTPS listener with a wildcard certificate" },
                    )
                }
                None => row("ALB listener", Verdict::Problem, "not found", "fix cloud.listener_arn"),
            },
            Err(e) => denied_or(op, e, "ALB listener", "fix cloud.listener_arn"),
        });
    }

    async fn check_zone(&self, input: &DoctorInput, out: &mut Vec<Check>) {
        let op = Op::new("route53", "GetHostedZone");
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

    async fn check_roles(&self, input: &DoctorInput, out: &mut Vec<Check>) {
        let op = Op::new("iam", "GetRole");
        for arn in &input.scope.pass_roles {
            let name = arn.rsplit('/').next().unwrap_or(arn);
            let r = self.iam.get_role().role_name(name).send().await;
            out.push(match r {
                Ok(o) => {
                    let trust = o
                        .role()
                        .and_then(|r| r.assume_role_policy_document())
                        .map(percent_decode)
                        .unwrap_or_default();
                    if trust.contains("ecs-tasks.amazonaws.com") {
                        row(
                            "task role",
                            Verdict::Ok,
                            format!("{arn} trusts ecs-tasks"),
                            "",
                        )
                    } else {
                        row(
                            "task role",
                            Verdict::Problem,
                            format!("{arn} does not trust ecs-tasks.amazonaws.com"),
                            "add ecs-tasks.amazonaws.com to the role's trust policy",
                        )
                    }
                }
                Err(e) => denied_or(
                    op,
                    e,
                    "task role",
                    "create the role or fix container.*_role_arn",
                ),
            });
        }
    }

    async fn check_ecr(&self, input: &DoctorInput, out: &mut Vec<Check>) {
        let Some(repo) = &input.scope.ecr_repository else {
            return;
        };
        let op = Op::new("ecr", "GetLifecyclePolicy");
        let r = self
            .ecr
            .get_lifecycle_policy()
            .repository_name(repo)
            .send()
            .await;
        out.push(match r {
            Ok(_) => row(
                "ECR repository",
                Verdict::Ok,
                format!("{repo} has a lifecycle policy"),
                "",
            ),
            Err(e) => match error::map(op, e) {
                CloudError::NotFound(m) if m.contains("LifecyclePolicyNotFound") => row(
                    "ECR repository",
                    Verdict::Warning,
                    format!("{repo} has no lifecycle policy: preview images pile up"),
                    "add a lifecycle policy that expires old preview images",
                ),
                CloudError::NotFound(m) => row(
                    "ECR repository",
                    Verdict::Problem,
                    m,
                    "create the repository or fix cloud.ecr_repository",
                ),
                other => problem_row("ECR repository", other, "allow ecr:GetLifecyclePolicy"),
            },
        });
    }

    /// Every action of the generated policy, simulated for the caller.
    async fn check_permissions(&self, caller: &str, out: &mut Vec<Check>) {
        let actions = policy::required_actions();
        let source = role_of(caller);
        let r = self
            .iam
            .simulate_principal_policy()
            .policy_source_arn(&source)
            .set_action_names(Some(actions.clone()))
            .send()
            .await;
        out.push(match r {
            Ok(o) => {
                let denied: Vec<&str> = o
                    .evaluation_results()
                    .iter()
                    .filter(|e| e.eval_decision().as_str() != "allowed")
                    .map(|e| e.eval_action_name())
                    .collect();
                if denied.is_empty() {
                    row("permissions", Verdict::Ok, format!("all {} actions allowed for {source}", actions.len()), "")
                } else {
                    row(
                        "permissions",
                        Verdict::Problem,
                        format!("denied: {}", denied.join(", ")),
                        "attach the policy `previewd iam-policy` prints",
                    )
                }
            }
            Err(e) => match error::map(SIMULATE, e) {
                CloudError::AccessDenied { .. } => row(
                    "permissions",
                    Verdict::Warning,
                    "not simulated: this identity may not call iam:SimulatePrincipalPolicy",
                    "allow iam:SimulatePrincipalPolicy to check, or compare with `previewd iam-policy` by hand",
                ),
                other => row(
                    "permissions",
                    Verdict::Warning,
                    format!("not simulated: the endpoint does not support IAM policy simulation ({other})"),
                    "compare the identity's policy with `previewd iam-policy` by hand",
                ),
            },
        });
    }
}

/// A denied check names the action to allow; anything else is a problem
/// with the given fix.
fn denied_or<E>(
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

fn problem_row(name: &'static str, e: CloudError, fix: &str) -> Check {
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

/// SimulatePrincipalPolicy takes a user or role, not an assumed-role
/// session: `arn:aws:sts::1:assumed-role/NAME/session` → the role.
fn role_of(caller: &str) -> String {
    match caller.split_once(":assumed-role/") {
        Some((head, rest)) => {
            let name = rest.split('/').next().unwrap_or(rest);
            format!("{}:role/{name}", head.replace(":sts:", ":iam:"))
        }
        None => caller.to_owned(),
    }
}

/// IAM returns policy documents URL-encoded.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assumed_role_session_is_simulated_as_its_role() {
        assert_eq!(
            role_of("arn:aws:sts::123456789012:assumed-role/previewd/i-0abc"),
            "arn:aws:iam::123456789012:role/previewd"
        );
        assert_eq!(
            role_of("arn:aws:iam::123456789012:user/ci"),
            "arn:aws:iam::123456789012:user/ci"
        );
    }

    #[test]
    fn trust_policies_are_decoded() {
        assert_eq!(
            percent_decode("%7B%22Service%22%3A%22ecs-tasks.amazonaws.com%22%7D"),
            r#"{"Service":"ecs-tasks.amazonaws.com"}"#
        );
    }

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
