//! Route53: the preview zone. Records are listed page by page; the changes
//! of many previews go out in one `ChangeResourceRecordSets` batch (the
//! controller's DNS batcher merges them).

use crate::{Aws, Op};
use async_trait::async_trait;
use aws_sdk_route53::types as t;
use previewd_core::CloudError;
use previewd_core::observed::{AliasTarget, DnsRecord, RecordType};
use previewd_core::ports::{CloudResult, Dns};
use previewd_core::render::{DnsAction, DnsChange};

fn invalid(e: impl std::fmt::Display) -> CloudError {
    CloudError::Invalid {
        code: "InvalidRequest".into(),
        message: e.to_string(),
    }
}

/// Route53 writes names fully qualified, lower case, with a trailing dot.
fn plain(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn qualified(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// TXT values travel in double quotes; ours never contain one.
fn unquote(v: &str) -> String {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
        .to_owned()
}

fn observed(r: &t::ResourceRecordSet) -> Option<DnsRecord> {
    let kind = match r.r#type() {
        t::RrType::A => RecordType::A,
        t::RrType::Txt => RecordType::Txt,
        t::RrType::Cname => RecordType::Cname,
        _ => return None,
    };
    // Weighted, latency or failover sets are someone else's design.
    if r.set_identifier().is_some() {
        return None;
    }
    let values = r
        .resource_records()
        .iter()
        .map(|v| match kind {
            RecordType::Txt => unquote(v.value()),
            _ => v.value().to_owned(),
        })
        .collect();
    Some(DnsRecord {
        name: plain(r.name()),
        kind,
        ttl: r.ttl(),
        values,
        alias_target: r.alias_target().map(|a| AliasTarget {
            dns_name: plain(a.dns_name()),
            hosted_zone_id: a.hosted_zone_id().to_owned(),
        }),
    })
}

fn record_set(r: &DnsRecord) -> CloudResult<t::ResourceRecordSet> {
    let kind = match r.kind {
        RecordType::A => t::RrType::A,
        RecordType::Txt => t::RrType::Txt,
        RecordType::Cname => t::RrType::Cname,
    };
    let mut b = t::ResourceRecordSet::builder()
        .name(qualified(&r.name))
        .r#type(kind);
    if let Some(alias) = &r.alias_target {
        b = b.alias_target(
            t::AliasTarget::builder()
                .dns_name(qualified(&alias.dns_name))
                .hosted_zone_id(&alias.hosted_zone_id)
                .evaluate_target_health(false)
                .build()
                .map_err(invalid)?,
        );
    } else {
        b = b.set_ttl(r.ttl);
        for v in &r.values {
            let value = match r.kind {
                RecordType::Txt => format!("\"{v}\""),
                _ => v.clone(),
            };
            b = b.resource_records(
                t::ResourceRecord::builder()
                    .value(value)
                    .build()
                    .map_err(invalid)?,
            );
        }
    }
    b.build().map_err(invalid)
}

#[async_trait]
impl Dns for Aws {
    async fn records(&self) -> CloudResult<Vec<DnsRecord>> {
        let mut out = Vec::new();
        let mut next: Option<(String, t::RrType, Option<String>)> = None;
        loop {
            // Pages are 300 records, Route53's default and maximum.
            let mut req = self
                .route53
                .list_resource_record_sets()
                .hosted_zone_id(&self.settings.hosted_zone_id);
            if let Some((name, kind, id)) = next.take() {
                req = req
                    .start_record_name(name)
                    .start_record_type(kind)
                    .set_start_record_identifier(id);
            }
            let page = self.run(Op::ListResourceRecordSets, req.send()).await?;
            out.extend(page.resource_record_sets().iter().filter_map(observed));
            if !page.is_truncated() {
                return Ok(out);
            }
            match (page.next_record_name(), page.next_record_type()) {
                (Some(name), Some(kind)) => {
                    next = Some((
                        name.to_owned(),
                        kind.clone(),
                        page.next_record_identifier().map(str::to_owned),
                    ))
                }
                _ => return Ok(out),
            }
        }
    }

    async fn change(&self, changes: &[DnsChange]) -> CloudResult<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut batch = t::ChangeBatch::builder().comment("previewd");
        for c in changes {
            let action = match c.action {
                DnsAction::Upsert => t::ChangeAction::Upsert,
                DnsAction::Delete => t::ChangeAction::Delete,
            };
            batch = batch.changes(
                t::Change::builder()
                    .action(action)
                    .resource_record_set(record_set(&c.record)?)
                    .build()
                    .map_err(invalid)?,
            );
        }
        self.run(
            Op::ChangeResourceRecordSets,
            self.route53
                .change_resource_record_sets()
                .hosted_zone_id(&self.settings.hosted_zone_id)
                .change_batch(batch.build().map_err(invalid)?)
                .send(),
        )
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_txt_values_round_trip() {
        let r = DnsRecord {
            name: "issue-1-preview.preview.example.com".into(),
            kind: RecordType::Txt,
            ttl: Some(300),
            values: vec!["previewd:owner=previewd/issue-1".into()],
            alias_target: None,
        };
        let set = record_set(&r).unwrap();
        assert_eq!(set.name(), "issue-1-preview.preview.example.com.");
        assert_eq!(
            set.resource_records()[0].value(),
            "\"previewd:owner=previewd/issue-1\""
        );
        assert_eq!(observed(&set), Some(r));
    }

    #[test]
    fn alias_names_are_compared_without_dot_or_case() {
        let r = DnsRecord {
            name: "issue-1-preview.preview.example.com".into(),
            kind: RecordType::A,
            ttl: None,
            values: vec![],
            alias_target: Some(AliasTarget {
                dns_name: "previews-alb-1.us-east-1.elb.amazonaws.com".into(),
                hosted_zone_id: "Z35SXDOTRQ7X7K".into(),
            }),
        };
        let mut set = record_set(&r).unwrap();
        set.alias_target = Some(
            t::AliasTarget::builder()
                .dns_name("Previews-ALB-1.us-east-1.elb.amazonaws.com.")
                .hosted_zone_id("Z35SXDOTRQ7X7K")
                .evaluate_target_health(false)
                .build()
                .unwrap(),
        );
        assert_eq!(observed(&set), Some(r));
    }
}
