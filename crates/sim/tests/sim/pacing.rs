//! previewd's client-side pacer in front of the simulated account: requests
//! wait for their tokens instead of being refused, page by page.

use crate::*;
use previewd_core::limits::{BucketSpec, Limits, Pacer};
use previewd_core::ports::{Compute, LoadBalancer};
use previewd_sim::{Sim, SimConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

fn paced(sim: &Sim, limits: Limits) {
    let pacer = Pacer::new(limits, Instant::now().into_std());
    sim.set_pacer(Some(Arc::new(pacer)));
}

#[tokio::test(start_paused = true)]
async fn a_paced_burst_queues_briefly_instead_of_being_throttled() {
    let sim = sim();
    sim.set_throttling(true);
    paced(&sim, Limits::default());
    let start = Instant::now();
    let pending: Vec<_> = (0..25)
        .map(|_| {
            let sim = sim.clone();
            tokio::spawn(async move { sim.register_task_definition(&task_def("a")).await })
        })
        .collect();
    let mut refused = Vec::new();
    for c in pending {
        if let Err(e) = c.await.unwrap() {
            refused.push(e);
        }
    }
    // 20 at once, then one a second for as long as a caller may wait (3 s);
    // the last two would wait longer and are refused without a request.
    assert_eq!(refused.len(), 2, "{refused:?}");
    for e in &refused {
        assert!(
            e.to_string()
                .contains("previewd's share of the account's rate limit"),
            "{e}"
        );
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(3), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    // AWS saw 23 requests and refused none of them.
    assert_eq!(calls(&sim, "ecs:RegisterTaskDefinition"), 23);
    assert_eq!(
        sim.task_definition("pv-a").await.unwrap().unwrap().revision,
        23
    );
}

/// An account whose ELB buckets hold two tokens and refill ten a second.
fn tight_elb() -> Limits {
    Limits {
        elb_account: BucketSpec::new(2.0, 10.0),
        elb_non_mutating: BucketSpec::new(2.0, 10.0),
        ..Limits::default()
    }
}

#[tokio::test(start_paused = true)]
async fn the_pages_of_one_listing_are_paced_too() {
    let sim = Sim::new(SimConfig {
        limits: tight_elb(),
        ..SimConfig::default()
    });
    for i in 0..45 {
        sim.create_target_group(&tg_spec(&format!("pv-{i}")))
            .await
            .unwrap();
    }
    // One DescribeTargetGroups and three DescribeTags: four requests
    // against a bucket of two.
    sim.set_throttling(true);
    let err = previewd_core::tagged::target_groups(&sim, "pv-")
        .await
        .unwrap_err();
    assert!(matches!(err, previewd_core::CloudError::Throttled(_)));

    tokio::time::advance(Duration::from_secs(1)).await;
    paced(&sim, tight_elb());
    let start = Instant::now();
    let listed = previewd_core::tagged::target_groups(&sim, "pv-").await;
    assert_eq!(listed.unwrap().len(), 45);
    // The last two requests each waited a tenth of a second.
    assert!(start.elapsed() >= Duration::from_millis(200));
}

#[tokio::test(start_paused = true)]
async fn untagged_listings_cost_one_request_and_tags_come_by_arn() {
    let sim = sim();
    for i in 0..45 {
        sim.create_target_group(&tg_spec(&format!("pv-{i}")))
            .await
            .unwrap();
    }
    sim.reset_calls();
    let listed = sim.target_groups("pv-").await.unwrap();
    assert!(listed.iter().all(|t| t.tags.is_empty()));
    assert_eq!(sim.total_calls(), 1);
    let arns: Vec<String> = listed.iter().map(|t| t.arn.clone()).collect();
    let tags = sim.tags(&arns).await.unwrap();
    assert_eq!(tags.len(), 45);
    assert_eq!(calls(&sim, "elbv2:DescribeTags"), 3);
    // Like AWS, an unknown ARN fails the request.
    let gone = format!("{}0", arns[0]);
    let err = sim.tags(&[arns[1].clone(), gone]).await.unwrap_err();
    assert!(matches!(err, previewd_core::CloudError::NotFound(_)));
}
