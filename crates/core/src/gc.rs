//! Garbage collection decisions: which of our resources no row wants
//! ([`unwanted`]), when each may go ([`schedule`], [`recheck`]), and the
//! changes that delete it ([`deletion`]), which the reconciler's executor
//! applies like any plan's.
//!
//! # Guarantees
//! - Only resources the caller found carrying our ownership tag (or, for
//!   DNS, our TXT marker) are ever candidates; the inventory is built that
//!   way and nothing here widens it.
//! - A resource whose row still wants it, or whose row is still being torn
//!   down by the reconciler, is never a candidate.
//!
//! # Assumptions
//! The inventory was listed *before* the rows were read. A row always
//! exists before the first resource of its slug is created, so a resource
//! listed earlier whose slug has no row later is truly orphaned.

mod deletion;
mod schedule;

pub use deletion::deletion;
pub use schedule::{Recheck, Schedule, recheck, schedule};

use crate::model::{Desired, Phase, Preview};
use crate::observed::{DnsRecord, RecordType};
use crate::tags;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// What kind of resource; the order is the deletion order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceKind {
    DnsRecords,
    Service,
    ListenerRule,
    TargetGroup,
    TaskDefinitions,
    LogGroup,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceKind::DnsRecords => "dns-records",
            ResourceKind::Service => "service",
            ResourceKind::ListenerRule => "listener-rule",
            ResourceKind::TargetGroup => "target-group",
            ResourceKind::TaskDefinitions => "task-definitions",
            ResourceKind::LogGroup => "log-group",
        })
    }
}

/// One resource of ours, as the sweep found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnedResource {
    pub kind: ResourceKind,
    /// What the delete call takes: an ARN, a name, a family, a DNS name.
    pub id: String,
    pub slug: String,
    /// For DNS: the record sets at the name, exactly as listed (a Route53
    /// DELETE must match them).
    #[serde(skip)]
    pub records: Vec<DnsRecord>,
    /// For a service: its desired count (it is scaled to 0 first) and the
    /// task definition it runs (UpdateService needs one).
    pub desired_count: i32,
    #[serde(skip)]
    pub task_definition: Option<String>,
}

impl OwnedResource {
    /// Stable identity across sweeps, for the grace-period bookkeeping.
    pub fn identity(&self) -> String {
        format!("{}:{}", self.kind, self.id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// No row has this slug (a crash, a lost or restored database).
    Orphan,
    /// The row's teardown finished, yet this was left behind.
    HalfDeleted,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Orphan => "orphan: no preview has this slug",
            Reason::HalfDeleted => "half-deleted: its preview was destroyed",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub resource: OwnedResource,
    pub reason: Reason,
}

/// The resources no row wants, in deletion order.
pub fn unwanted(rows: &[Preview], inventory: Vec<OwnedResource>) -> Vec<Candidate> {
    let by_slug: HashMap<&str, &Preview> = rows.iter().map(|p| (p.slug.as_str(), p)).collect();
    let mut out: Vec<Candidate> = inventory
        .into_iter()
        .filter_map(|resource| {
            let reason = match by_slug.get(resource.slug.as_str()) {
                None => Reason::Orphan,
                Some(p) if p.desired == Desired::Absent && p.status.phase == Phase::Deleted => {
                    Reason::HalfDeleted
                }
                // Wanted, or the reconciler is still tearing it down.
                Some(_) => return None,
            };
            Some(Candidate { resource, reason })
        })
        .collect();
    out.sort_by(|a, b| (a.resource.kind, &a.resource.id).cmp(&(b.resource.kind, &b.resource.id)));
    out
}

/// The DNS names whose TXT record carries our marker, each with all its A
/// and TXT record sets exactly as listed (a Route53 DELETE must match
/// them). Records carry no tags: the marker is the only proof of ownership.
pub fn dns_names(controller_id: &str, records: Vec<DnsRecord>) -> Vec<OwnedResource> {
    let mut by_name: BTreeMap<String, (Option<String>, Vec<DnsRecord>)> = BTreeMap::new();
    for r in records
        .into_iter()
        .filter(|r| matches!(r.kind, RecordType::A | RecordType::Txt))
    {
        let entry = by_name.entry(r.name.clone()).or_default();
        if r.kind == RecordType::Txt
            && let Some(slug) = r
                .values
                .iter()
                .find_map(|v| tags::dns_marker_slug(v, controller_id))
        {
            entry.0 = Some(slug.to_owned());
        }
        entry.1.push(r);
    }
    by_name
        .into_iter()
        .filter_map(|(name, (slug, records))| {
            slug.map(|slug| OwnedResource {
                kind: ResourceKind::DnsRecords,
                id: name,
                slug,
                records,
                desired_count: 0,
                task_definition: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::PreviewKey;
    use crate::model::*;

    fn row(slug: &str, desired: Desired, phase: Phase) -> Preview {
        let key = PreviewKey::new("acme/shop", slug).unwrap();
        let mut p = Preview::fresh(
            key,
            slug,
            &format!("{slug}-preview"),
            PreviewSpec::default(),
            chrono::Utc::now(),
        );
        p.desired = desired;
        p.status.phase = phase;
        p
    }

    fn res(kind: ResourceKind, slug: &str) -> OwnedResource {
        OwnedResource {
            kind,
            id: format!("{kind}/{slug}"),
            slug: slug.into(),
            records: vec![],
            desired_count: 0,
            task_definition: None,
        }
    }

    #[test]
    fn only_rows_that_want_nothing_give_candidates_in_deletion_order() {
        let rows = [
            row("live", Desired::Present, Phase::Ready),
            row("going", Desired::Absent, Phase::Deleting),
            row("gone", Desired::Absent, Phase::Deleted),
        ];
        let inventory = vec![
            res(ResourceKind::LogGroup, "ghost"),
            res(ResourceKind::Service, "live"),
            res(ResourceKind::Service, "going"),
            res(ResourceKind::TargetGroup, "gone"),
            res(ResourceKind::DnsRecords, "ghost"),
        ];
        let got: Vec<(ResourceKind, &str, Reason)> = unwanted(&rows, inventory)
            .iter()
            .map(|c| {
                (
                    c.resource.kind,
                    if c.resource.slug == "ghost" {
                        "ghost"
                    } else {
                        "gone"
                    },
                    c.reason,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (ResourceKind::DnsRecords, "ghost", Reason::Orphan),
                (ResourceKind::TargetGroup, "gone", Reason::HalfDeleted),
                (ResourceKind::LogGroup, "ghost", Reason::Orphan),
            ]
        );
    }
}
