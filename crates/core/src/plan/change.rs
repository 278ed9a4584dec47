//! The steps a plan is made of, in our words.

use crate::error::{CloudError, ErrorClass, gone_is_fine};
use crate::render::{DnsChange, RuleSpec, ServiceSpec, TargetGroupSpec, TaskDefinition};
use crate::tags::Tags;

/// One step of a plan, in our words; the executor applies them in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    CreateLogGroup {
        name: String,
        retention_days: i32,
        tags: Tags,
    },
    SetLogRetention {
        name: String,
        retention_days: i32,
    },
    RegisterTaskDefinition(TaskDefinition),
    CreateTargetGroup(TargetGroupSpec),
    /// Store-side: hold this priority for the row before using it.
    ReservePriority(i32),
    /// `target_group_arn` is `None` when the group is created earlier in
    /// the same plan.
    CreateRule {
        spec: RuleSpec,
        target_group_arn: Option<String>,
    },
    ModifyRule {
        arn: String,
        spec: RuleSpec,
        target_group_arn: Option<String>,
    },
    /// `task_definition_arn` is `None` when registered earlier in the plan.
    CreateService {
        spec: ServiceSpec,
        task_definition_arn: Option<String>,
        /// `None`: the one created earlier in the same plan.
        target_group_arn: Option<String>,
    },
    UpdateService {
        name: String,
        task_definition_arn: Option<String>,
        desired_count: i32,
        tags: Tags,
    },
    ChangeDns(Vec<DnsChange>),
    DeleteService {
        name: String,
    },
    DeleteRule {
        arn: String,
    },
    /// Store-side: give the row's priority back.
    ReleasePriority,
    DeleteTargetGroup {
        arn: String,
    },
    DeregisterTaskDefinitions {
        family: String,
    },
    /// One superseded revision of a preview's own family.
    DeregisterTaskDefinition {
        arn: String,
    },
    DeleteLogGroup {
        name: String,
    },
}

impl Change {
    /// The AWS operation (or store step) this change performs, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Change::CreateLogGroup { .. } => "CreateLogGroup",
            Change::SetLogRetention { .. } => "PutRetentionPolicy",
            Change::RegisterTaskDefinition(_) => "RegisterTaskDefinition",
            Change::CreateTargetGroup(_) => "CreateTargetGroup",
            Change::ReservePriority(_) => "ReservePriority",
            Change::CreateRule { .. } => "CreateRule",
            Change::ModifyRule { .. } => "ModifyRule",
            Change::CreateService { .. } => "CreateService",
            Change::UpdateService { .. } => "UpdateService",
            Change::ChangeDns(_) => "ChangeResourceRecordSets",
            Change::DeleteService { .. } => "DeleteService",
            Change::DeleteRule { .. } => "DeleteRule",
            Change::ReleasePriority => "ReleasePriority",
            Change::DeleteTargetGroup { .. } => "DeleteTargetGroup",
            Change::DeregisterTaskDefinitions { .. } | Change::DeregisterTaskDefinition { .. } => {
                "DeregisterTaskDefinition"
            }
            Change::DeleteLogGroup { .. } => "DeleteLogGroup",
        }
    }

    /// Whether this change has done its job although its call failed with
    /// `e`: a delete of something already gone ([`gone_is_fine`]), or a
    /// log group that exists already (a lost response of ours made it; the
    /// next observation adopts it). The deregistration of a superseded
    /// revision is cleanup the Ready it comes with must not wait for: one
    /// that fails for a while (throttled: it shares RegisterTaskDefinition's
    /// one request a second) is left for the next rollout. One refused for
    /// good (a permission) still fails the pass, so a person sees it.
    pub fn done_despite(&self, e: &CloudError) -> bool {
        match self {
            Change::DeregisterTaskDefinition { .. } => {
                gone_is_fine(Err(e.clone())).is_ok() || e.class() == ErrorClass::Retryable
            }
            Change::DeleteService { .. }
            | Change::DeleteRule { .. }
            | Change::DeleteTargetGroup { .. }
            | Change::DeleteLogGroup { .. } => gone_is_fine(Err(e.clone())).is_ok(),
            Change::CreateLogGroup { .. } => matches!(e, CloudError::AlreadyExists(_)),
            _ => false,
        }
    }
}
