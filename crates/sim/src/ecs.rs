//! ECS service calls: create/update/delete with ECS's refusals, and the
//! clock that rolls deployments out (or fails them) over time.

use crate::config::ACCOUNT;
use crate::service::{Deploy, EcsState, Service, Status, not_found, start_failure};
use crate::world::{World, invalid};
use previewd_core::CloudError;
use previewd_core::error::gone_is_fine;
use previewd_core::naming::is_ecs_name;
use previewd_core::observed::{ObservedService, RolloutState};
use previewd_core::operations::{ECS_TAG_RESOURCE, Op};
use previewd_core::ports::CloudResult;
use previewd_core::render::ServiceSpec;
use previewd_core::tags::Tags;

impl World {
    fn service_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:ecs:{}:{ACCOUNT}:service/{}/{name}",
            self.cfg.region, self.cfg.cluster
        )
    }

    /// A new PRIMARY deployment whose tasks start after `service_stable_after`.
    pub(crate) fn new_deployment(&mut self, task_definition: String, desired: i32) -> Deploy {
        let id = self.next_id();
        Deploy {
            id: format!("ecs-svc/{id:019}"),
            task_definition,
            primary: true,
            desired,
            tasks: Vec::new(),
            rollout: RolloutState::InProgress,
            reason: None,
            launch_at: Some(self.now + self.cfg.service_stable_after),
            failed_tasks: 0,
        }
    }

    /// Finishes draining and starts (or fails) every launch that is due.
    pub(crate) fn advance_ecs(&mut self) {
        let now = self.now;
        let drain_after = self.cfg.drain_after;
        let relaunch_after = self.cfg.failed_task_relaunch_after;
        let threshold = self.cfg.circuit_breaker_threshold.max(1);
        let World { ecs, elb, logs, .. } = self;
        let EcsState {
            families,
            services,
            failing,
            tasks_started,
        } = ecs;
        for svc in services.values_mut() {
            if svc.status == Status::Draining
                && svc.deleted_at.is_some_and(|t| t + drain_after <= now)
            {
                svc.status = Status::Inactive;
            }
            if svc.status != Status::Active {
                continue;
            }
            let Some(at) = svc.deployments.last().and_then(|d| d.launch_at) else {
                continue;
            };
            if at > now {
                continue;
            }
            let failure = start_failure(svc, families, failing, logs);
            let tg = svc.target_group_arn.clone();
            let p = svc.primary_mut();
            p.launch_at = None;
            if let Some(reason) = failure {
                // Each launch due by now fails and stops with the reason;
                // ECS launches a replacement until the breaker trips.
                let mut due = at;
                let mut stopped = Vec::new();
                loop {
                    p.failed_tasks += 1;
                    stopped.push(p.id.clone());
                    if p.rollout != RolloutState::InProgress {
                        // No rollout to fail: the task stays stopped.
                        break;
                    }
                    if p.failed_tasks >= threshold {
                        p.rollout = RolloutState::Failed;
                        p.reason = Some(reason.clone());
                        break;
                    }
                    due += relaunch_after;
                    if due > now {
                        p.launch_at = Some(due);
                        break;
                    }
                }
                for by in stopped {
                    svc.task_stopped(by, reason.clone());
                }
                continue;
            }
            while (p.tasks.len() as i32) < p.desired {
                *tasks_started += 1;
                let n = *tasks_started;
                let ip = format!("10.0.{}.{}", n / 250, n % 250 + 1);
                if let Some(tg) = &tg {
                    elb.register(tg, &ip, at);
                }
                p.tasks.push(ip);
            }
            if p.rollout == RolloutState::InProgress {
                p.rollout = RolloutState::Completed;
                p.reason = Some(format!("ECS deployment {} completed.", p.id));
            }
            svc.retire_old(elb);
        }
    }

    pub(crate) fn ecs_services(&mut self, names: &[String]) -> CloudResult<Vec<ObservedService>> {
        let cluster = format!(
            "arn:aws:ecs:{}:{ACCOUNT}:cluster/{}",
            self.cfg.region, self.cfg.cluster
        );
        // DescribeServices takes at most ten names.
        for _ in names.chunks(10) {
            self.gate(Op::DescribeServices, &cluster)?;
        }
        Ok(names
            .iter()
            .filter_map(|n| self.ecs.services.get(n))
            .map(Service::observed)
            .collect())
    }

    /// ListServices: ACTIVE and DRAINING services, 100 to a page.
    pub(crate) fn ecs_service_names(&mut self) -> CloudResult<Vec<String>> {
        let cluster = format!(
            "arn:aws:ecs:{}:{ACCOUNT}:cluster/{}",
            self.cfg.region, self.cfg.cluster
        );
        let names: Vec<String> = self
            .ecs
            .services
            .values()
            .filter(|s| s.status != Status::Inactive)
            .map(|s| s.name.clone())
            .collect();
        for _ in 0..Self::pages(names.len(), 100) {
            self.gate(Op::ListServices, &cluster)?;
        }
        Ok(names)
    }

    pub(crate) fn ecs_create_service(
        &mut self,
        spec: &ServiceSpec,
        td: &str,
        target_group: Option<&str>,
    ) -> CloudResult<()> {
        let arn = self.service_arn(&spec.name);
        self.gate(Op::CreateService, &arn)?;
        if !spec.tags.is_empty() {
            self.authorize(&ECS_TAG_RESOURCE.action(), &arn)?;
        }
        if !is_ecs_name(&spec.name) {
            return Err(invalid(
                "InvalidParameterException",
                format!(
                    "Service name '{}' must be up to 255 letters, numbers, hyphens and underscores",
                    spec.name
                ),
            ));
        }
        let existing = self.ecs.services.get(&spec.name).map(|s| s.status);
        if existing.is_some_and(|s| s != Status::Inactive) {
            return Err(CloudError::AlreadyExists(
                "InvalidParameterException: Creation of service was not idempotent.".into(),
            ));
        }
        let td_arn = self.usable_revision(td)?;
        if spec.desired_count < 0 {
            return Err(invalid(
                "InvalidParameterException",
                "desiredCount must be at least 0",
            ));
        }
        let target_group_arn = if let Some(wanted) = target_group {
            let tg = self.elb.target_groups.get(wanted).ok_or_else(|| {
                CloudError::NotFound(format!(
                    "TargetGroupNotFound: One or more target groups not found: {wanted}"
                ))
            })?;
            if !self.elb.is_attached(&tg.arn) {
                return Err(invalid(
                    "InvalidParameterException",
                    format!(
                        "The target group with targetGroupArn {} does not have an associated load balancer.",
                        tg.arn
                    ),
                ));
            }
            Some(tg.arn.clone())
        } else {
            None
        };
        let mut svc = Service {
            name: spec.name.clone(),
            arn,
            status: Status::Active,
            desired: spec.desired_count,
            target_group_arn,
            deployments: vec![self.new_deployment(td_arn, spec.desired_count)],
            tags: spec.tags.clone(),
            deleted_at: None,
            stopped: Vec::new(),
        };
        if spec.desired_count == 0 {
            svc.settle_at_zero(&mut self.elb);
        }
        self.ecs.services.insert(spec.name.clone(), svc);
        self.applied(Op::CreateService)
    }

    /// UpdateService, then TagResource when `tags` would change something.
    /// A new task definition, or a primary whose rollout FAILED, starts a new
    /// deployment (as forceNewDeployment would); a new count only rescales.
    pub(crate) fn ecs_update_service(
        &mut self,
        name: &str,
        td: &str,
        desired: i32,
        tags: &Tags,
    ) -> CloudResult<()> {
        let arn = self.service_arn(name);
        self.gate(Op::UpdateService, &arn)?;
        let status = self.ecs.services.get(name).map(|s| s.status);
        if status != Some(Status::Active) {
            return Err(not_found(status));
        }
        if desired < 0 {
            return Err(invalid(
                "InvalidParameterException",
                "desiredCount must be at least 0",
            ));
        }
        let current = self.ecs.services[name]
            .deployments
            .last()
            .cloned()
            .expect("has a deployment");
        let same_td = self
            .find_revision(td)
            .is_some_and(|r| r.arn == current.task_definition);
        let td_arn = if same_td {
            current.task_definition.clone()
        } else {
            self.usable_revision(td)?
        };
        // A scale up from zero starts afresh too: the adapter forces a new
        // deployment for any UpdateService that wants tasks.
        let from_zero = current.desired == 0 && desired > 0;
        let fresh = (!same_td || current.rollout == RolloutState::Failed || from_zero)
            .then(|| self.new_deployment(td_arn, desired));
        let now = self.now;
        let launch_at = now + self.cfg.service_stable_after;
        let svc = self.ecs.services.get_mut(name).expect("checked above");
        svc.desired = desired;
        if let Some(mut deploy) = fresh {
            for d in &mut svc.deployments {
                d.primary = false;
                d.launch_at = None;
            }
            if desired == 0 {
                deploy.launch_at = None;
            }
            svc.deployments.push(deploy);
        } else {
            let p = svc.deployments.len() - 1;
            svc.deployments[p].desired = desired;
            svc.stop_tasks(p, desired as usize, &mut self.elb);
            let d = &mut svc.deployments[p];
            if (d.tasks.len() as i32) < desired && d.launch_at.is_none() {
                d.launch_at = Some(launch_at);
            }
        }
        if desired == 0 {
            svc.settle_at_zero(&mut self.elb);
        }
        self.applied(Op::UpdateService)?;
        let changes = tags
            .iter()
            .any(|(k, v)| self.ecs.services[name].tags.get(k) != Some(v));
        if changes {
            self.gate(Op::TagResource, &arn)?;
            let svc = self.ecs.services.get_mut(name).expect("checked above");
            svc.tags
                .extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
            self.applied(Op::TagResource)?;
        }
        Ok(())
    }

    pub(crate) fn ecs_delete_service(&mut self, name: &str) -> CloudResult<()> {
        let arn = self.service_arn(name);
        self.gate(Op::DeleteService, &arn)?;
        let now = self.now;
        // What AWS answers for a service gone or going, and what the port
        // calls success.
        let Some(svc) = self.ecs.services.get_mut(name) else {
            return gone_is_fine(Err(not_found(None)));
        };
        if svc.status != Status::Active {
            return gone_is_fine(Err(not_found(Some(svc.status))));
        }
        if svc.desired > 0 {
            return Err(CloudError::ResourceInUse(
                "The service cannot be stopped while it is scaled above 0".into(),
            ));
        }
        svc.settle_at_zero(&mut self.elb);
        svc.status = Status::Draining;
        svc.deleted_at = Some(now);
        self.applied(Op::DeleteService)
    }

    /// ListTasks (STOPPED), then DescribeTasks when one is found: the
    /// reason of the newest one `deployment` launched.
    pub(crate) fn ecs_stopped_reason(
        &mut self,
        name: &str,
        deployment: &str,
    ) -> CloudResult<Option<String>> {
        let arn = self.service_arn(name);
        self.gate(Op::ListTasks, &arn)?;
        let Some(svc) = self.ecs.services.get(name) else {
            return Ok(None);
        };
        if svc.stopped.is_empty() {
            return Ok(None);
        }
        let reason = svc
            .stopped
            .iter()
            .rev()
            .find(|t| t.started_by == deployment)
            .map(|t| t.reason.clone());
        self.gate(Op::DescribeTasks, &arn)?;
        Ok(reason)
    }
}
