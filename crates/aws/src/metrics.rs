//! CloudWatch: the load balancer's request counts by target group, for the
//! idle check of sleep (GetMetricData, up to 500 queries a request).

use crate::{Aws, Op};
use async_trait::async_trait;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use previewd_core::ports::{CloudResult, Metrics, RequestCount, RequestCountQuery};
use previewd_core::sleep::{MAX_QUERIES_PER_CALL, target_group_dimension};
use std::time::{Duration, SystemTime};

/// One query: `RequestCount`'s per-minute sums over the window (a minute
/// with no request has no datapoint).
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
    ) -> CloudResult<Vec<RequestCount>> {
        // Per-minute datapoints: their sum is the window's count, and the
        // newest one dates the last request to its minute, from which the
        // idle check schedules its next read. 60 a query, so 500 queries
        // stay well under GetMetricData's 100,800 datapoints.
        let minutes = window.as_secs().div_ceil(60).max(1);
        let period = 60;
        let end = SystemTime::now();
        let start = end - Duration::from_secs(minutes * 60);
        let mut counts = vec![RequestCount::default(); queries.len()];
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
                        add_datapoints(slot, r.timestamps(), r.values(), end);
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

/// Adds one result's datapoints (a minute each) to `slot`: their sum, and
/// the newest nonzero minute's age at `end` counted from the minute's end,
/// so that the last request is placed as late as it can have been.
fn add_datapoints(
    slot: &mut RequestCount,
    timestamps: &[DateTime],
    values: &[f64],
    end: SystemTime,
) {
    slot.sum += values.iter().sum::<f64>();
    for (t, v) in timestamps.iter().zip(values) {
        if *v <= 0.0 {
            continue;
        }
        let Ok(start) = SystemTime::try_from(*t) else {
            continue;
        };
        let age = end
            .duration_since(start + Duration::from_secs(60))
            .unwrap_or_default();
        slot.newest_age = Some(slot.newest_age.map_or(age, |a| a.min(age)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_minute_with_requests_dates_the_last_request_to_its_end() {
        let end = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let minute = |s: u64| DateTime::from(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        let mut slot = RequestCount::default();
        add_datapoints(
            &mut slot,
            &[minute(9_000), minute(9_600), minute(9_900)],
            &[2.0, 3.0, 0.0],
            end,
        );
        assert_eq!(slot.sum, 5.0);
        // The 9,600 s minute ends at 9,660 s: 340 s before the read.
        assert_eq!(slot.newest_age, Some(Duration::from_secs(340)));
        // A minute still open at the read: age 0.
        add_datapoints(&mut slot, &[minute(9_990)], &[1.0], end);
        assert_eq!(slot.newest_age, Some(Duration::ZERO));
    }
}
