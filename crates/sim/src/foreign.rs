//! Other people's resources, preloaded for tests: none carries previewd's
//! ownership tag unless the test gives it one. Setup is neither metered
//! nor throttled, and a conflict is a bug in the test, so it panics.

use crate::Sim;
use crate::config::{ACCOUNT, SimAlb};
use crate::dns::normalize;
use crate::elb::{ElbState, Rule, TargetGroup, rule_arn_base};
use crate::logs::LogGroup;
use crate::service::{Service, Status};
use crate::taskdefs::Revision;
use previewd_core::observed::{DnsRecord, RolloutState};
use previewd_core::render::{ContainerDefinition, TaskDefinition};
use previewd_core::tags::Tags;
use std::collections::BTreeMap;

impl Sim {
    /// A rule with a fixed-response action on the first load balancer's
    /// listener; returns its ARN.
    pub fn add_foreign_rule(&self, priority: i32, host: &str, tags: Tags) -> String {
        let listener = self.lock().cfg.albs[0].listener_arn.clone();
        self.insert_rule(&listener, priority, host, None, tags)
    }

    /// A rule on the first load balancer's listener forwarding to
    /// `target_group_arn`, which then counts toward that load balancer's
    /// target groups; returns its ARN.
    pub fn add_foreign_rule_forwarding(
        &self,
        priority: i32,
        host: &str,
        target_group_arn: &str,
        tags: Tags,
    ) -> String {
        let listener = self.lock().cfg.albs[0].listener_arn.clone();
        self.insert_rule(
            &listener,
            priority,
            host,
            Some(target_group_arn.to_string()),
            tags,
        )
    }

    fn insert_rule(
        &self,
        listener: &str,
        priority: i32,
        host: &str,
        tg: Option<String>,
        tags: Tags,
    ) -> String {
        let mut w = self.lock();
        let taken = w
            .elb
            .rules
            .values()
            .any(|r| r.listener == listener && r.priority == Some(priority));
        assert!(!taken, "test setup: priority {priority} is already in use");
        if let Some(tg) = &tg {
            assert!(
                w.elb.target_groups.contains_key(tg),
                "test setup: no target group {tg}"
            );
        }
        let rule = Rule {
            arn: w.rule_arn(listener),
            listener: listener.to_string(),
            priority: Some(priority),
            hosts: vec![host.to_string()],
            target_group_arn: tg,
            tags,
            auth: None,
        };
        let arn = rule.arn.clone();
        w.elb.rules.insert(arn.clone(), rule);
        arn
    }

    /// Replaces the tags of a rule or target group, as a person in the
    /// console would.
    pub fn set_elb_tags(&self, arn: &str, tags: Tags) {
        let mut w = self.lock();
        if let Some(tg) = w.elb.target_groups.get_mut(arn) {
            tg.tags = tags;
        } else if let Some(rule) = w.elb.rules.get_mut(arn) {
            rule.tags = tags;
        } else {
            panic!("test setup: no rule or target group {arn}");
        }
    }

    /// A target group on port 80; returns its ARN.
    pub fn add_foreign_target_group(&self, name: &str, tags: Tags) -> String {
        let mut w = self.lock();
        assert!(
            w.elb.by_name(name).is_none(),
            "test setup: target group {name} exists"
        );
        let tg = TargetGroup {
            arn: w.tg_arn(name),
            name: name.to_string(),
            port: 80,
            vpc_id: "vpc-foreign".into(),
            health_check_path: "/".into(),
            tags,
            targets: Vec::new(),
        };
        let arn = tg.arn.clone();
        w.elb.target_groups.insert(arn.clone(), tg);
        arn
    }

    /// A record set in the zone, replacing any of the same name and type.
    pub fn add_foreign_record(&self, record: DnsRecord) {
        let r = normalize(&record);
        self.lock().dns.records.insert((r.name.clone(), r.kind), r);
    }

    /// A log group with no retention and no tags.
    pub fn add_foreign_log_group(&self, name: &str) {
        self.lock()
            .logs
            .groups
            .insert(name.to_string(), LogGroup::default());
    }

    /// An ACTIVE revision of `family` without tags; returns its ARN.
    pub fn add_foreign_task_definition(&self, family: &str) -> String {
        let mut w = self.lock();
        let revision = w.ecs.families.get(family).map_or(0, Vec::len) as i64 + 1;
        let arn = format!(
            "arn:aws:ecs:{}:{}:task-definition/{family}:{revision}",
            w.cfg.region,
            crate::ACCOUNT
        );
        let def = TaskDefinition {
            family: family.to_string(),
            cpu: "256".into(),
            memory: "512".into(),
            execution_role_arn: None,
            task_role_arn: None,
            container: ContainerDefinition {
                name: "app".into(),
                image: "public.ecr.aws/nginx/nginx:latest".into(),
                port: 80,
                env: BTreeMap::new(),
                secrets: BTreeMap::new(),
                log_group: previewd_core::naming::log_group_name(family),
                log_region: w.cfg.region.clone(),
                log_stream_prefix: "app".into(),
            },
            spec_hash: String::new(),
            tags: Tags::new(),
        };
        let rev = Revision {
            arn: arn.clone(),
            revision,
            active: true,
            def,
        };
        w.ecs
            .families
            .entry(family.to_string())
            .or_default()
            .push(rev);
        arn
    }

    /// An ACTIVE service with one running task and no tags.
    pub fn add_foreign_service(&self, name: &str) {
        let td = self.add_foreign_task_definition(name);
        let mut w = self.lock();
        let exists = w
            .ecs
            .services
            .get(name)
            .is_some_and(|s| s.status != Status::Inactive);
        assert!(!exists, "test setup: service {name} exists");
        let mut deploy = w.new_deployment(td, 1);
        deploy.launch_at = None;
        deploy.rollout = RolloutState::Completed;
        deploy.tasks.push("10.1.0.1".into());
        let svc = Service {
            name: name.to_string(),
            arn: format!(
                "arn:aws:ecs:{}:{}:service/{}/{name}",
                w.cfg.region,
                crate::ACCOUNT,
                w.cfg.cluster
            ),
            status: Status::Active,
            desired: 1,
            target_group_arn: None,
            deployments: vec![deploy],
            tags: Tags::new(),
            deleted_at: None,
            stopped: Vec::new(),
        };
        w.ecs.services.insert(name.to_string(), svc);
    }
}

/// The `i`-th load balancer's foreign rules, each forwarding to its own
/// foreign target group, as the world starts.
pub(crate) fn preload(state: &mut ElbState, i: usize, alb: &SimAlb, region: &str) {
    for k in 0..alb.foreign {
        let name = format!("team-{i}-{k}");
        let tg = TargetGroup {
            arn: format!(
                "arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:targetgroup/{name}/{:016x}",
                0xf000_0000u64 + (i * 10_000 + k) as u64
            ),
            name,
            port: 80,
            vpc_id: "vpc-foreign".into(),
            health_check_path: "/".into(),
            tags: Tags::new(),
            targets: Vec::new(),
        };
        let rule = Rule {
            arn: format!(
                "{}/{:016x}",
                rule_arn_base(&alb.listener_arn),
                0xf000_0000u64 + k as u64
            ),
            listener: alb.listener_arn.clone(),
            // Below any band previewd is given.
            priority: Some(k as i32 + 1),
            hosts: vec![format!("team-{k}.example.com")],
            target_group_arn: Some(tg.arn.clone()),
            tags: Tags::new(),
            auth: None,
        };
        state.target_groups.insert(tg.arn.clone(), tg);
        state.rules.insert(rule.arn.clone(), rule);
    }
}
