//! ECS: task definitions and services in the preview cluster.

use crate::{Aws, Op, tag_map};
use async_trait::async_trait;
use aws_sdk_ecs::types as t;
use previewd_core::CloudError;
use previewd_core::observed::{Deployment, ObservedService, ObservedTaskDefinition, RolloutState};
use previewd_core::ports::{CloudResult, Compute};
use previewd_core::render::{ServiceSpec, TaskDefinition};
use previewd_core::tags::Tags;

/// A request the SDK's builder refused: a bug or a bad template.
fn built<T>(r: Result<T, aws_sdk_ecs::error::BuildError>) -> CloudResult<T> {
    r.map_err(|e| CloudError::Invalid {
        code: "InvalidRequest".into(),
        message: e.to_string(),
    })
}

fn tags(tags: &Tags) -> Vec<t::Tag> {
    tags.iter()
        .map(|(k, v)| t::Tag::builder().key(k).value(v).build())
        .collect()
}

fn observed_tags(tags: &[t::Tag]) -> Tags {
    tag_map(
        tags.iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or("").to_owned()))),
    )
}

fn observed_td(td: &t::TaskDefinition, tags: &[t::Tag]) -> ObservedTaskDefinition {
    ObservedTaskDefinition {
        arn: td.task_definition_arn().unwrap_or_default().to_owned(),
        family: td.family().unwrap_or_default().to_owned(),
        revision: i64::from(td.revision()),
        tags: observed_tags(tags),
    }
}

fn observed_service(s: &t::Service) -> ObservedService {
    let deployments = s
        .deployments()
        .iter()
        .map(|d| Deployment {
            id: d.id().unwrap_or_default().to_owned(),
            primary: d.status() == Some("PRIMARY"),
            task_definition: d.task_definition().unwrap_or_default().to_owned(),
            desired_count: d.desired_count(),
            running_count: d.running_count(),
            rollout_state: match d.rollout_state() {
                Some(t::DeploymentRolloutState::Completed) => RolloutState::Completed,
                Some(t::DeploymentRolloutState::Failed) => RolloutState::Failed,
                _ => RolloutState::InProgress,
            },
            rollout_reason: d.rollout_state_reason().map(str::to_owned),
        })
        .collect();
    ObservedService {
        name: s.service_name().unwrap_or_default().to_owned(),
        arn: s.service_arn().unwrap_or_default().to_owned(),
        status: s.status().unwrap_or_default().into(),
        task_definition: s.task_definition().unwrap_or_default().to_owned(),
        desired_count: s.desired_count(),
        running_count: s.running_count(),
        target_group_arn: s
            .load_balancers()
            .iter()
            .find_map(|lb| lb.target_group_arn().map(str::to_owned)),
        deployments,
        tags: observed_tags(s.tags()),
    }
}

/// The family of a task-definition ARN (`…:task-definition/FAMILY:REV`).
fn family_of(arn: &str) -> Option<&str> {
    let tail = arn.rsplit_once(":task-definition/")?.1;
    Some(tail.rsplit_once(':')?.0)
}

fn container(td: &TaskDefinition) -> CloudResult<t::ContainerDefinition> {
    let c = &td.container;
    let environment = c
        .env
        .iter()
        .map(|(k, v)| t::KeyValuePair::builder().name(k).value(v).build())
        .collect();
    let secrets = c
        .secrets
        .iter()
        .map(|(k, arn)| built(t::Secret::builder().name(k).value_from(arn).build()))
        .collect::<CloudResult<Vec<_>>>()?;
    let logs = built(
        t::LogConfiguration::builder()
            .log_driver(t::LogDriver::Awslogs)
            .options("awslogs-group", &c.log_group)
            .options("awslogs-region", &c.log_region)
            .options("awslogs-stream-prefix", &c.log_stream_prefix)
            .build(),
    )?;
    Ok(t::ContainerDefinition::builder()
        .name(&c.name)
        .image(&c.image)
        .essential(true)
        .port_mappings(
            t::PortMapping::builder()
                .container_port(i32::from(c.port))
                .protocol(t::TransportProtocol::Tcp)
                .build(),
        )
        .set_environment(Some(environment))
        .set_secrets((!secrets.is_empty()).then_some(secrets))
        .log_configuration(logs)
        .build())
}

#[async_trait]
impl Compute for Aws {
    async fn services(&self, names: &[String]) -> CloudResult<Vec<ObservedService>> {
        let mut out = Vec::new();
        for chunk in names.chunks(10) {
            let page = self
                .run(
                    Op::DescribeServices,
                    self.ecs
                        .describe_services()
                        .cluster(&self.settings.cluster)
                        .set_services(Some(chunk.to_vec()))
                        .include(t::ServiceField::Tags)
                        .send(),
                )
                .await?;
            // Names that do not exist come back as `failures` (MISSING).
            out.extend(page.services().iter().map(observed_service));
        }
        Ok(out)
    }

    async fn service_names(&self) -> CloudResult<Vec<String>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .run(
                    Op::ListServices,
                    self.ecs
                        .list_services()
                        .cluster(&self.settings.cluster)
                        .max_results(100)
                        .set_next_token(token.clone())
                        .send(),
                )
                .await?;
            out.extend(
                page.service_arns()
                    .iter()
                    .filter_map(|arn| arn.rsplit('/').next().map(str::to_owned)),
            );
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn task_definition(
        &self,
        reference: &str,
    ) -> CloudResult<Option<ObservedTaskDefinition>> {
        let r = self
            .run(
                Op::DescribeTaskDefinition,
                self.ecs
                    .describe_task_definition()
                    .task_definition(reference)
                    .include(t::TaskDefinitionField::Tags)
                    .send(),
            )
            .await;
        // A bare family names its latest ACTIVE revision; should an
        // endpoint answer with an INACTIVE one (moto does), the family has
        // none, as AWS would say.
        let family_only = !reference.contains(':');
        match r {
            Ok(out) => Ok(out
                .task_definition()
                .filter(|td| {
                    !(family_only && td.status() == Some(&t::TaskDefinitionStatus::Inactive))
                })
                .map(|td| observed_td(td, out.tags()))),
            // ECS says ClientException "Unable to describe task definition".
            Err(CloudError::Invalid { code, .. }) if code == "ClientException" => Ok(None),
            Err(CloudError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn task_definition_families(&self, prefix: &str) -> CloudResult<Vec<String>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .run(
                    Op::ListTaskDefinitionFamilies,
                    self.ecs
                        .list_task_definition_families()
                        .family_prefix(prefix)
                        .status(t::TaskDefinitionFamilyStatus::Active)
                        .set_next_token(token.clone())
                        .send(),
                )
                .await?;
            out.extend(page.families().iter().cloned());
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn register_task_definition(
        &self,
        td: &TaskDefinition,
    ) -> CloudResult<ObservedTaskDefinition> {
        let out = self
            .run(
                Op::RegisterTaskDefinition,
                self.ecs
                    .register_task_definition()
                    .family(&td.family)
                    .requires_compatibilities(t::Compatibility::Fargate)
                    .network_mode(t::NetworkMode::Awsvpc)
                    .cpu(&td.cpu)
                    .memory(&td.memory)
                    .set_execution_role_arn(td.execution_role_arn.clone())
                    .set_task_role_arn(td.task_role_arn.clone())
                    .container_definitions(container(td)?)
                    .set_tags(Some(tags(&td.tags)))
                    .send(),
            )
            .await?;
        let made = out.task_definition().ok_or_else(|| CloudError::Transient {
            code: "EmptyResponse".into(),
            message: "RegisterTaskDefinition returned no task definition".into(),
        })?;
        Ok(observed_td(made, out.tags()))
    }

    async fn deregister_task_definitions(&self, family: &str) -> CloudResult<()> {
        for arn in self.active_revisions(family).await? {
            self.deregister_task_definition(&arn).await?;
        }
        Ok(())
    }

    async fn deregister_task_definition(&self, arn: &str) -> CloudResult<()> {
        self.run(
            Op::DeregisterTaskDefinition,
            self.ecs
                .deregister_task_definition()
                .task_definition(arn)
                .send(),
        )
        .await
        .map(drop)
    }

    async fn active_revisions(&self, family: &str) -> CloudResult<Vec<String>> {
        let mut arns = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .run(
                    Op::ListTaskDefinitions,
                    self.ecs
                        .list_task_definitions()
                        .family_prefix(family)
                        .status(t::TaskDefinitionStatus::Active)
                        .set_next_token(token.clone())
                        .send(),
                )
                .await?;
            // `familyPrefix` is a prefix: `preview-issue-1` also lists
            // `preview-issue-10`, which is another preview's.
            arns.extend(
                page.task_definition_arns()
                    .iter()
                    .filter(|arn| family_of(arn) == Some(family))
                    .cloned(),
            );
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(arns);
            }
        }
    }

    async fn create_service(
        &self,
        spec: &ServiceSpec,
        task_definition_arn: &str,
        target_group_arn: Option<&str>,
    ) -> CloudResult<()> {
        let network = built(
            t::AwsVpcConfiguration::builder()
                .set_subnets(Some(spec.subnets.clone()))
                .set_security_groups(Some(spec.security_groups.clone()))
                .assign_public_ip(if spec.assign_public_ip {
                    t::AssignPublicIp::Enabled
                } else {
                    t::AssignPublicIp::Disabled
                })
                .build(),
        )?;
        let breaker = t::DeploymentCircuitBreaker::builder()
            .enable(true)
            .rollback(true)
            .build();
        let load_balancers = target_group_arn.map(|arn| {
            vec![
                t::LoadBalancer::builder()
                    .target_group_arn(arn)
                    .container_name(&spec.container_name)
                    .container_port(i32::from(spec.container_port))
                    .build(),
            ]
        });
        self.run(
            Op::CreateService,
            self.ecs
                .create_service()
                .cluster(&self.settings.cluster)
                .service_name(&spec.name)
                .task_definition(task_definition_arn)
                .desired_count(spec.desired_count)
                .launch_type(t::LaunchType::Fargate)
                .network_configuration(
                    t::NetworkConfiguration::builder()
                        .awsvpc_configuration(network)
                        .build(),
                )
                .set_load_balancers(load_balancers)
                .deployment_configuration(
                    t::DeploymentConfiguration::builder()
                        .deployment_circuit_breaker(breaker)
                        .build(),
                )
                .propagate_tags(t::PropagateTags::Service)
                .set_tags(Some(tags(&spec.tags)))
                .send(),
        )
        .await
        .map(drop)
    }

    async fn update_service(
        &self,
        name: &str,
        task_definition_arn: &str,
        desired_count: i32,
        tags_wanted: &Tags,
    ) -> CloudResult<()> {
        // The planner asks for UpdateService only for a new revision, a
        // retry of a FAILED rollout, a drifted count, or the scale to zero
        // before a delete. The first three all want a fresh deployment
        // (ECS would not restart a failed rollout of the same revision).
        let out = self
            .run(
                Op::UpdateService,
                self.ecs
                    .update_service()
                    .cluster(&self.settings.cluster)
                    .service(name)
                    .task_definition(task_definition_arn)
                    .desired_count(desired_count)
                    .force_new_deployment(desired_count > 0)
                    .send(),
            )
            .await?;
        let Some(arn) = out.service().and_then(|s| s.service_arn()) else {
            return Ok(());
        };
        if desired_count == 0 || tags_wanted.is_empty() {
            return Ok(());
        }
        self.run(
            Op::TagResource,
            self.ecs
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(tags(tags_wanted)))
                .send(),
        )
        .await
        .map(drop)
    }

    async fn delete_service(&self, name: &str) -> CloudResult<()> {
        let r = self
            .run(
                Op::DeleteService,
                self.ecs
                    .delete_service()
                    .cluster(&self.settings.cluster)
                    .service(name)
                    .send(),
            )
            .await;
        previewd_core::error::gone_is_fine(r.map(drop))
    }

    async fn stopped_reason(&self, name: &str, deployment: &str) -> CloudResult<Option<String>> {
        let listed = self
            .run(
                Op::ListTasks,
                self.ecs
                    .list_tasks()
                    .cluster(&self.settings.cluster)
                    .service_name(name)
                    .desired_status(t::DesiredStatus::Stopped)
                    .max_results(100)
                    .send(),
            )
            .await?;
        if listed.task_arns().is_empty() {
            return Ok(None);
        }
        let described = self
            .run(
                Op::DescribeTasks,
                self.ecs
                    .describe_tasks()
                    .cluster(&self.settings.cluster)
                    .set_tasks(Some(listed.task_arns().to_vec()))
                    .send(),
            )
            .await?;
        Ok(newest_of(described.tasks(), deployment).and_then(stop_reason))
    }
}

/// The newest stopped task `deployment` launched: a service's task carries
/// its deployment's id as `startedBy`, and ECS lists the stopped tasks of
/// earlier deployments for an hour.
fn newest_of<'a>(tasks: &'a [t::Task], deployment: &str) -> Option<&'a t::Task> {
    tasks
        .iter()
        .filter(|task| task.started_by() == Some(deployment))
        .max_by_key(|task| task.stopped_at().map(|at| at.secs()))
}

/// The task's stop reason with its containers' reasons, which is where
/// ECS puts "ResourceInitializationError: … log group does not exist".
fn stop_reason(task: &t::Task) -> Option<String> {
    let mut parts: Vec<String> = task
        .stopped_reason()
        .map(str::to_owned)
        .into_iter()
        .collect();
    for c in task.containers() {
        if let Some(r) = c.reason() {
            parts.push(format!("{}: {r}", c.name().unwrap_or("container")));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::{family_of, newest_of, stop_reason, t};
    use aws_sdk_ecs::primitives::DateTime;

    fn stopped(by: &str, at: i64, reason: &str) -> t::Task {
        t::Task::builder()
            .started_by(by)
            .stopped_at(DateTime::from_secs(at))
            .stopped_reason(reason)
            .build()
    }

    #[test]
    fn only_the_deployments_own_newest_stopped_task_counts() {
        let tasks = [
            stopped("ecs-svc/1", 300, "CannotPullContainerError: not found"),
            stopped("ecs-svc/2", 100, "Essential container in task exited"),
            stopped("ecs-svc/2", 200, "Task failed ELB health checks"),
        ];
        let newest = newest_of(&tasks, "ecs-svc/2").and_then(stop_reason);
        assert_eq!(newest.as_deref(), Some("Task failed ELB health checks"));
        assert!(newest_of(&tasks, "ecs-svc/3").is_none());
    }

    #[test]
    fn family_is_read_from_the_arn_exactly() {
        let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/preview-issue-10:3";
        assert_eq!(family_of(arn), Some("preview-issue-10"));
        assert_ne!(family_of(arn), Some("preview-issue-1"));
        assert_eq!(family_of("nonsense"), None);
    }
}
