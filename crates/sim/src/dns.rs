//! Route53: one hosted zone, atomic change batches, exact-match DELETE.

use crate::world::{World, invalid};
use previewd_core::limits::Bucket;
use previewd_core::observed::{DnsRecord, RecordType};
use previewd_core::operations::Op;
use previewd_core::ports::CloudResult;
use previewd_core::render::{DnsAction, DnsChange};
use std::collections::BTreeMap;

const ZONE: &str = "arn:aws:route53:::hostedzone/ZSIMPREVIEWS";
/// Route53's ceiling on record elements in one change batch.
const MAX_BATCH: usize = 1000;

/// Record sets keyed by (lower-case name without trailing dot, type).
pub(crate) type Records = BTreeMap<(String, RecordType), DnsRecord>;

#[derive(Debug, Default)]
pub(crate) struct DnsState {
    pub records: Records,
}

/// Route53 stores names lower-case and without the trailing dot here.
pub(crate) fn normalize(record: &DnsRecord) -> DnsRecord {
    let mut r = record.clone();
    r.name = r.name.trim_end_matches('.').to_ascii_lowercase();
    r
}

/// A DELETE matches when everything but the order of the values agrees.
fn same(a: &DnsRecord, b: &DnsRecord) -> bool {
    let sorted = |r: &DnsRecord| {
        let mut v = r.values.clone();
        v.sort();
        v
    };
    a.name == b.name
        && a.kind == b.kind
        && a.ttl == b.ttl
        && a.alias_target == b.alias_target
        && sorted(a) == sorted(b)
}

fn kind_name(kind: RecordType) -> &'static str {
    match kind {
        RecordType::A => "A",
        RecordType::Txt => "TXT",
        RecordType::Cname => "CNAME",
    }
}

/// How Route53 names a record set in its errors.
fn describe(r: &DnsRecord) -> String {
    format!("[name='{}.', type='{}']", r.name, kind_name(r.kind))
}

/// Problems with the record itself, whatever the zone holds.
fn shape_problem(r: &DnsRecord, zone: &str) -> Option<(&'static str, String)> {
    let in_zone = r.name == zone || r.name.ends_with(&format!(".{zone}"));
    if !in_zone {
        return Some((
            "InvalidChangeBatch",
            format!(
                "RRSet with DNS name {}. is not permitted in zone {zone}.",
                r.name
            ),
        ));
    }
    let well_formed = match r.alias_target {
        Some(_) => r.ttl.is_none() && r.values.is_empty(),
        None => r.ttl.is_some() && !r.values.is_empty(),
    };
    if !well_formed {
        return Some((
            "InvalidInput",
            format!(
                "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and \
                 ResourceRecords]] in Change for {}",
                describe(r)
            ),
        ));
    }
    let unquoted = |v: &&String| !(v.starts_with('"') && v.ends_with('"'));
    if r.kind == RecordType::Txt
        && let Some(v) = r.values.iter().find(unquoted)
    {
        return Some((
            "InvalidChangeBatch",
            format!(
                "Invalid Resource Record: 'FATAL problem: InvalidCharacterString (Value \
                 should be enclosed in quotation marks) encountered with '{v}''"
            ),
        ));
    }
    None
}

/// Applies one change to `records`, or says why Route53 would refuse it.
fn apply(
    records: &mut Records,
    change: &DnsChange,
    zone: &str,
) -> Result<(), (&'static str, String)> {
    let r = normalize(&change.record);
    if let Some(problem) = shape_problem(&r, zone) {
        return Err(problem);
    }
    let key = (r.name.clone(), r.kind);
    match change.action {
        DnsAction::Delete => match records.get(&key) {
            None => Err((
                "InvalidChangeBatch",
                format!(
                    "Tried to delete resource record set {} but it was not found",
                    describe(&r)
                ),
            )),
            Some(current) if !same(current, &r) => Err((
                "InvalidChangeBatch",
                format!(
                    "Tried to delete resource record set {} but the values provided do not \
                     match the current values",
                    describe(&r)
                ),
            )),
            Some(_) => {
                records.remove(&key);
                Ok(())
            }
        },
        DnsAction::Upsert => {
            let conflict = records.keys().any(|(name, kind)| {
                *name == r.name
                    && *kind != r.kind
                    && (r.kind == RecordType::Cname || *kind == RecordType::Cname)
            });
            if conflict {
                return Err((
                    "InvalidChangeBatch",
                    format!(
                        "RRSet of type CNAME with DNS name {}. is not permitted as it conflicts \
                         with other records with the same DNS name",
                        r.name
                    ),
                ));
            }
            records.insert(key, r);
            Ok(())
        }
    }
}

impl World {
    pub(crate) fn dns_records(&mut self) -> CloudResult<Vec<DnsRecord>> {
        for _ in 0..Self::pages(self.dns.records.len(), 300) {
            self.gate(Op::ListResourceRecordSets, ZONE)?;
        }
        Ok(self.dns.records.values().cloned().collect())
    }

    /// Validates every change against the zone as the earlier changes of
    /// the batch leave it, then commits all of them or none.
    pub(crate) fn dns_change(&mut self, changes: &[DnsChange]) -> CloudResult<()> {
        // Change throughput counts records: UPSERT twice, DELETE once.
        let records: f64 = changes
            .iter()
            .map(|c| match c.action {
                DnsAction::Upsert => 2.0,
                DnsAction::Delete => 1.0,
            })
            .sum();
        self.gate_costing(
            Op::ChangeResourceRecordSets,
            ZONE,
            &[(Bucket::Route53Changes, records)],
        )?;
        if changes.is_empty() {
            return Err(invalid(
                "InvalidInput",
                "1 validation error detected: Value '[]' at 'changeBatch.changes' failed to \
                 satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        if changes.len() > MAX_BATCH {
            return Err(invalid(
                "InvalidChangeBatch",
                format!("Number of records limit of {MAX_BATCH} exceeded."),
            ));
        }
        let zone = self
            .cfg
            .zone_name
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let mut next = self.dns.records.clone();
        let mut problems: Vec<(&'static str, String)> = Vec::new();
        for change in changes {
            if let Err(p) = apply(&mut next, change, &zone) {
                problems.push(p);
            }
        }
        if let Some((code, _)) = problems.first() {
            // Route53 lists every problem of the batch in one message.
            let all: Vec<String> = problems.iter().map(|(_, m)| m.clone()).collect();
            return Err(invalid(code, format!("[{}]", all.join(", "))));
        }
        self.dns.records = next;
        self.applied(Op::ChangeResourceRecordSets)
    }
}
