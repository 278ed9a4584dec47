//! ELB tags kept by ARN: listings read each ARN's tags once, and a change
//! to a rule or target group is made only on tags read just before it.

use crate::*;
use previewd_core::tags::Tags;
use previewd_sim::SimConfig;
use std::time::Duration;

#[tokio::test]
async fn resyncs_read_each_arns_tags_once() {
    let app = spawn_app(SimConfig::default(), None).await;
    for i in 0..3 {
        let branch = format!("qanote/issue-{i}");
        app.api
            .post("/v1/dispatch", deploy(&branch, "abc1234"))
            .await;
        app.api
            .wait_for(&branch, WITHIN, phase_is("Ready", 1))
            .await;
    }
    app.sim.reset_calls();
    // Several resync rounds (every 500 ms, listings at most 100 ms old).
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let calls = app.sim.calls();
    assert!(
        calls.get("elbv2:DescribeRules").copied().unwrap_or(0) >= 2,
        "the listings were fetched again: {calls:?}"
    );
    assert_eq!(calls.get("elbv2:DescribeTags"), None, "{calls:?}");
}

#[tokio::test]
async fn a_target_group_retagged_by_hand_is_not_deleted_with_its_preview() {
    let app = spawn_app(SimConfig::default(), None).await;
    app.api
        .post("/v1/dispatch", deploy("qanote/issue-5", "abc1234"))
        .await;
    app.api
        .wait_for("qanote/issue-5", WITHIN, phase_is("Ready", 1))
        .await;
    let tg = app.sim.snapshot().owned_by(ID).target_groups[0].clone();
    // Someone takes the target group over; previewd still remembers it
    // as its own.
    let theirs = Tags::from([("team".to_string(), "payments".to_string())]);
    app.sim.set_elb_tags(&tg.arn, theirs.clone());

    let (status, _) = app.api.delete("/v1/previews/qanote%2Fissue-5").await;
    assert_eq!(status, 202);
    app.api
        .wait_for("qanote/issue-5", WITHIN, phase_is("Deleted", 2))
        .await;
    let snap = app.sim.snapshot();
    assert!(snap.owned_by(ID).is_empty(), "{:?}", snap.owned_by(ID));
    let kept = snap.target_groups.iter().find(|t| t.arn == tg.arn);
    assert_eq!(kept.map(|t| &t.tags), Some(&theirs));
    assert_eq!(app.sim.calls().get("elbv2:DeleteTargetGroup"), None);
}
