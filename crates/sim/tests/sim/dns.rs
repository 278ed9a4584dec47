//! Route53: atomic batches and exact-match deletes.

use crate::*;
use previewd_core::CloudError;
use previewd_core::observed::{AliasTarget, DnsRecord, RecordType};
use previewd_core::ports::Dns;
use previewd_core::render::{DnsAction, DnsChange};

fn alias(name: &str) -> DnsRecord {
    DnsRecord {
        name: name.into(),
        kind: RecordType::A,
        ttl: None,
        values: Vec::new(),
        alias_target: Some(AliasTarget {
            dns_name: "previews-alb.us-east-1.elb.amazonaws.com".into(),
            hosted_zone_id: "Z35SXDOTRQ7X7K".into(),
        }),
    }
}

fn txt(name: &str, value: &str) -> DnsRecord {
    DnsRecord {
        name: name.into(),
        kind: RecordType::Txt,
        ttl: Some(300),
        values: vec![value.into()],
        alias_target: None,
    }
}

fn upsert(record: DnsRecord) -> DnsChange {
    DnsChange {
        action: DnsAction::Upsert,
        record,
    }
}

fn delete(record: DnsRecord) -> DnsChange {
    DnsChange {
        action: DnsAction::Delete,
        record,
    }
}

fn is_bad_batch(r: Result<(), CloudError>, needle: &str) -> bool {
    matches!(r, Err(CloudError::Invalid { code, message }) if code == "InvalidChangeBatch" && message.contains(needle))
}

const HOST: &str = "issue-1-preview.preview.example.com";

#[tokio::test]
async fn route53_delete_must_match_exactly() {
    let sim = sim();
    sim.change(&[upsert(txt(HOST, "\"owner=a\""))])
        .await
        .unwrap();
    let wrong_value = sim.change(&[delete(txt(HOST, "\"owner=b\""))]).await;
    assert!(is_bad_batch(wrong_value, "do not match the current values"));
    let mut wrong_ttl = txt(HOST, "\"owner=a\"");
    wrong_ttl.ttl = Some(60);
    assert!(is_bad_batch(
        sim.change(&[delete(wrong_ttl)]).await,
        "do not match"
    ));
    let absent = sim.change(&[delete(alias(HOST))]).await;
    assert!(is_bad_batch(
        absent,
        &format!("[name='{HOST}.', type='A'] but it was not found")
    ));
    // A trailing dot and upper case name the same record.
    sim.change(&[delete(txt(
        &format!("{}.", HOST.to_uppercase()),
        "\"owner=a\"",
    ))])
    .await
    .unwrap();
    assert!(sim.records().await.unwrap().is_empty());
}

#[tokio::test]
async fn change_batch_is_atomic() {
    let sim = sim();
    let batch = [
        upsert(alias(HOST)),
        upsert(txt(HOST, "\"owner=a\"")),
        delete(txt("gone.preview.example.com", "\"x\"")),
    ];
    assert!(is_bad_batch(sim.change(&batch).await, "not found"));
    assert!(sim.records().await.unwrap().is_empty());
    sim.change(&batch[..2]).await.unwrap();
    assert_eq!(sim.records().await.unwrap().len(), 2);
    assert_eq!(calls(&sim, "route53:ChangeResourceRecordSets"), 2);
}

#[tokio::test]
async fn later_changes_see_earlier_ones_in_the_batch() {
    let sim = sim();
    let batch = [
        upsert(txt(HOST, "\"a\"")),
        delete(txt(HOST, "\"a\"")),
        upsert(alias(HOST)),
    ];
    sim.change(&batch).await.unwrap();
    assert_eq!(sim.records().await.unwrap(), vec![alias(HOST)]);
}

#[tokio::test]
async fn upsert_creates_or_replaces() {
    let sim = sim();
    sim.change(&[upsert(txt(HOST, "\"a\""))]).await.unwrap();
    sim.change(&[upsert(txt(HOST, "\"b\""))]).await.unwrap();
    assert_eq!(sim.records().await.unwrap(), vec![txt(HOST, "\"b\"")]);
}

#[tokio::test]
async fn records_outside_the_zone_are_refused() {
    let sim = sim();
    let err = sim.change(&[upsert(alias("www.example.org"))]).await;
    assert!(is_bad_batch(err, "is not permitted in zone"));
}

#[tokio::test]
async fn txt_values_must_be_quoted() {
    let sim = sim();
    assert!(is_bad_batch(
        sim.change(&[upsert(txt(HOST, "bare"))]).await,
        "quotation marks"
    ));
}

#[tokio::test]
async fn alias_and_ttl_do_not_mix() {
    let sim = sim();
    let mut bad = alias(HOST);
    bad.ttl = Some(60);
    let err = sim.change(&[upsert(bad)]).await.unwrap_err();
    assert_eq!(err.code(), "InvalidInput");
}

#[tokio::test]
async fn a_cname_cannot_share_its_name() {
    let sim = sim();
    sim.change(&[upsert(txt(HOST, "\"a\""))]).await.unwrap();
    let cname = DnsRecord {
        kind: RecordType::Cname,
        values: vec!["elsewhere.example.com".into()],
        ..txt(HOST, "")
    };
    assert!(is_bad_batch(
        sim.change(&[upsert(cname)]).await,
        "conflicts"
    ));
}

#[tokio::test]
async fn listing_pages_every_300_records() {
    let sim = sim();
    for i in 0..301 {
        sim.add_foreign_record(txt(&format!("r{i}.preview.example.com"), "\"x\""));
    }
    assert_eq!(sim.records().await.unwrap().len(), 301);
    assert_eq!(calls(&sim, "route53:ListResourceRecordSets"), 2);
}
