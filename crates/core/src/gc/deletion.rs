//! The changes that delete one unwanted resource: the same `Change`s a
//! teardown plan is made of, applied by the same executor.

use super::{OwnedResource, ResourceKind};
use crate::plan::Change;
use crate::render::{DnsAction, DnsChange};
use crate::tags::Tags;

/// The changes that delete `r`, in order. A service still scaled up is
/// scaled to zero first (ECS refuses to delete it otherwise), keeping the
/// task definition it runs and leaving its tags as they are.
pub fn deletion(r: &OwnedResource) -> Vec<Change> {
    match r.kind {
        ResourceKind::DnsRecords => vec![Change::ChangeDns(
            r.records
                .iter()
                .map(|record| DnsChange {
                    action: DnsAction::Delete,
                    record: record.clone(),
                })
                .collect(),
        )],
        ResourceKind::Service => {
            let mut changes = Vec::new();
            if r.desired_count > 0 {
                changes.push(Change::UpdateService {
                    name: r.id.clone(),
                    task_definition_arn: Some(r.task_definition.clone().unwrap_or_default()),
                    desired_count: 0,
                    tags: Tags::new(),
                });
            }
            changes.push(Change::DeleteService { name: r.id.clone() });
            changes
        }
        ResourceKind::ListenerRule => vec![Change::DeleteRule { arn: r.id.clone() }],
        ResourceKind::TargetGroup => vec![Change::DeleteTargetGroup { arn: r.id.clone() }],
        ResourceKind::TaskDefinitions => vec![Change::DeregisterTaskDefinitions {
            family: r.id.clone(),
        }],
        ResourceKind::LogGroup => vec![Change::DeleteLogGroup { name: r.id.clone() }],
    }
}
