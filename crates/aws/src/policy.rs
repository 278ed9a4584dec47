//! The least-privilege IAM policy for a configuration, generated from the
//! same table of operations the adapters call (`calls::OPERATIONS`), so a
//! new call cannot ship without its permission.

use crate::calls::OPERATIONS;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What the policy is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyScope {
    /// The shared listener; region, account, partition and load balancer
    /// are read from its ARN.
    pub listener_arn: String,
    pub cluster: String,
    /// Starts every ECS, target-group and log-group name (`naming.prefix`).
    pub prefix: String,
    pub hosted_zone_id: String,
    /// Roles task definitions name; `iam:PassRole` is granted on these only.
    pub pass_roles: Vec<String>,
    /// The ECR repository preview images are pushed to, if any.
    pub ecr_repository: Option<String>,
}

/// Where an action can be scoped, as the Service Authorization Reference
/// allows for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    EcsServices,
    EcsInCluster,
    /// Task-definition actions take no resource in IAM.
    EcsTaskDefinitions,
    ElbRules,
    ElbTargetGroups,
    /// ELBv2 Describe* take no resource in IAM.
    ElbReads,
    HostedZone,
    LogGroups,
    LogReads,
    PassRole,
}

fn scope(action: &str) -> Option<Scope> {
    use Scope::*;
    Some(match action {
        "ecs:CreateService"
        | "ecs:UpdateService"
        | "ecs:DeleteService"
        | "ecs:DescribeServices"
        | "ecs:TagResource" => EcsServices,
        "ecs:ListServices" | "ecs:ListTasks" | "ecs:DescribeTasks" => EcsInCluster,
        "ecs:RegisterTaskDefinition"
        | "ecs:DeregisterTaskDefinition"
        | "ecs:DescribeTaskDefinition"
        | "ecs:ListTaskDefinitions"
        | "ecs:ListTaskDefinitionFamilies" => EcsTaskDefinitions,
        "elasticloadbalancing:CreateRule"
        | "elasticloadbalancing:ModifyRule"
        | "elasticloadbalancing:SetRulePriorities"
        | "elasticloadbalancing:DeleteRule" => ElbRules,
        "elasticloadbalancing:CreateTargetGroup" | "elasticloadbalancing:DeleteTargetGroup" => {
            ElbTargetGroups
        }
        // Tags go on rules and target groups when they are created.
        "elasticloadbalancing:AddTags" => ElbRules,
        "elasticloadbalancing:DescribeListeners"
        | "elasticloadbalancing:DescribeRules"
        | "elasticloadbalancing:DescribeTags"
        | "elasticloadbalancing:DescribeTargetGroups"
        | "elasticloadbalancing:DescribeTargetHealth" => ElbReads,
        "route53:ListResourceRecordSets" | "route53:ChangeResourceRecordSets" => HostedZone,
        "logs:CreateLogGroup"
        | "logs:PutRetentionPolicy"
        | "logs:DeleteLogGroup"
        | "logs:TagResource"
        | "logs:ListTagsForResource" => LogGroups,
        "logs:DescribeLogGroups" => LogReads,
        "iam:PassRole" => PassRole,
        _ => return None,
    })
}

/// Every IAM action the adapters need: each operation and what it also
/// needs (tag on create, pass a role).
pub fn required_actions() -> Vec<String> {
    let mut out: Vec<String> = OPERATIONS
        .iter()
        .flat_map(|u| {
            std::iter::once(u.op.action()).chain(u.also_needs.iter().map(|a| a.to_string()))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// An action the table lists but the policy cannot place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{0} has no resource scope in policy.rs; add it there")]
    Unscoped(String),
    #[error("cloud.listener_arn: {0:?} is not an ALB listener ARN")]
    Listener(String),
}

/// The policy document for `s`.
pub fn policy(s: &PolicyScope) -> Result<Value, PolicyError> {
    let parts: Vec<&str> = s.listener_arn.split(':').collect();
    let listener_path = parts.get(5).and_then(|p| p.strip_prefix("listener/app/"));
    let (Some(path), true) = (listener_path, parts.len() == 6) else {
        return Err(PolicyError::Listener(s.listener_arn.clone()));
    };
    let (partition, region, account) = (parts[1], parts[3], parts[4]);
    // path = NAME/LB_ID/LISTENER_ID
    let arn = |service: &str, resource: String| {
        format!("arn:{partition}:{service}:{region}:{account}:{resource}")
    };
    let cluster_arn = arn("ecs", format!("cluster/{}", s.cluster));
    let prefix = format!("{}-", s.prefix);

    let mut by_scope: BTreeMap<Scope, Vec<String>> = BTreeMap::new();
    for action in required_actions() {
        let sc = scope(&action).ok_or_else(|| PolicyError::Unscoped(action.clone()))?;
        by_scope.entry(sc).or_default().push(action);
    }
    let mut statements = Vec::new();
    for (sc, actions) in by_scope {
        let (sid, resource, condition) = match sc {
            // TagResource also tags task definitions as they are registered.
            Scope::EcsServices => (
                "EcsPreviewServices",
                json!([
                    arn("ecs", format!("service/{}/{prefix}*", s.cluster)),
                    arn("ecs", format!("task-definition/{prefix}*:*")),
                ]),
                None,
            ),
            Scope::EcsInCluster => (
                "EcsReadsInThePreviewCluster",
                json!("*"),
                Some(json!({"ArnEquals": {"ecs:cluster": cluster_arn}})),
            ),
            Scope::EcsTaskDefinitions => ("EcsTaskDefinitions", json!("*"), None),
            Scope::ElbRules => (
                "ElbRulesOnTheSharedListener",
                json!([
                    s.listener_arn.clone(),
                    arn(
                        "elasticloadbalancing",
                        format!("listener-rule/app/{path}/*")
                    ),
                    arn("elasticloadbalancing", format!("targetgroup/{prefix}*/*")),
                ]),
                None,
            ),
            Scope::ElbTargetGroups => (
                "ElbPreviewTargetGroups",
                json!(arn(
                    "elasticloadbalancing",
                    format!("targetgroup/{prefix}*/*")
                )),
                None,
            ),
            Scope::ElbReads => ("ElbDescribe", json!("*"), None),
            Scope::HostedZone => (
                "Route53PreviewZone",
                json!(format!(
                    "arn:{partition}:route53:::hostedzone/{}",
                    s.hosted_zone_id
                )),
                None,
            ),
            Scope::LogGroups => (
                "LogsPreviewGroups",
                json!([
                    arn("logs", format!("log-group:/ecs/{prefix}*")),
                    arn("logs", format!("log-group:/ecs/{prefix}*:*")),
                ]),
                None,
            ),
            Scope::LogReads => (
                "LogsDescribe",
                json!(arn("logs", "log-group:*".into())),
                None,
            ),
            Scope::PassRole => {
                if s.pass_roles.is_empty() {
                    continue;
                }
                (
                    "PassOnlyThePreviewRolesToEcsTasks",
                    json!(s.pass_roles),
                    Some(
                        json!({"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}),
                    ),
                )
            }
        };
        let mut st =
            json!({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource});
        if let Some(c) = condition {
            st["Condition"] = c;
        }
        statements.push(st);
    }
    if let Some(repo) = &s.ecr_repository {
        statements.push(json!({
            "Sid": "EcrLogin",
            "Effect": "Allow",
            "Action": ["ecr:GetAuthorizationToken"],
            "Resource": "*",
        }));
        statements.push(json!({
            "Sid": "EcrPushPreviewImages",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:CompleteLayerUpload",
                "ecr:InitiateLayerUpload",
                "ecr:PutImage",
                "ecr:UploadLayerPart",
            ],
            "Resource": arn("ecr", format!("repository/{repo}")),
        }));
    }
    Ok(json!({"Version": "2012-10-17", "Statement": statements}))
}

/// Whether `policy` allows `action` by name (Allow statements, exact
/// names; the generated policy uses no wildcards in actions).
pub fn grants(policy: &Value, action: &str) -> bool {
    policy["Statement"].as_array().is_some_and(|sts| {
        sts.iter().any(|st| {
            st["Effect"] == "Allow"
                && st["Action"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == action))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> PolicyScope {
        PolicyScope {
            listener_arn: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/previews/50dc6c495c0c9188/f2f7dc8efc522ab2".into(),
            cluster: "previews".into(),
            prefix: "pv".into(),
            hosted_zone_id: "Z0123456789ABC".into(),
            pass_roles: vec!["arn:aws:iam::123456789012:role/preview-task-execution".into()],
            ecr_repository: Some("previews".into()),
        }
    }

    /// The IAM coverage test: the code cannot call what the policy does
    /// not grant (every call passes the table, see `calls::run`).
    #[test]
    fn the_policy_grants_every_operation_the_adapters_call() {
        let p = policy(&example()).unwrap();
        for action in required_actions() {
            assert!(grants(&p, &action), "the policy does not grant {action}");
        }
        for needed in [
            "elasticloadbalancing:ModifyRule",
            "elasticloadbalancing:SetRulePriorities",
            "elasticloadbalancing:DeleteRule",
            "elasticloadbalancing:DeleteTargetGroup",
        ] {
            assert!(grants(&p, needed), "{needed}");
        }
    }

    #[test]
    fn no_statement_allows_every_action_and_pass_role_is_conditioned() {
        let p = policy(&example()).unwrap();
        for st in p["Statement"].as_array().unwrap() {
            for a in st["Action"].as_array().unwrap() {
                let a = a.as_str().unwrap();
                assert!(!a.contains('*'), "wildcard action {a}");
            }
            if st["Action"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "iam:PassRole")
            {
                assert_eq!(
                    st["Condition"]["StringEquals"]["iam:PassedToService"],
                    "ecs-tasks.amazonaws.com"
                );
                assert_eq!(
                    st["Resource"][0],
                    "arn:aws:iam::123456789012:role/preview-task-execution"
                );
            }
        }
    }

    #[test]
    fn resources_are_scoped_to_the_cluster_zone_listener_and_prefix() {
        let text = policy(&example()).unwrap().to_string();
        for scoped in [
            "arn:aws:ecs:eu-west-1:123456789012:service/previews/pv-*",
            "arn:aws:route53:::hostedzone/Z0123456789ABC",
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/previews/50dc6c495c0c9188/f2f7dc8efc522ab2/*",
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pv-*/*",
            "arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/pv-*",
            "arn:aws:ecr:eu-west-1:123456789012:repository/previews",
        ] {
            assert!(text.contains(scoped), "missing {scoped}");
        }
    }

    #[test]
    fn a_listener_that_is_not_an_alb_listener_is_refused() {
        let mut s = example();
        s.listener_arn = "arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/x/1".into();
        assert!(matches!(policy(&s), Err(PolicyError::Listener(_))));
    }
}
