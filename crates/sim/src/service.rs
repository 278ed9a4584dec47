//! An ECS service and its deployments, and what happens to their tasks.

use crate::elb::ElbState;
use crate::logs::LogsState;
use crate::taskdefs::{Families, lookup};
use previewd_core::CloudError;
use previewd_core::observed::{Deployment, ObservedService, RolloutState, ServiceStatus};
use previewd_core::tags::Tags;
use std::collections::BTreeMap;
use tokio::time::Instant;

/// Why a task whose awslogs group is missing never starts, word for word.
pub const LOG_GROUP_MISSING: &str = "ResourceInitializationError: failed to validate logger \
args: create stream has been retried 1 times: failed to create Cloudwatch log stream: \
ResourceNotFoundException: The specified log group does not exist.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Active,
    Draining,
    Inactive,
}

/// The simulated ECS knows exactly these three; what previewd sees of
/// them is core's [`ServiceStatus`].
impl From<Status> for ServiceStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Active => ServiceStatus::Active,
            Status::Draining => ServiceStatus::Draining,
            Status::Inactive => ServiceStatus::Inactive,
        }
    }
}

/// One deployment: a task definition and the tasks running it.
#[derive(Debug, Clone)]
pub(crate) struct Deploy {
    pub id: String,
    pub task_definition: String,
    pub primary: bool,
    pub desired: i32,
    /// The private IPs of its running tasks.
    pub tasks: Vec<String>,
    pub rollout: RolloutState,
    pub reason: Option<String>,
    /// When its missing tasks will have started, or failed to.
    pub launch_at: Option<Instant>,
    /// Its tasks that failed to start in a row, which trip the circuit
    /// breaker at [`crate::SimConfig::circuit_breaker_threshold`].
    pub failed_tasks: u32,
}

/// A stopped task, as ListTasks (STOPPED) and DescribeTasks show it.
#[derive(Debug, Clone)]
pub(crate) struct StoppedTask {
    /// The id of the deployment that launched it.
    pub started_by: String,
    pub reason: String,
}

/// How many stopped tasks a service remembers (ECS lists them for about
/// an hour; a ListTasks page holds 100).
const STOPPED_KEPT: usize = 100;

#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub name: String,
    pub arn: String,
    pub status: Status,
    pub desired: i32,
    pub target_group_arn: Option<String>,
    /// Oldest first; the last one is the primary.
    pub deployments: Vec<Deploy>,
    pub tags: Tags,
    /// When DeleteService turned it DRAINING.
    pub deleted_at: Option<Instant>,
    /// Its stopped tasks, oldest first.
    pub stopped: Vec<StoppedTask>,
}

impl Service {
    /// Records a task of deployment `started_by` stopping for `reason`.
    pub(crate) fn task_stopped(&mut self, started_by: String, reason: String) {
        self.stopped.push(StoppedTask { started_by, reason });
        if self.stopped.len() > STOPPED_KEPT {
            self.stopped.remove(0);
        }
    }

    pub(crate) fn primary_mut(&mut self) -> &mut Deploy {
        self.deployments
            .last_mut()
            .expect("a service always has a deployment")
    }

    pub(crate) fn primary_task_definition(&self) -> &str {
        self.deployments
            .last()
            .map_or("", |d| d.task_definition.as_str())
    }

    pub(crate) fn running(&self) -> i32 {
        self.deployments.iter().map(|d| d.tasks.len() as i32).sum()
    }

    /// Stops `deploy`'s tasks beyond `keep`, taking them out of the target group.
    pub(crate) fn stop_tasks(&mut self, deploy: usize, keep: usize, elb: &mut ElbState) {
        let by = self.primary_mut().id.clone();
        let d = &mut self.deployments[deploy];
        if d.tasks.len() <= keep {
            return;
        }
        let started_by = d.id.clone();
        let stopped = d.tasks.split_off(keep);
        for ip in &stopped {
            if let Some(tg) = &self.target_group_arn {
                elb.deregister(tg, ip);
            }
        }
        for _ in stopped {
            let reason = format!("Scaling activity initiated by (deployment {by})");
            self.task_stopped(started_by.clone(), reason);
        }
    }

    /// Drops every deployment but the primary, stopping their tasks.
    pub(crate) fn retire_old(&mut self, elb: &mut ElbState) {
        let old = self.deployments.len() - 1;
        for i in 0..old {
            self.stop_tasks(i, 0, elb);
        }
        self.deployments.drain(..old);
    }

    /// Scaled to zero: nothing runs, nothing is left to roll out.
    pub(crate) fn settle_at_zero(&mut self, elb: &mut ElbState) {
        self.retire_old(elb);
        self.stop_tasks(0, 0, elb);
        let p = self.primary_mut();
        p.launch_at = None;
        if p.rollout == RolloutState::InProgress {
            p.rollout = RolloutState::Completed;
        }
    }

    pub(crate) fn observed(&self) -> ObservedService {
        ObservedService {
            name: self.name.clone(),
            arn: self.arn.clone(),
            status: self.status.into(),
            task_definition: self.primary_task_definition().to_string(),
            desired_count: self.desired,
            running_count: self.running(),
            target_group_arn: self.target_group_arn.clone(),
            // ECS lists the PRIMARY deployment first, then older ones.
            deployments: self
                .deployments
                .iter()
                .rev()
                .map(|d| Deployment {
                    id: d.id.clone(),
                    primary: d.primary,
                    task_definition: d.task_definition.clone(),
                    desired_count: d.desired,
                    running_count: d.tasks.len() as i32,
                    rollout_state: d.rollout,
                    rollout_reason: d.reason.clone(),
                })
                .collect(),
            tags: self.tags.clone(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct EcsState {
    pub families: Families,
    pub services: BTreeMap<String, Service>,
    /// Services whose tasks fail to start, with the reason (a test knob).
    pub failing: BTreeMap<String, String>,
    /// Feeds task IPs.
    pub tasks_started: u32,
}

/// Why the primary deployment's tasks cannot start, if they cannot.
pub(crate) fn start_failure(
    svc: &Service,
    families: &Families,
    failing: &BTreeMap<String, String>,
    logs: &LogsState,
) -> Option<String> {
    if let Some(reason) = failing.get(&svc.name) {
        return Some(reason.clone());
    }
    let rev = lookup(families, svc.primary_task_definition())?;
    (!logs.groups.contains_key(&rev.def.container.log_group)).then(|| LOG_GROUP_MISSING.to_string())
}

pub(crate) fn not_found(status: Option<Status>) -> CloudError {
    match status {
        Some(Status::Draining) => {
            CloudError::NotFound("ServiceNotActiveException: Service was not ACTIVE.".into())
        }
        _ => CloudError::NotFound("ServiceNotFoundException: Service not found.".into()),
    }
}
