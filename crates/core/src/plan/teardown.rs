//! Teardown: what to delete, in what order.

use super::{Change, Observation, Plan, Verdict};
use crate::model::Preview;
use crate::observed::*;
use crate::render::{DnsAction, DnsChange};

/// Teardown; `o` holds only our resources.
pub(super) fn plan_absent(p: &Preview, o: &Observation) -> Plan {
    let mut changes = Vec::new();
    if !o.records.is_empty() {
        // Deleting needs the records exactly as they are; foreign kinds
        // at the same name (none should exist) are left alone.
        let ours = o
            .records
            .iter()
            .filter(|r| matches!(r.kind, RecordType::A | RecordType::Txt));
        let deletes = ours
            .map(|r| DnsChange {
                action: DnsAction::Delete,
                record: r.clone(),
            })
            .collect();
        changes.push(Change::ChangeDns(deletes));
    }
    let mut draining = None;
    if let Some(svc) = &o.service {
        match svc.status {
            ServiceStatus::Active => {
                if svc.desired_count > 0 {
                    changes.push(Change::UpdateService {
                        name: svc.name.clone(),
                        task_definition_arn: Some(svc.task_definition.clone()),
                        desired_count: 0,
                        tags: svc.tags.clone(),
                    });
                }
                changes.push(Change::DeleteService {
                    name: svc.name.clone(),
                });
            }
            ServiceStatus::Draining => draining = Some(svc.name.clone()),
            _ => {}
        }
    }
    for r in &o.listener.rules {
        changes.push(Change::DeleteRule { arn: r.arn.clone() });
    }
    if p.rule_priority.is_some() {
        changes.push(Change::ReleasePriority);
    }
    if let Some(tg) = &o.target_group {
        changes.push(Change::DeleteTargetGroup {
            arn: tg.arn.clone(),
        });
    }
    if let Some(td) = &o.task_definition {
        changes.push(Change::DeregisterTaskDefinitions {
            family: td.family.clone(),
        });
    }
    if let Some(lg) = &o.log_group {
        changes.push(Change::DeleteLogGroup {
            name: lg.name.clone(),
        });
    }
    let verdict = match (changes.is_empty(), draining) {
        (false, _) => Verdict::Working,
        (true, Some(name)) => {
            Verdict::Progressing(format!("waiting for service {name} to finish draining"))
        }
        (true, None) => Verdict::Gone,
    };
    Plan { changes, verdict }
}
