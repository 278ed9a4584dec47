//! The cloud ports of `previewd_core`, implemented on [`Sim`]: each
//! method is one trip through [`Sim::call`].

use crate::Sim;
use async_trait::async_trait;
use previewd_core::image::{ImageRef, Repository};
use previewd_core::observed::{
    DnsRecord, ListenerState, ObservedLogGroup, ObservedService, ObservedTargetGroup,
    ObservedTaskDefinition, TargetHealth,
};
use previewd_core::ports::{CloudResult, Compute, Dns, Images, LoadBalancer, Logs};
use previewd_core::render::{DnsChange, RuleSpec, ServiceSpec, TargetGroupSpec, TaskDefinition};
use previewd_core::tags::Tags;
use std::collections::BTreeMap;

#[async_trait]
impl Logs for Sim {
    async fn log_groups(&self, prefix: &str) -> CloudResult<Vec<ObservedLogGroup>> {
        self.call(|w| w.logs_list(prefix)).await
    }

    async fn log_group_tags(&self, name: &str) -> CloudResult<Option<Tags>> {
        self.call(|w| w.logs_tags(name)).await
    }

    async fn create_log_group(
        &self,
        name: &str,
        retention_days: i32,
        tags: &Tags,
    ) -> CloudResult<()> {
        self.call(|w| w.logs_create(name, retention_days, tags))
            .await
    }

    async fn set_retention(&self, name: &str, retention_days: i32) -> CloudResult<()> {
        self.call(|w| w.logs_set_retention(name, retention_days))
            .await
    }

    async fn delete_log_group(&self, name: &str) -> CloudResult<()> {
        self.call(|w| w.logs_delete(name)).await
    }
}

#[async_trait]
impl Compute for Sim {
    async fn services(&self, names: &[String]) -> CloudResult<Vec<ObservedService>> {
        self.call(|w| w.ecs_services(names)).await
    }

    async fn service_names(&self) -> CloudResult<Vec<String>> {
        self.call(|w| w.ecs_service_names()).await
    }

    async fn task_definition(&self, family: &str) -> CloudResult<Option<ObservedTaskDefinition>> {
        self.call(|w| w.ecs_task_definition(family)).await
    }

    async fn task_definition_families(&self, prefix: &str) -> CloudResult<Vec<String>> {
        self.call(|w| w.ecs_families(prefix)).await
    }

    async fn register_task_definition(
        &self,
        td: &TaskDefinition,
    ) -> CloudResult<ObservedTaskDefinition> {
        self.call(|w| w.ecs_register(td)).await
    }

    async fn deregister_task_definitions(&self, family: &str) -> CloudResult<()> {
        self.call(|w| w.ecs_deregister(family)).await
    }

    async fn create_service(
        &self,
        spec: &ServiceSpec,
        task_definition_arn: &str,
        target_group_arn: Option<&str>,
    ) -> CloudResult<()> {
        self.call(|w| w.ecs_create_service(spec, task_definition_arn, target_group_arn))
            .await
    }

    async fn update_service(
        &self,
        name: &str,
        task_definition_arn: &str,
        desired_count: i32,
        tags: &Tags,
    ) -> CloudResult<()> {
        self.call(|w| w.ecs_update_service(name, task_definition_arn, desired_count, tags))
            .await
    }

    async fn delete_service(&self, name: &str) -> CloudResult<()> {
        self.call(|w| w.ecs_delete_service(name)).await
    }

    async fn stopped_reason(&self, name: &str, deployment: &str) -> CloudResult<Option<String>> {
        self.call(|w| w.ecs_stopped_reason(name, deployment)).await
    }

    async fn active_revisions(&self, family: &str) -> CloudResult<Vec<String>> {
        self.call(|w| w.ecs_active_revisions(family)).await
    }

    async fn deregister_task_definition(&self, arn: &str) -> CloudResult<()> {
        self.call(|w| w.ecs_deregister_one(arn)).await
    }
}

#[async_trait]
impl LoadBalancer for Sim {
    async fn listener(&self, listener_arn: &str) -> CloudResult<ListenerState> {
        self.call(|w| w.elb_listener(listener_arn)).await
    }

    async fn target_groups(&self, prefix: &str) -> CloudResult<Vec<ObservedTargetGroup>> {
        self.call(|w| w.elb_target_groups(prefix)).await
    }

    async fn tags(&self, arns: &[String]) -> CloudResult<BTreeMap<String, Tags>> {
        self.call(|w| w.elb_tags(arns)).await
    }

    async fn target_health(&self, target_group_arn: &str) -> CloudResult<TargetHealth> {
        self.call(|w| w.elb_target_health(target_group_arn)).await
    }

    async fn create_target_group(
        &self,
        spec: &TargetGroupSpec,
    ) -> CloudResult<ObservedTargetGroup> {
        self.call(|w| w.elb_create_target_group(spec)).await
    }

    async fn delete_target_group(&self, arn: &str) -> CloudResult<()> {
        self.call(|w| w.elb_delete_target_group(arn)).await
    }

    async fn create_rule(&self, spec: &RuleSpec, target_group_arn: &str) -> CloudResult<String> {
        self.call(|w| w.elb_create_rule(spec, target_group_arn))
            .await
    }

    async fn modify_rule(
        &self,
        arn: &str,
        spec: &RuleSpec,
        target_group_arn: &str,
    ) -> CloudResult<()> {
        self.call(|w| w.elb_modify_rule(arn, spec, target_group_arn))
            .await
    }

    async fn set_rule_priority(&self, arn: &str, priority: i32) -> CloudResult<()> {
        self.call(|w| w.elb_set_rule_priority(arn, priority)).await
    }

    async fn delete_rule(&self, arn: &str) -> CloudResult<()> {
        self.call(|w| w.elb_delete_rule(arn)).await
    }
}

#[async_trait]
impl Dns for Sim {
    async fn records(&self) -> CloudResult<Vec<DnsRecord>> {
        self.call(|w| w.dns_records()).await
    }

    async fn change(&self, changes: &[DnsChange]) -> CloudResult<()> {
        self.call(|w| w.dns_change(changes)).await
    }
}

#[async_trait]
impl Images for Sim {
    async fn existing_images(
        &self,
        repository: &Repository,
        references: &[ImageRef],
    ) -> CloudResult<Vec<ImageRef>> {
        self.call(|w| w.ecr_existing(repository, references)).await
    }
}
