//! The simulator's AWS rules, one test per rule, through the public ports.

mod access;
mod breaker;
mod dns;
mod ecs;
mod elb;
mod images;
mod knobs;
mod logs;
mod pacing;

use previewd_core::ports::{Compute, LoadBalancer, Logs};
use previewd_core::render::{
    ContainerDefinition, RuleSpec, ServiceSpec, TargetGroupSpec, TaskDefinition,
};
use previewd_core::tags::{Tags, ownership_tags};
use previewd_sim::{Sim, SimConfig};
use std::collections::BTreeMap;

pub const CONTROLLER: &str = "previewd";

pub fn sim() -> Sim {
    Sim::new(SimConfig::default())
}

pub fn ours(slug: &str) -> Tags {
    ownership_tags(
        CONTROLLER,
        "acme/shop",
        &format!("qanote/{slug}"),
        slug,
        None,
    )
}

pub fn family(slug: &str) -> String {
    format!("pv-{slug}")
}

pub fn task_def(slug: &str) -> TaskDefinition {
    let family = family(slug);
    TaskDefinition {
        family: family.clone(),
        cpu: "256".into(),
        memory: "512".into(),
        execution_role_arn: None,
        task_role_arn: None,
        container: ContainerDefinition {
            name: "app".into(),
            image: "nginx:1".into(),
            port: 80,
            env: BTreeMap::new(),
            secrets: BTreeMap::new(),
            log_group: format!("/ecs/{family}"),
            log_region: "us-east-1".into(),
            log_stream_prefix: "preview".into(),
        },
        spec_hash: "h1".into(),
        tags: ours(slug),
    }
}

pub fn tg_spec(name: &str) -> TargetGroupSpec {
    TargetGroupSpec {
        name: name.into(),
        port: 80,
        vpc_id: "vpc-sim".into(),
        health_check_path: "/".into(),
        tags: ours(name),
    }
}

/// The first load balancer's listener (the default one's).
pub const LISTENER: &str = previewd_core::render::DEFAULT_LISTENER_ARN;

/// The first load balancer with a rule quota of `rules`.
pub fn quota(rules: usize) -> previewd_sim::SimAlb {
    previewd_sim::SimAlb {
        rule_quota: rules,
        ..previewd_sim::SimAlb::numbered("us-east-1", 0)
    }
}

pub fn rule_spec(priority: i32, host: &str) -> RuleSpec {
    RuleSpec {
        priority,
        host: host.into(),
        tags: ours(host),
        listener_arn: LISTENER.into(),
        auth: None,
        client_secret: None,
    }
}

pub fn service_spec(slug: &str) -> ServiceSpec {
    ServiceSpec {
        name: family(slug),
        desired_count: 1,
        subnets: vec!["subnet-a".into()],
        security_groups: vec!["sg-a".into()],
        assign_public_ip: false,
        container_name: "app".into(),
        container_port: 80,
        tags: ours(slug),
    }
}

/// What [`provision`] made.
pub struct Made {
    pub td_arn: String,
    pub tg_arn: String,
    pub rule_arn: String,
}

/// One preview in the design's create order, up to and including the
/// service: log group, task definition, target group, rule, service.
pub async fn provision(sim: &Sim, slug: &str, priority: i32) -> Made {
    let family = family(slug);
    sim.create_log_group(&format!("/ecs/{family}"), 14, &ours(slug))
        .await
        .unwrap();
    let td_arn = sim
        .register_task_definition(&task_def(slug))
        .await
        .unwrap()
        .arn;
    let tg_arn = sim
        .create_target_group(&tg_spec(&family))
        .await
        .unwrap()
        .arn;
    let rule_arn = sim
        .create_rule(
            &rule_spec(priority, &format!("{slug}.preview.example.com")),
            &tg_arn,
        )
        .await
        .unwrap();
    sim.create_service(&service_spec(slug), &td_arn, Some(&tg_arn))
        .await
        .unwrap();
    Made {
        td_arn,
        tg_arn,
        rule_arn,
    }
}

/// The calls made to one API since the last reset.
pub fn calls(sim: &Sim, key: &str) -> u64 {
    sim.calls().get(key).copied().unwrap_or(0)
}
