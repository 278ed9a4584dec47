//! The doctor's IAM and ECR checks: the task roles' trust, the image
//! repository's lifecycle, and the policy simulated for the caller.

use crate::doctor::{Check, DoctorInput, Verdict, denied_or, problem_row, row};
use crate::error::{self, Op};
use crate::{Aws, policy};
use previewd_core::CloudError;

impl Aws {
    pub(crate) async fn check_roles(&self, input: &DoctorInput, out: &mut Vec<Check>) {
        let op = Op::GetRole;
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

    pub(crate) async fn check_ecr(&self, input: &DoctorInput, out: &mut Vec<Check>) {
        let Some(repo) = &input.scope.ecr_repository else {
            return;
        };
        let op = Op::GetLifecyclePolicy;
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
    pub(crate) async fn check_permissions(&self, caller: &str, out: &mut Vec<Check>) {
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
            Err(e) => match error::map(Op::SimulatePrincipalPolicy, e) {
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
}
