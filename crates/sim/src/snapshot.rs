//! A copy of everything in the simulated account, for tests that compare
//! "before" with "after" or count what previewd left behind.

use crate::world::World;
use previewd_core::observed::{
    DnsRecord, ObservedLogGroup, ObservedRule, ObservedTargetGroup, ObservedTaskDefinition,
    RecordType, ServiceStatus,
};
use previewd_core::tags::{self, Tags};
use std::collections::BTreeSet;

/// One ECS service as a test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSnapshot {
    pub name: String,
    pub status: ServiceStatus,
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    pub tags: Tags,
}

/// Everything in the account, each list in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub log_groups: Vec<ObservedLogGroup>,
    /// ACTIVE revisions only.
    pub task_definitions: Vec<ObservedTaskDefinition>,
    /// Every status, INACTIVE included, as DescribeServices still shows them.
    pub services: Vec<ServiceSnapshot>,
    pub target_groups: Vec<ObservedTargetGroup>,
    /// The listener's rules, the default rule last.
    pub rules: Vec<ObservedRule>,
    pub records: Vec<DnsRecord>,
}

impl Snapshot {
    pub(crate) fn of(w: &World) -> Self {
        Self {
            log_groups: w.logs.observed(),
            task_definitions: w
                .ecs
                .families
                .values()
                .flatten()
                .filter(|r| r.active)
                .map(|r| r.observed())
                .collect(),
            services: w
                .ecs
                .services
                .values()
                .map(|s| ServiceSnapshot {
                    name: s.name.clone(),
                    status: s.status.into(),
                    task_definition: s.primary_task_definition().to_string(),
                    desired: s.desired,
                    running: s.running(),
                    tags: s.tags.clone(),
                })
                .collect(),
            target_groups: w.elb.observed_target_groups(),
            rules: w.elb.observed_rules(None),
            records: w.dns.records.values().cloned().collect(),
        }
    }

    /// What `controller_id` owns and still exists (INACTIVE services are
    /// gone; DNS names count when a TXT record carries its marker). A clean
    /// teardown leaves this empty.
    pub fn owned_by(&self, controller_id: &str) -> Snapshot {
        self.split(controller_id, true)
    }

    /// Everything `controller_id` does not own; previewd must leave it
    /// exactly as it found it.
    pub fn foreign_to(&self, controller_id: &str) -> Snapshot {
        self.split(controller_id, false)
    }

    /// Resources in all lists, the listener's default rule not counted.
    pub fn len(&self) -> usize {
        self.log_groups.len()
            + self.task_definitions.len()
            + self.services.len()
            + self.target_groups.len()
            + self.rules.iter().filter(|r| r.priority.is_some()).count()
            + self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn split(&self, id: &str, owned: bool) -> Snapshot {
        let ours = |t: &Tags| tags::is_owned(t, id) == owned;
        let our_names: BTreeSet<&str> = self
            .records
            .iter()
            .filter(|r| {
                r.kind == RecordType::Txt
                    && r.values
                        .iter()
                        .any(|v| tags::dns_marker_slug(v, id).is_some())
            })
            .map(|r| r.name.as_str())
            .collect();
        Snapshot {
            log_groups: self
                .log_groups
                .iter()
                .filter(|g| ours(&g.tags))
                .cloned()
                .collect(),
            task_definitions: self
                .task_definitions
                .iter()
                .filter(|t| ours(&t.tags))
                .cloned()
                .collect(),
            services: self
                .services
                .iter()
                .filter(|s| ours(&s.tags) && !(owned && s.status == ServiceStatus::Inactive))
                .cloned()
                .collect(),
            target_groups: self
                .target_groups
                .iter()
                .filter(|t| ours(&t.tags))
                .cloned()
                .collect(),
            // The default rule belongs to the listener, never to previewd.
            rules: self
                .rules
                .iter()
                .filter(|r| ours(&r.tags) && !(owned && r.priority.is_none()))
                .cloned()
                .collect(),
            records: self
                .records
                .iter()
                .filter(|r| our_names.contains(r.name.as_str()) == owned)
                .cloned()
                .collect(),
        }
    }
}
