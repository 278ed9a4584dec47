//! The harness itself, on its smallest runs: the JSON lines have the shape
//! BENCHMARKS.md reads and agree with themselves and with the sim. Never
//! a timing threshold: speed is what the benchmark reports, not a test.

use previewd_bench::counted::READS;
use previewd_bench::harness::{DEFAULT_PG_URL, SimParams};
use previewd_bench::scenarios::{System, burst, is_mutating, lease, steady};
use serde_json::Value;
use std::time::Duration;

fn calls_of(v: &Value) -> Vec<(String, u64)> {
    v["calls"]
        .as_object()
        .expect("calls by operation")
        .iter()
        .map(|(op, n)| (op.clone(), n.as_u64().expect("a count")))
        .collect()
}

/// Totals equal the sum of the split, and the mutating count the sum of
/// the mutating operations.
fn assert_calls_add_up(v: &Value) {
    let calls = calls_of(v);
    let total: u64 = calls.iter().map(|(_, n)| n).sum();
    let mutating: u64 = calls
        .iter()
        .filter(|(op, _)| is_mutating(op))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(v["calls_total"], total, "{v}");
    assert_eq!(v["calls_mutating"], mutating, "{v}");
}

fn count(v: &Value, op: &str) -> u64 {
    v["calls"][op].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_ten_reports_every_preview_ready_and_calls_that_add_up() {
    let params = SimParams::quick();
    for system in [System::Previewd, System::Baseline] {
        let out = burst::burst(system, 10, &params).await.expect("burst runs");
        let v = out.json;
        assert_eq!(v["scenario"], "burst");
        assert_eq!(v["n"], 10);
        let ready: Vec<f64> = v["ready_secs_sorted"]
            .as_array()
            .expect("the Ready curve")
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(ready.len(), 10, "{v}");
        assert!(ready.windows(2).all(|w| w[0] <= w[1]), "sorted: {ready:?}");
        assert_eq!(v["all_ready_secs"].as_f64(), ready.last().copied(), "{v}");
        let bound = v["lower_bound_secs"].as_f64().unwrap();
        assert!(bound >= v["bound"]["chain_secs"].as_f64().unwrap(), "{v}");
        let ratio = v["ratio_to_bound"].as_f64().unwrap();
        assert!(
            (ratio - ready.last().unwrap() / bound).abs() < 0.01,
            "ratio is all Ready over the bound: {v}"
        );
        assert_calls_add_up(&v);
        // Every preview got each of its resources: at least one create each.
        for op in [
            "logs:CreateLogGroup",
            "ecs:RegisterTaskDefinition",
            "elbv2:CreateTargetGroup",
            "elbv2:CreateRule",
            "ecs:CreateService",
        ] {
            assert!(count(&v, op) >= 10, "{op}: {v}");
        }
        // Route53: previewd batches, the baseline sends one per preview.
        let dns = count(&v, "route53:ChangeResourceRecordSets");
        match system {
            System::Previewd => assert!((1..=10).contains(&dns), "{v}"),
            System::Baseline => assert!(dns >= 10, "{v}"),
        }
        assert!(out.summary.contains("n=10"), "{}", out.summary);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_resync_changes_nothing_and_reports_calls_per_preview_per_round() {
    let params = SimParams::quick();
    let out = steady::steady(System::Previewd, 10, 1, Duration::from_secs(1), &params)
        .await
        .expect("steady runs");
    let v = out.json;
    assert_eq!(v["scenario"], "steady");
    assert_eq!((v["n"].as_u64(), v["rounds"].as_u64()), (Some(10), Some(1)));
    assert_calls_add_up(&v);
    assert_eq!(
        v["calls_mutating"], 0,
        "a steady resync mutates nothing: {v}"
    );
    assert_eq!(v["still_ready"], 10, "{v}");
    let total = v["calls_total"].as_f64().unwrap();
    let per = v["calls_per_preview_per_round"].as_f64().unwrap();
    assert!((per - total / 10.0).abs() < 0.001, "{v}");
    let split: f64 = v["calls_per_preview_per_round_by_operation"]
        .as_object()
        .unwrap()
        .values()
        .map(|x| x.as_f64().unwrap())
        .sum();
    assert!((split - per).abs() < 0.01, "the split adds up: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_run_counts_the_renewals_among_the_store_writes() {
    // 100 ms a request: a new preview's first pass (several requests in a
    // row) outlasts a quarter of the 1 s lease, so it renews.
    let params = SimParams {
        latency_ms: 100,
        ..SimParams::quick()
    };
    let out = lease::lease(5, Duration::from_secs(1), DEFAULT_PG_URL, &params)
        .await
        .expect("lease runs");
    let v = out.json;
    assert_eq!(
        (v["scenario"].as_str(), v["n"].as_u64()),
        (Some("lease"), Some(5))
    );
    let calls = v["store_calls"].as_object().expect("calls by method");
    let of = |m: &str| calls.get(m).and_then(Value::as_u64).unwrap_or(0);
    assert_eq!(of("apply"), 5, "one dispatch each: {v}");
    assert_eq!(v["passes"], of("record_status"), "{v}");
    assert!(of("record_status") >= 5, "every preview was recorded: {v}");
    assert_eq!(v["lease_renewals"], of("renew_lease"), "{v}");
    assert!(of("renew_lease") > 0, "long first passes renew: {v}");
    let writes: u64 = calls
        .iter()
        .filter(|(m, _)| !READS.contains(&m.as_str()))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    assert_eq!(v["writing_calls"], writes, "{v}");
    let share = of("renew_lease") as f64 / writes as f64;
    assert!(
        (v["renewal_share_of_writes"].as_f64().unwrap() - share).abs() < 0.001,
        "{v}"
    );
}

/// The trace on a few previews and hours: its figures agree with one
/// another and with the sim (its own process: it installs the metrics
/// recorder that attributes the idle check's requests).
#[test]
fn a_short_trace_sleeps_wakes_and_counts_the_idle_checks_requests() {
    use previewd_bench::scenarios::trace::{TraceParams, trace};
    let p = TraceParams {
        n: 4,
        hours: 4,
        sessions: 2,
        session_minutes: 20,
        seed: 7,
        idle_after_secs: 3600,
        check_interval_secs: 300,
        retry_after_secs: 5,
        read_every_check: false,
    };
    let v = trace(p, SimParams::quick()).expect("the trace runs").json;
    assert_eq!(v["scenario"], "trace");
    let with = v["task_hours_with_sleep"].as_f64().unwrap();
    assert!(with > 0.0 && with < 16.0, "{v}");
    assert!(
        v["sleeps"].as_u64().unwrap() >= 4,
        "all slept after the first hour: {v}"
    );
    // Every wake was caused by a visitor, who saw it through.
    assert_eq!(v["wakes"], v["wakes_measured"], "{v}");
    assert_eq!(v["visits"]["gave_up"], 0, "{v}");
    // GetMetricData is the idle check's alone.
    assert_eq!(
        v["idle_check_requests_by_operation"]["cloudwatch:GetMetricData"],
        v["get_metric_data_total"],
        "{v}"
    );
    let checks = v["idle_check_checks"].as_u64().unwrap();
    assert!(v["get_metric_data_total"].as_u64().unwrap() < checks, "{v}");
}
