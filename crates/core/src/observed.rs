//! What previewd sees in AWS, in its own words. Cloud adapters fill these;
//! `plan()` reads them.

use crate::tags::Tags;
use serde::{Deserialize, Serialize};
use std::fmt;

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
    /// ECS's id for it (`ecs-svc/…`), which is the `startedBy` of every
    /// task it launches: a stopped task of an earlier deployment says
    /// nothing about this one.
    #[serde(default)]
    pub id: String,
    pub primary: bool,
    pub task_definition: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub rollout_state: RolloutState,
    pub rollout_reason: Option<String>,
}

/// An ECS service's `status`, spelled as ECS spells it (`ACTIVE`, ...).
///
/// # Caveats
/// ECS may add a status; it arrives as [`ServiceStatus::Other`] with its
/// spelling kept, and counts as neither active nor inactive (as an
/// unknown string did), so a pass goes on rather than failing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ServiceStatus {
    Active,
    Draining,
    Inactive,
    /// A status this version does not know, as ECS sent it.
    Other(String),
}

impl ServiceStatus {
    pub fn as_str(&self) -> &str {
        match self {
            ServiceStatus::Active => "ACTIVE",
            ServiceStatus::Draining => "DRAINING",
            ServiceStatus::Inactive => "INACTIVE",
            ServiceStatus::Other(s) => s,
        }
    }
}

impl From<&str> for ServiceStatus {
    fn from(s: &str) -> Self {
        match s {
            "ACTIVE" => ServiceStatus::Active,
            "DRAINING" => ServiceStatus::Draining,
            "INACTIVE" => ServiceStatus::Inactive,
            other => ServiceStatus::Other(other.to_owned()),
        }
    }
}

impl From<String> for ServiceStatus {
    fn from(s: String) -> Self {
        ServiceStatus::from(s.as_str())
    }
}

impl From<ServiceStatus> for String {
    fn from(s: ServiceStatus) -> Self {
        match s {
            ServiceStatus::Other(s) => s,
            known => known.as_str().to_owned(),
        }
    }
}

impl fmt::Display for ServiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with ECS's spelling, so `status == "ACTIVE"` reads as before.
impl PartialEq<&str> for ServiceStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedService {
    pub name: String,
    pub arn: String,
    /// Only [`ServiceStatus::Active`] counts as existing.
    pub status: ServiceStatus,
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
    /// The authenticate action before the forward, if any (its client
    /// secret is never read back: AWS does not return it).
    #[serde(default)]
    pub auth: Option<crate::access::RuleAuth>,
}

/// Everything on one listener of the pool, and how full its load
/// balancer is (foreign rules and target groups included).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerState {
    pub rules: Vec<ObservedRule>,
    /// Target groups attached to the load balancer (hard limit 100).
    pub alb_target_groups: usize,
    /// Non-default rules on the load balancer (quota, default 100).
    pub alb_rules: usize,
    /// The waker target group of this listener's load balancer
    /// (`sleep.waker_target_groups`), when sleep is on: a sleeping
    /// preview's rule forwards to it. Not listed by the adapters: a pass
    /// sets it, for the listener it places the preview on, from
    /// `sleep::Wakers::for_listener`.
    #[serde(default)]
    pub waker_target_group: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_status_round_trips_in_ecs_spelling() {
        for (status, spelling) in [
            (ServiceStatus::Active, "ACTIVE"),
            (ServiceStatus::Draining, "DRAINING"),
            (ServiceStatus::Inactive, "INACTIVE"),
        ] {
            let json = serde_json::to_value(&status).unwrap();
            assert_eq!(json, serde_json::json!(spelling));
            assert_eq!(
                serde_json::from_value::<ServiceStatus>(json).unwrap(),
                status
            );
            assert_eq!(ServiceStatus::from(spelling), status);
            assert_eq!(status.to_string(), spelling);
        }
    }

    #[test]
    fn a_status_ecs_adds_later_is_kept_not_refused() {
        let later: ServiceStatus = serde_json::from_str(r#""PROVISIONING""#).unwrap();
        assert_eq!(later, ServiceStatus::Other("PROVISIONING".into()));
        assert_eq!(serde_json::to_string(&later).unwrap(), r#""PROVISIONING""#);
        assert_eq!(ServiceStatus::from(""), ServiceStatus::Other(String::new()));
        // Lower case is not ECS's spelling, so it is not ACTIVE either.
        assert_ne!(ServiceStatus::from("active"), ServiceStatus::Active);
    }
}
