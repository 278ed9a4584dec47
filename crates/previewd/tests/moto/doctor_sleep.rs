//! `previewd doctor` on the waker target groups of sleep (issue 18): one
//! on its own load balancer with previewd registered is OK; one keyed by
//! another load balancer than the one it is on, with no target, is a
//! problem on both counts, each with its fix.

use crate::harness::{Moto, previewd, write_config};
use serde_json::json;

/// `app/<name>/<id>` of a listener ARN.
fn load_balancer(listener: &str) -> String {
    let rest = listener.split(":listener/").nth(1).unwrap();
    rest.split('/').take(3).collect::<Vec<_>>().join("/")
}

/// The verdict of the row named `check` whose detail starts with `lb`.
fn verdict(table: &str, check: &str, lb: &str) -> String {
    table
        .lines()
        .find(|l| l.starts_with(&format!("{check:<28} ")) && l.contains(&format!("{lb}: ")))
        .unwrap_or_else(|| panic!("no {check} row for {lb} in:\n{table}"))
        .split_whitespace()
        .find(|w| ["OK", "WARNING", "PROBLEM"].contains(w))
        .unwrap()
        .to_owned()
}

#[test]
fn doctor_checks_each_waker_is_on_its_own_load_balancer_with_previewd_registered() {
    let moto = Moto::start();
    let mut world = moto.world(&["setup"]);
    let vpc = world["vpc_id"].as_str().unwrap().to_owned();
    let subnets: Vec<String> = world["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    let second = moto.world(&[
        "second-alb",
        &vpc,
        &subnets[0],
        &subnets[1],
        world["security_group"].as_str().unwrap(),
    ]);
    let l1 = world["listener_arn"].as_str().unwrap().to_owned();
    let l2 = second["listener_arn"].as_str().unwrap();
    let (lb1, lb2) = (load_balancer(&l1), load_balancer(l2));
    let waker = |name: &str| {
        moto.world(&["waker-target-group", &vpc, name])["arn"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (good, astray) = (waker("previewd-waker"), waker("previewd-waker-2"));
    // The good one: on the first load balancer, previewd registered.
    moto.world(&["attach", &l1, &good, "9"]);
    moto.world(&["register-target", &good]);
    // The other is keyed by the second load balancer but attached to the
    // first, and nothing is registered in it.
    moto.world(&["attach", &l1, &astray, "8"]);
    world["extra_toml"] = json!(format!(
        "[sleep]\nenabled = true\n[sleep.waker_target_groups]\n\"{lb1}\" = \"{good}\"\n\"{lb2}\" = \"{astray}\"\n"
    ));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, &world);
    let out = previewd(&dir, &moto, ("testing", "testing"), &[])
        .arg("--config")
        .arg(&config)
        .arg("doctor")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert_eq!(verdict(&table, "waker target group", &lb1), "OK", "{table}");
    assert_ne!(verdict(&table, "waker target", &lb1), "PROBLEM", "{table}");
    assert_eq!(
        verdict(&table, "waker target group", &lb2),
        "PROBLEM",
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "not on {lb2}: that load balancer's rules cannot forward to it"
        )),
        "{table}"
    );
    assert_eq!(verdict(&table, "waker target", &lb2), "PROBLEM", "{table}");
    assert!(
        table.contains("no target registered in the waker group"),
        "{table}"
    );
    assert!(
        table.contains("register previewd's waker port (sleep.waker_listen)"),
        "{table}"
    );
}
