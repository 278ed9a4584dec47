//! ELBv2: the rules previewd keeps on a shared listener and the target
//! groups they forward to. Other people's rules live on the same listener;
//! which ones are ours is decided by the tags read here, in `plan()`.

use crate::{Aws, Op, elb_auth, tag_map};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types as t;
use previewd_core::CloudError;
use previewd_core::observed::{ListenerState, ObservedRule, ObservedTargetGroup, TargetHealth};
use previewd_core::ports::{CloudResult, LoadBalancer};
use previewd_core::render::{RuleSpec, TargetGroupSpec};
use previewd_core::tags::Tags;
use std::collections::{BTreeMap, HashMap};

/// DescribeTags takes at most 20 ARNs; DescribeRules and
/// DescribeTargetGroups page up to 400.
const TAG_BATCH: usize = 20;
const PAGE: i32 = 400;

fn tags(tags: &Tags) -> Vec<t::Tag> {
    tags.iter()
        .map(|(k, v)| t::Tag::builder().key(k).value(v).build())
        .collect()
}

fn host_condition(host: &str) -> t::RuleCondition {
    t::RuleCondition::builder()
        .field("host-header")
        .host_header_config(t::HostHeaderConditionConfig::builder().values(host).build())
        .build()
}

/// The hosts a rule matches, from either form AWS uses.
fn hosts(rule: &t::Rule) -> Vec<String> {
    let mut out = Vec::new();
    for c in rule.conditions() {
        if c.field() != Some("host-header") {
            continue;
        }
        if let Some(cfg) = c.host_header_config() {
            out.extend(cfg.values().iter().cloned());
        }
        out.extend(c.values().iter().cloned());
    }
    out.dedup();
    out
}

/// A single forward target: the action's own ARN or a one-group forward
/// config. Anything else (weighted, redirect) is not a preview rule.
fn forwards_to(rule: &t::Rule) -> Option<String> {
    let action = rule
        .actions()
        .iter()
        .find(|a| a.r#type() == Some(&t::ActionTypeEnum::Forward))?;
    if let Some(arn) = action.target_group_arn() {
        return Some(arn.to_owned());
    }
    match action.forward_config()?.target_groups() {
        [one] => one.target_group_arn().map(str::to_owned),
        _ => None,
    }
}

impl Aws {
    /// A listener's load balancer, looked up once per listener.
    async fn load_balancer_arn(&self, listener_arn: &str) -> CloudResult<String> {
        if let Some(lb) = self
            .load_balancer_arns
            .lock()
            .expect("not poisoned")
            .get(listener_arn)
        {
            return Ok(lb.clone());
        }
        let out = self
            .run(
                Op::DescribeListeners,
                self.elb
                    .describe_listeners()
                    .listener_arns(listener_arn)
                    .send(),
            )
            .await?;
        let lb = out
            .listeners()
            .first()
            .and_then(|l| l.load_balancer_arn())
            .map(str::to_owned)
            .ok_or_else(|| CloudError::NotFound(format!("ListenerNotFound: {listener_arn}")))?;
        self.load_balancer_arns
            .lock()
            .expect("not poisoned")
            .insert(listener_arn.to_owned(), lb.clone());
        Ok(lb)
    }

    /// A listener's protocol (`HTTP`, `HTTPS`), as DescribeListeners
    /// reports it: access protection needs HTTPS.
    pub async fn listener_protocol(&self, listener_arn: &str) -> CloudResult<String> {
        let out = self
            .run(
                Op::DescribeListeners,
                self.elb
                    .describe_listeners()
                    .listener_arns(listener_arn)
                    .send(),
            )
            .await?;
        out.listeners()
            .first()
            .map(|l| l.protocol().map_or("?", |p| p.as_str()).to_owned())
            .ok_or_else(|| CloudError::NotFound(format!("ListenerNotFound: {listener_arn}")))
    }

    /// Every rule of one listener, paged.
    async fn rules_of(&self, listener_arn: &str) -> CloudResult<Vec<t::Rule>> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .run(
                    Op::DescribeRules,
                    self.elb
                        .describe_rules()
                        .listener_arn(listener_arn)
                        .page_size(PAGE)
                        .set_marker(marker.clone())
                        .send(),
                )
                .await?;
            out.extend(page.rules().iter().cloned());
            marker = page.next_marker().map(str::to_owned);
            if marker.is_none() {
                return Ok(out);
            }
        }
    }

    /// Tags of many resources, twenty ARNs per call.
    async fn tags_of(&self, arns: &[String]) -> CloudResult<HashMap<String, Tags>> {
        let mut out = HashMap::new();
        for chunk in arns.chunks(TAG_BATCH) {
            let page = self
                .run(
                    Op::DescribeTags,
                    self.elb
                        .describe_tags()
                        .set_resource_arns(Some(chunk.to_vec()))
                        .send(),
                )
                .await?;
            for d in page.tag_descriptions() {
                let Some(arn) = d.resource_arn() else {
                    continue;
                };
                let tags = tag_map(d.tags().iter().filter_map(|t| {
                    Some((t.key()?.to_owned(), t.value().unwrap_or("").to_owned()))
                }));
                out.insert(arn.to_owned(), tags);
            }
        }
        Ok(out)
    }

    /// Target groups, all or those of one load balancer, paged.
    async fn target_groups_where(
        &self,
        load_balancer_arn: Option<&str>,
    ) -> CloudResult<Vec<t::TargetGroup>> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .run(
                    Op::DescribeTargetGroups,
                    self.elb
                        .describe_target_groups()
                        .set_load_balancer_arn(load_balancer_arn.map(str::to_owned))
                        .page_size(PAGE)
                        .set_marker(marker.clone())
                        .send(),
                )
                .await;
            let page = match page {
                // A load balancer with no target group at all: some
                // endpoints (moto) answer TargetGroupNotFound to the
                // filter rather than an empty list; both mean none.
                Err(CloudError::NotFound(_)) if load_balancer_arn.is_some() && out.is_empty() => {
                    return Ok(out);
                }
                other => other?,
            };
            out.extend(page.target_groups().iter().cloned());
            marker = page.next_marker().map(str::to_owned);
            if marker.is_none() {
                return Ok(out);
            }
        }
    }
}

impl Aws {
    /// The listener's rules (without their tags: DescribeRules has none)
    /// and how full its load balancer is.
    async fn listener_state(&self, listener_arn: &str) -> CloudResult<ListenerState> {
        let lb = self.load_balancer_arn(listener_arn).await?;
        let rules = self.rules_of(listener_arn).await?;
        let custom: Vec<String> = rules
            .iter()
            .filter(|r| !r.is_default().unwrap_or(false))
            .filter_map(|r| r.rule_arn().map(str::to_owned))
            .collect();

        // The rules quota is per load balancer: count the other listeners'.
        let listeners = self
            .run(
                Op::DescribeListeners,
                self.elb.describe_listeners().load_balancer_arn(&lb).send(),
            )
            .await?;
        let mut alb_rules = custom.len();
        for l in listeners.listeners() {
            let Some(arn) = l.listener_arn() else {
                continue;
            };
            if arn != listener_arn {
                let theirs = self.rules_of(arn).await?;
                alb_rules += theirs
                    .iter()
                    .filter(|r| !r.is_default().unwrap_or(false))
                    .count();
            }
        }
        let alb_target_groups = self.target_groups_where(Some(&lb)).await?.len();

        let rules = rules
            .iter()
            .map(|r| {
                let arn = r.rule_arn().unwrap_or_default().to_owned();
                ObservedRule {
                    priority: r.priority().and_then(|p| p.parse().ok()),
                    hosts: hosts(r),
                    target_group_arn: forwards_to(r),
                    tags: Tags::new(),
                    auth: crate::elb_auth::auth_of(r),
                    arn,
                }
            })
            .collect();
        Ok(ListenerState {
            rules,
            alb_target_groups,
            alb_rules,
            waker_target_group: None,
        })
    }

    /// Target groups whose name starts with `prefix`, without their tags.
    async fn target_groups_named(&self, prefix: &str) -> CloudResult<Vec<ObservedTargetGroup>> {
        let groups: Vec<t::TargetGroup> = self
            .target_groups_where(None)
            .await?
            .into_iter()
            .filter(|g| g.target_group_name().is_some_and(|n| n.starts_with(prefix)))
            .collect();
        Ok(groups
            .iter()
            .filter_map(|g| {
                let arn = g.target_group_arn()?.to_owned();
                Some(ObservedTargetGroup {
                    name: g.target_group_name().unwrap_or_default().to_owned(),
                    port: g.port().and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
                    tags: Tags::new(),
                    arn,
                })
            })
            .collect())
    }
}

#[async_trait]
impl LoadBalancer for Aws {
    async fn listener(&self, listener_arn: &str) -> CloudResult<ListenerState> {
        self.listener_state(listener_arn).await
    }

    async fn target_groups(&self, prefix: &str) -> CloudResult<Vec<ObservedTargetGroup>> {
        self.target_groups_named(prefix).await
    }

    async fn tags(&self, arns: &[String]) -> CloudResult<BTreeMap<String, Tags>> {
        Ok(self.tags_of(arns).await?.into_iter().collect())
    }

    async fn target_health(&self, target_group_arn: &str) -> CloudResult<TargetHealth> {
        let out = self
            .run(
                Op::DescribeTargetHealth,
                self.elb
                    .describe_target_health()
                    .target_group_arn(target_group_arn)
                    .send(),
            )
            .await?;
        let mut h = TargetHealth::default();
        for d in out.target_health_descriptions() {
            match d.target_health().and_then(|x| x.state()) {
                Some(t::TargetHealthStateEnum::Healthy) => h.healthy += 1,
                Some(t::TargetHealthStateEnum::Initial) => h.initial += 1,
                _ => h.unhealthy += 1,
            }
        }
        Ok(h)
    }

    async fn create_target_group(
        &self,
        spec: &TargetGroupSpec,
    ) -> CloudResult<ObservedTargetGroup> {
        let out = self
            .run(
                Op::CreateTargetGroup,
                self.elb
                    .create_target_group()
                    .name(&spec.name)
                    .protocol(t::ProtocolEnum::Http)
                    .port(i32::from(spec.port))
                    .vpc_id(&spec.vpc_id)
                    .target_type(t::TargetTypeEnum::Ip)
                    .health_check_path(&spec.health_check_path)
                    .set_tags(Some(tags(&spec.tags)))
                    .send(),
            )
            .await?;
        let g = out
            .target_groups()
            .first()
            .ok_or_else(|| CloudError::Transient {
                code: "EmptyResponse".into(),
                message: "CreateTargetGroup returned no target group".into(),
            })?;
        Ok(ObservedTargetGroup {
            arn: g.target_group_arn().unwrap_or_default().to_owned(),
            name: spec.name.clone(),
            port: spec.port,
            tags: spec.tags.clone(),
        })
    }

    async fn delete_target_group(&self, arn: &str) -> CloudResult<()> {
        self.run(
            Op::DeleteTargetGroup,
            self.elb.delete_target_group().target_group_arn(arn).send(),
        )
        .await
        .map(drop)
    }

    async fn create_rule(&self, spec: &RuleSpec, target_group_arn: &str) -> CloudResult<String> {
        let actions = elb_auth::actions(spec, target_group_arn, elb_auth::Write::Create)?;
        let out = self
            .run(
                Op::CreateRule,
                self.elb
                    .create_rule()
                    .listener_arn(&spec.listener_arn)
                    .priority(spec.priority)
                    .conditions(host_condition(&spec.host))
                    .set_actions(Some(actions))
                    .set_tags(Some(tags(&spec.tags)))
                    .send(),
            )
            .await
            .map_err(|e| with_priority(e, spec.priority))?;
        out.rules()
            .first()
            .and_then(|r| r.rule_arn())
            .map(str::to_owned)
            .ok_or_else(|| CloudError::Transient {
                code: "EmptyResponse".into(),
                message: "CreateRule returned no rule".into(),
            })
    }

    async fn modify_rule(
        &self,
        arn: &str,
        spec: &RuleSpec,
        target_group_arn: &str,
    ) -> CloudResult<()> {
        // Every action is rewritten: a modify without the authenticate
        // action would drop the protection.
        let actions = elb_auth::actions(spec, target_group_arn, elb_auth::Write::Modify)?;
        self.run(
            Op::ModifyRule,
            self.elb
                .modify_rule()
                .rule_arn(arn)
                .conditions(host_condition(&spec.host))
                .set_actions(Some(actions))
                .send(),
        )
        .await
        .map(drop)
    }

    async fn set_rule_priority(&self, arn: &str, priority: i32) -> CloudResult<()> {
        self.run(
            Op::SetRulePriorities,
            self.elb
                .set_rule_priorities()
                .rule_priorities(
                    t::RulePriorityPair::builder()
                        .rule_arn(arn)
                        .priority(priority)
                        .build(),
                )
                .send(),
        )
        .await
        .map(drop)
        .map_err(|e| with_priority(e, priority))
    }

    async fn delete_rule(&self, arn: &str) -> CloudResult<()> {
        self.run(Op::DeleteRule, self.elb.delete_rule().rule_arn(arn).send())
            .await
            .map(drop)
    }
}

/// `PriorityInUse` carries the priority the caller asked for.
fn with_priority(e: CloudError, priority: i32) -> CloudError {
    match e {
        CloudError::PriorityInUse(_) => CloudError::PriorityInUse(priority),
        other => other,
    }
}
