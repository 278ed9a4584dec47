//! The least-privilege IAM policy for a configuration, generated from the
//! registry of operations the adapters call (`previewd_core::operations`):
//! each operation names its IAM scope there, so a new call cannot ship
//! without its permission.

use previewd_core::naming;
use previewd_core::operations::{IamScope as Scope, Permission, required_permissions};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What the policy is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyScope {
    /// The pool's first listener; region, account, partition and load
    /// balancer are read from its ARN.
    pub listener_arn: String,
    /// The other listeners of the pool (`cloud.listeners` after the
    /// first); each must be an ALB listener ARN in the same account and
    /// Region. The policy covers every one.
    pub more_listeners: Vec<String>,
    pub cluster: String,
    /// Starts every ECS, target-group and log-group name (`naming.prefix`).
    pub prefix: String,
    /// The naming prefixes of the other projects (`[[projects]]`), each
    /// granted like `prefix`; empty with one project.
    pub other_prefixes: Vec<String>,
    pub hosted_zone_id: String,
    /// Roles task definitions name; `iam:PassRole` is granted on these only.
    pub pass_roles: Vec<String>,
    /// The ECR repository preview images are pushed to, if any.
    pub ecr_repository: Option<String>,
}

/// Every IAM action the controller needs: each of its operations and
/// what they also need (tag on create, pass a role), sorted.
pub fn required_actions() -> Vec<String> {
    required_permissions()
        .iter()
        .map(Permission::action)
        .collect()
}

/// A configuration the policy cannot be written for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "cloud.listeners: {0:?} is not an ALB listener ARN in the account and Region of the first"
    )]
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
    // Every listener of the pool, each with its rules.
    let mut listeners = vec![(s.listener_arn.clone(), path.to_owned())];
    for other in &s.more_listeners {
        let p: Vec<&str> = other.split(':').collect();
        let other_path = p.get(5).and_then(|p| p.strip_prefix("listener/app/"));
        match other_path {
            Some(op) if p.len() == 6 && p[1..5] == parts[1..5] => {
                listeners.push((other.clone(), op.to_owned()));
            }
            _ => return Err(PolicyError::Listener(other.clone())),
        }
    }
    // path = NAME/LB_ID/LISTENER_ID
    let arn = |service: &str, resource: String| {
        format!("arn:{partition}:{service}:{region}:{account}:{resource}")
    };
    let cluster_arn = arn("ecs", format!("cluster/{}", s.cluster));
    let mut prefixes: Vec<&str> = std::iter::once(s.prefix.as_str())
        .chain(s.other_prefixes.iter().map(String::as_str))
        .collect();
    prefixes.sort_unstable();
    prefixes.dedup();
    // One resource a prefix: `make(family prefix, log-group prefix)`.
    let each = |make: &dyn Fn(&str, &str) -> Vec<String>| -> Value {
        let all: Vec<String> = prefixes
            .iter()
            .flat_map(|p| make(&naming::family_prefix(p), &naming::log_group_prefix(p)))
            .collect();
        match all.as_slice() {
            [one] => json!(one),
            _ => json!(all),
        }
    };

    let mut by_scope: BTreeMap<Scope, Vec<String>> = BTreeMap::new();
    for p in required_permissions() {
        by_scope.entry(p.scope).or_default().push(p.action());
    }
    let mut statements = Vec::new();
    for (sc, actions) in by_scope {
        let (sid, resource, condition) = match sc {
            // TagResource also tags task definitions as they are registered.
            Scope::EcsServices => (
                "EcsPreviewServices",
                each(&|prefix, _| {
                    vec![
                        arn("ecs", format!("service/{}/{prefix}*", s.cluster)),
                        arn("ecs", format!("task-definition/{prefix}*:*")),
                    ]
                }),
                None,
            ),
            Scope::EcsInCluster => (
                "EcsReadsInThePreviewCluster",
                json!("*"),
                Some(json!({"ArnEquals": {"ecs:cluster": cluster_arn}})),
            ),
            Scope::EcsTaskDefinitions => ("EcsTaskDefinitions", json!("*"), None),
            Scope::ElbRules => {
                let mut resources = Vec::new();
                for (listener, path) in &listeners {
                    resources.push(json!(listener.clone()));
                    resources.push(json!(arn(
                        "elasticloadbalancing",
                        format!("listener-rule/app/{path}/*")
                    )));
                }
                for p in &prefixes {
                    let prefix = naming::family_prefix(p);
                    resources.push(json!(arn(
                        "elasticloadbalancing",
                        format!("targetgroup/{prefix}*/*")
                    )));
                }
                ("ElbRulesOnTheSharedListener", json!(resources), None)
            }
            Scope::ElbTargetGroups => (
                "ElbPreviewTargetGroups",
                each(&|prefix, _| {
                    vec![arn(
                        "elasticloadbalancing",
                        format!("targetgroup/{prefix}*/*"),
                    )]
                }),
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
                each(&|_, log_groups| {
                    vec![
                        arn("logs", format!("log-group:{log_groups}*")),
                        arn("logs", format!("log-group:{log_groups}*:*")),
                    ]
                }),
                None,
            ),
            Scope::LogReads => (
                "LogsDescribe",
                json!(arn("logs", "log-group:*".into())),
                None,
            ),
            // Whether a preview's image is pushed yet: in the repository
            // previews are pushed to, or (none configured) any of the
            // account's, since `container.image` may name any.
            Scope::EcrImages => (
                "ReadPreviewImages",
                json!(arn(
                    "ecr",
                    format!("repository/{}", s.ecr_repository.as_deref().unwrap_or("*"))
                )),
                None,
            ),
            // The load balancer's request counts, for the idle check
            // (`sleep`): GetMetricData takes no resource in IAM.
            Scope::MetricReads => ("CloudWatchRequestCounts", json!("*"), None),
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
                "ecr:DescribeImages",
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
            more_listeners: Vec::new(),
            cluster: "previews".into(),
            prefix: "pv".into(),
            other_prefixes: Vec::new(),
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

    fn actions_of(p: &Value) -> std::collections::BTreeSet<String> {
        p["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|st| !st["Sid"].as_str().unwrap().starts_with("Ecr"))
            .flat_map(|st| st["Action"].as_array().unwrap().iter())
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    }

    /// Least privilege: the policy grants the registry's actions and no
    /// others (but the ECR push of a configured repository).
    #[test]
    fn the_policy_grants_exactly_the_registrys_actions() {
        let want: std::collections::BTreeSet<String> = required_actions().into_iter().collect();
        assert_eq!(actions_of(&policy(&example()).unwrap()), want);
        let mut no_roles = example();
        no_roles.pass_roles.clear();
        no_roles.ecr_repository = None;
        let mut without_pass_role = want.clone();
        without_pass_role.remove("iam:PassRole");
        assert_eq!(actions_of(&policy(&no_roles).unwrap()), without_pass_role);
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
    fn every_listener_of_the_pool_is_covered() {
        let mut s = example();
        s.more_listeners = vec![
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/previews-2/aaaa/bbbb"
                .into(),
        ];
        let p = policy(&s).unwrap();
        let rules = p["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|st| st["Sid"] == "ElbRulesOnTheSharedListener")
            .unwrap()["Resource"]
            .to_string();
        for scoped in [
            "listener/app/previews/50dc6c495c0c9188/f2f7dc8efc522ab2\"",
            "listener-rule/app/previews/50dc6c495c0c9188/f2f7dc8efc522ab2/*",
            "listener/app/previews-2/aaaa/bbbb\"",
            "listener-rule/app/previews-2/aaaa/bbbb/*",
        ] {
            assert!(rules.contains(scoped), "missing {scoped} in {rules}");
        }
        // Another account's or Region's listener is not one previewd's
        // policy can be written for.
        for bad in [
            "arn:aws:elasticloadbalancing:eu-west-2:123456789012:listener/app/x/1/1",
            "arn:aws:elasticloadbalancing:eu-west-1:999999999999:listener/app/x/1/1",
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/x/1",
        ] {
            s.more_listeners = vec![bad.into()];
            assert_eq!(policy(&s), Err(PolicyError::Listener(bad.into())));
        }
    }

    #[test]
    fn a_listener_that_is_not_an_alb_listener_is_refused() {
        let mut s = example();
        s.listener_arn = "arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/x/1".into();
        assert!(matches!(policy(&s), Err(PolicyError::Listener(_))));
    }
}
