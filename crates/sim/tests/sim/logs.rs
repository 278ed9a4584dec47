//! CloudWatch Logs: log groups and retention.

use crate::*;
use previewd_core::CloudError;
use previewd_core::ports::Logs;

#[tokio::test]
async fn creating_an_existing_log_group_is_an_error() {
    let sim = sim();
    sim.create_log_group("/ecs/pv-a", 14, &ours("a"))
        .await
        .unwrap();
    let err = sim
        .create_log_group("/ecs/pv-a", 14, &ours("a"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CloudError::AlreadyExists(m) if m.contains("ResourceAlreadyExistsException"))
    );
}

#[tokio::test]
async fn deleting_a_missing_log_group_succeeds() {
    let sim = sim();
    sim.delete_log_group("/ecs/pv-never").await.unwrap();
    assert_eq!(calls(&sim, "logs:DeleteLogGroup"), 1);
}

#[tokio::test]
async fn creation_sets_retention_in_a_second_request() {
    let sim = sim();
    sim.create_log_group("/ecs/pv-a", 7, &ours("a"))
        .await
        .unwrap();
    let groups = previewd_core::tagged::log_groups(&sim, "/ecs/pv-")
        .await
        .unwrap();
    assert_eq!(groups[0].retention_days, Some(7));
    assert_eq!(groups[0].tags, ours("a"));
    assert_eq!(calls(&sim, "logs:CreateLogGroup"), 1);
    assert_eq!(calls(&sim, "logs:PutRetentionPolicy"), 1);
}

#[tokio::test]
async fn retention_must_be_an_allowed_value() {
    let sim = sim();
    let err = sim
        .create_log_group("/ecs/pv-a", 10, &ours("a"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidParameterException");
    // As in AWS, the group was made; only its retention is missing.
    assert_eq!(
        sim.log_groups("/ecs/pv-a").await.unwrap()[0].retention_days,
        None
    );
    sim.set_retention("/ecs/pv-a", 14).await.unwrap();
    let missing = sim.set_retention("/ecs/pv-b", 14).await;
    assert!(matches!(missing, Err(CloudError::NotFound(_))));
}

#[tokio::test]
async fn log_groups_page_by_fifty_and_filter_by_prefix() {
    let sim = sim();
    for i in 0..60 {
        sim.add_foreign_log_group(&format!("/ecs/pv-{i}"));
    }
    sim.add_foreign_log_group("/aws/lambda/billing");
    assert_eq!(sim.log_groups("/ecs/pv-").await.unwrap().len(), 60);
    assert_eq!(calls(&sim, "logs:DescribeLogGroups"), 2);
}
