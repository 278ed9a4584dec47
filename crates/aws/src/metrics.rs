//! CloudWatch: the load balancer's request counts by target group, for the
//! idle check of sleep (GetMetricData, up to 500 queries a request).

use crate::{Aws, Op};
use async_trait::async_trait;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use previewd_core::ports::{CloudResult, Metrics, RequestCountQuery};
use previewd_core::sleep::{MAX_QUERIES_PER_CALL, target_group_dimension};
use std::time::{Duration, SystemTime};

/// One query: `RequestCount`'s sum over the whole window, as one datapoint.
fn query(i: usize, q: &RequestCountQuery, period: i32) -> MetricDataQuery {
    let dim = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
    let target_group = target_group_dimension(&q.target_group_arn).unwrap_or(&q.target_group_arn);
    MetricDataQuery::builder()
        .id(format!("q{i}"))
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("AWS/ApplicationELB")
                        .metric_name("RequestCount")
                        .dimensions(dim("LoadBalancer", &q.load_balancer))
                        .dimensions(dim("TargetGroup", target_group))
                        .build(),
                )
                .period(period)
                .stat("Sum")
                .build(),
        )
        .return_data(true)
        .build()
}

#[async_trait]
impl Metrics for Aws {
    async fn request_counts(
        &self,
        queries: &[RequestCountQuery],
        window: Duration,
    ) -> CloudResult<Vec<f64>> {
        // CloudWatch sums by whole minutes; one period covers the window.
        let minutes = window.as_secs().div_ceil(60).max(1);
        let period = i32::try_from(minutes * 60).unwrap_or(i32::MAX);
        let end = SystemTime::now();
        let start = end - Duration::from_secs(minutes * 60);
        let mut counts = vec![0.0; queries.len()];
        for (chunk_no, chunk) in queries.chunks(MAX_QUERIES_PER_CALL).enumerate() {
            let base = chunk_no * MAX_QUERIES_PER_CALL;
            let mut next: Option<String> = None;
            loop {
                let call = self
                    .cloudwatch
                    .get_metric_data()
                    .set_metric_data_queries(Some(
                        chunk
                            .iter()
                            .enumerate()
                            .map(|(i, q)| query(base + i, q, period))
                            .collect(),
                    ))
                    .start_time(DateTime::from(start))
                    .end_time(DateTime::from(end))
                    .set_next_token(next.take())
                    .send();
                let out = self.run(Op::GetMetricData, call).await?;
                for r in out.metric_data_results() {
                    let index = r
                        .id()
                        .and_then(|id| id.strip_prefix('q'))
                        .and_then(|n| n.parse::<usize>().ok());
                    if let Some(slot) = index.and_then(|i| counts.get_mut(i)) {
                        *slot += r.values().iter().sum::<f64>();
                    }
                }
                match out.next_token() {
                    Some(t) if !t.is_empty() => next = Some(t.to_owned()),
                    _ => break,
                }
            }
        }
        Ok(counts)
    }
}
