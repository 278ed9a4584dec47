//! What previewd sees in AWS, in its own words. Cloud adapters fill these;
//! `plan()` reads them.

use crate::tags::Tags;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedLogGroup {
    pub name: String,
    pub retention_days: Option<i32>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedTaskDefinition {
    pub arn: String,
    pub family: String,
    pub revision: i64,
    pub tags: Tags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RolloutState {
    InProgress,
    Completed,
    Failed,
}

/// One ECS deployment of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub primary: bool,
    pub task_definition: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub rollout_state: RolloutState,
    pub rollout_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedService {
    pub name: String,
    pub arn: String,
    /// `ACTIVE`, `DRAINING` or `INACTIVE`; only ACTIVE counts as existing.
    pub status: String,
    pub task_definition: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub target_group_arn: Option<String>,
    pub deployments: Vec<Deployment>,
    pub tags: Tags,
}

impl ObservedService {
    pub fn primary(&self) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.primary)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedTargetGroup {
    pub arn: String,
    pub name: String,
    pub port: u16,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedRule {
    pub arn: String,
    /// `None` for the listener's default rule.
    pub priority: Option<i32>,
    pub hosts: Vec<String>,
    pub target_group_arn: Option<String>,
    pub tags: Tags,
}

/// Everything on the shared listener, and how full its load balancer is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerState {
    pub rules: Vec<ObservedRule>,
    /// Target groups attached to the load balancer (hard limit 100).
    pub alb_target_groups: usize,
    /// Non-default rules on the load balancer (quota, default 100).
    pub alb_rules: usize,
    /// The load balancer's target group limit when it is not AWS's fixed
    /// 100: only the simulator, with its quota raised for a benchmark,
    /// reports one. `None` means [`crate::plan::MAX_TARGET_GROUPS_PER_ALB`].
    #[serde(default)]
    pub target_group_limit: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TargetHealth {
    pub healthy: u32,
    pub unhealthy: u32,
    pub initial: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RecordType {
    A,
    Txt,
    Cname,
}

/// A Route53 record set; alias records carry `alias_target`, others values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    /// Fully qualified, without the trailing dot.
    pub name: String,
    pub kind: RecordType,
    pub ttl: Option<i64>,
    pub values: Vec<String>,
    pub alias_target: Option<AliasTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasTarget {
    pub dns_name: String,
    pub hosted_zone_id: String,
}
