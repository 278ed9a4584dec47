//! ELBv2: the load balancers' shared listeners, their rules and the
//! target groups behind them, with AWS's naming rules, priorities per
//! listener and per-load-balancer limits (100 target groups, fixed; the
//! rule quota of each).

use crate::config::{ACCOUNT, SimAlb};
use crate::world::{World, invalid, limit};
use previewd_core::CloudError;
use previewd_core::access::RuleAuth;
use previewd_core::naming::TARGET_GROUP_MAX;
use previewd_core::observed::{ListenerState, ObservedRule, ObservedTargetGroup, TargetHealth};
use previewd_core::operations::{ELB_ADD_TAGS, Op};
use previewd_core::plan::MAX_TARGET_GROUPS_PER_ALB;
use previewd_core::ports::CloudResult;
use previewd_core::render::{RuleSpec, TargetGroupSpec};
use previewd_core::tags::Tags;
use std::collections::{BTreeMap, BTreeSet};
use tokio::time::Instant;

/// A registered task IP.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub ip: String,
    /// Health checks start counting from here.
    pub registered_at: Instant,
}

#[derive(Debug, Clone)]
pub(crate) struct TargetGroup {
    pub arn: String,
    pub name: String,
    pub port: u16,
    pub vpc_id: String,
    pub health_check_path: String,
    pub tags: Tags,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub arn: String,
    /// The listener it is on.
    pub listener: String,
    /// `None` only for the listener's default rule.
    pub priority: Option<i32>,
    pub hosts: Vec<String>,
    /// `None` for a fixed-response action.
    pub target_group_arn: Option<String>,
    pub tags: Tags,
    /// The authenticate action before the forward (access protection).
    /// Its client secret is not kept: AWS never returns it either.
    pub auth: Option<RuleAuth>,
}

#[derive(Debug)]
pub(crate) struct ElbState {
    pub target_groups: BTreeMap<String, TargetGroup>,
    /// Keyed by ARN; the default rule is among them.
    pub rules: BTreeMap<String, Rule>,
    /// Listeners serving plain HTTP ([`crate::Sim::set_listener_http`]);
    /// every other is HTTPS, as preview listeners are.
    pub http_listeners: BTreeSet<String>,
}

impl ElbState {
    /// Each listener with its default rule, and each one's foreign rules
    /// forwarding to foreign target groups.
    pub(crate) fn new(albs: &[SimAlb], region: &str) -> Self {
        let mut state = Self {
            target_groups: BTreeMap::new(),
            rules: BTreeMap::new(),
            http_listeners: BTreeSet::new(),
        };
        for (i, alb) in albs.iter().enumerate() {
            let default = Rule {
                arn: format!("{}/default", rule_arn_base(&alb.listener_arn)),
                listener: alb.listener_arn.clone(),
                priority: None,
                hosts: Vec::new(),
                target_group_arn: None,
                tags: Tags::new(),
                auth: None,
            };
            state.rules.insert(default.arn.clone(), default);
            crate::foreign::preload(&mut state, i, alb, region);
        }
        state
    }

    /// Distinct target groups the rules of `listener` (its load balancer:
    /// one listener each) forward to, leaving out the rule `except`
    /// (about to be rewritten).
    fn attached(&self, listener: &str, except: Option<&str>) -> BTreeSet<&str> {
        self.rules
            .values()
            .filter(|r| r.listener == listener && Some(r.arn.as_str()) != except)
            .filter_map(|r| r.target_group_arn.as_deref())
            .collect()
    }

    /// Whether any rule forwards to the target group.
    pub(crate) fn is_attached(&self, tg_arn: &str) -> bool {
        self.rules
            .values()
            .any(|r| r.target_group_arn.as_deref() == Some(tg_arn))
    }

    /// The listener a rule forwarding to `tg_arn` is on, if any: a target
    /// group serves one load balancer.
    fn attached_to(&self, tg_arn: &str) -> Option<&str> {
        self.rules
            .values()
            .find(|r| r.target_group_arn.as_deref() == Some(tg_arn))
            .map(|r| r.listener.as_str())
    }

    /// A target group made outside previewd (the waker's, by the stack).
    pub(crate) fn add_untagged_group(&mut self, arn: &str, name: &str) {
        self.target_groups.insert(
            arn.to_owned(),
            TargetGroup {
                arn: arn.to_owned(),
                name: name.to_owned(),
                port: 8081,
                vpc_id: String::new(),
                health_check_path: "/".into(),
                tags: Tags::new(),
                targets: Vec::new(),
            },
        );
    }

    /// The target group a request for `host` is forwarded to: the
    /// first rule by priority whose host matches.
    pub(crate) fn route(&self, host: &str) -> Option<String> {
        let mut rules: Vec<&Rule> = self
            .rules
            .values()
            .filter(|r| r.priority.is_some() && r.hosts.iter().any(|h| h == host))
            .collect();
        rules.sort_by_key(|r| r.priority);
        rules.first().and_then(|r| r.target_group_arn.clone())
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<&TargetGroup> {
        self.target_groups.values().find(|t| t.name == name)
    }

    pub(crate) fn custom_rules(&self, listener: &str) -> usize {
        self.rules
            .values()
            .filter(|r| r.listener == listener && r.priority.is_some())
            .count()
    }

    fn priority_holder(&self, listener: &str, priority: i32) -> Option<&Rule> {
        self.rules
            .values()
            .find(|r| r.listener == listener && r.priority == Some(priority))
    }

    /// ECS registering a task (its own buckets, so nothing is metered).
    pub(crate) fn register(&mut self, tg_arn: &str, ip: &str, at: Instant) {
        if let Some(tg) = self.target_groups.get_mut(tg_arn) {
            tg.targets.push(Target {
                ip: ip.to_string(),
                registered_at: at,
            });
        }
    }

    pub(crate) fn deregister(&mut self, tg_arn: &str, ip: &str) {
        if let Some(tg) = self.target_groups.get_mut(tg_arn) {
            tg.targets.retain(|t| t.ip != ip);
        }
    }

    /// The rules of `listener`, or of every listener (`None`).
    pub(crate) fn observed_rules(&self, listener: Option<&str>) -> Vec<ObservedRule> {
        let mut rules: Vec<ObservedRule> = self
            .rules
            .values()
            .filter(|r| listener.is_none_or(|l| r.listener == l))
            .map(|r| ObservedRule {
                arn: r.arn.clone(),
                priority: r.priority,
                hosts: r.hosts.clone(),
                target_group_arn: r.target_group_arn.clone(),
                tags: r.tags.clone(),
                auth: r.auth.clone(),
            })
            .collect();
        // AWS lists by priority with the default rule last.
        rules.sort_by_key(|r| (r.priority.is_none(), r.priority));
        rules
    }

    pub(crate) fn observed_target_groups(&self) -> Vec<ObservedTargetGroup> {
        self.target_groups.values().map(observed_tg).collect()
    }
}

fn observed_tg(t: &TargetGroup) -> ObservedTargetGroup {
    ObservedTargetGroup {
        arn: t.arn.clone(),
        name: t.name.clone(),
        port: t.port,
        tags: t.tags.clone(),
    }
}

pub(crate) fn rule_arn_base(listener_arn: &str) -> String {
    listener_arn.replacen(":listener/", ":listener-rule/", 1)
}

/// AWS's three target group name rules, each with its own message.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > TARGET_GROUP_MAX {
        Some(format!(
            "Target group name '{name}' cannot be longer than '{TARGET_GROUP_MAX}' characters"
        ))
    } else if !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
        Some(format!(
            "Target group name '{name}' can only contain characters that are alphanumeric \
             characters or hyphens(-)"
        ))
    } else if name.starts_with('-') || name.ends_with('-') {
        Some(format!(
            "Target group name '{name}' cannot begin or end with '-'"
        ))
    } else {
        None
    }
}

fn check_priority(priority: i32) -> CloudResult<()> {
    if (1..=50_000).contains(&priority) {
        return Ok(());
    }
    Err(invalid(
        "ValidationError",
        format!("Priority '{priority}' must be between 1 and 50000"),
    ))
}

fn tg_not_found(arn: &str) -> CloudError {
    CloudError::NotFound(format!(
        "TargetGroupNotFound: Target groups '{arn}' not found"
    ))
}

fn rule_not_found(arn: &str) -> CloudError {
    CloudError::NotFound(format!("RuleNotFound: Rule '{arn}' not found"))
}

fn default_rule_refused(arn: &str) -> CloudError {
    invalid(
        "OperationNotPermitted",
        format!("Default rule '{arn}' cannot be modified or deleted this way"),
    )
}

impl World {
    pub(crate) fn tg_arn(&mut self, name: &str) -> String {
        let id = self.next_id();
        format!(
            "arn:aws:elasticloadbalancing:{}:{ACCOUNT}:targetgroup/{name}/{id:016x}",
            self.cfg.region
        )
    }

    pub(crate) fn rule_arn(&mut self, listener: &str) -> String {
        let id = self.next_id();
        format!("{}/{id:016x}", rule_arn_base(listener))
    }

    /// The load balancer of `listener`, or `ListenerNotFound`.
    fn alb(&self, listener: &str) -> CloudResult<SimAlb> {
        self.cfg
            .albs
            .iter()
            .find(|a| a.listener_arn == listener)
            .cloned()
            .ok_or_else(|| {
                CloudError::NotFound(format!(
                    "ListenerNotFound: One or more listeners not found: '{listener}'"
                ))
            })
    }

    fn describe_tags(&mut self, arns: &[String]) -> CloudResult<()> {
        // DescribeTags takes at most 20 resource ARNs.
        for chunk in arns.chunks(20) {
            self.gate(Op::DescribeTags, &chunk[0])?;
        }
        Ok(())
    }

    /// The listener's rules, each page one DescribeRules (400 per page, as
    /// AWS allows), without their tags: DescribeRules carries none.
    pub(crate) fn elb_listener(&mut self, listener: &str) -> CloudResult<ListenerState> {
        let rules = self.elb.observed_rules(Some(listener));
        for _ in 0..Self::pages(rules.len(), 400) {
            self.gate(Op::DescribeRules, listener)?;
        }
        self.alb(listener)?;
        let mut rules = rules;
        rules.iter_mut().for_each(|r| r.tags.clear());
        Ok(ListenerState {
            alb_target_groups: self.elb.attached(listener, None).len(),
            alb_rules: self.elb.custom_rules(listener),
            rules,
            waker_target_group: None,
        })
    }

    /// DescribeTargetGroups cannot filter by prefix: every page is read.
    /// Tags are left empty, as DescribeTargetGroups has none.
    pub(crate) fn elb_target_groups(
        &mut self,
        prefix: &str,
    ) -> CloudResult<Vec<ObservedTargetGroup>> {
        for _ in 0..Self::pages(self.elb.target_groups.len(), 400) {
            self.gate(Op::DescribeTargetGroups, "*")?;
        }
        let mut found: Vec<ObservedTargetGroup> = self
            .elb
            .observed_target_groups()
            .into_iter()
            .filter(|t| t.name.starts_with(prefix))
            .collect();
        found.iter_mut().for_each(|t| t.tags.clear());
        Ok(found)
    }

    /// DescribeTags of rules and target groups, twenty ARNs per request;
    /// like AWS, an ARN that does not exist fails the request.
    pub(crate) fn elb_tags(&mut self, arns: &[String]) -> CloudResult<BTreeMap<String, Tags>> {
        self.describe_tags(arns)?;
        let mut out = BTreeMap::new();
        for arn in arns {
            let tags = if let Some(tg) = self.elb.target_groups.get(arn) {
                tg.tags.clone()
            } else if let Some(rule) = self.elb.rules.get(arn) {
                rule.tags.clone()
            } else if arn.contains(":targetgroup/") {
                return Err(tg_not_found(arn));
            } else {
                return Err(rule_not_found(arn));
            };
            out.insert(arn.clone(), tags);
        }
        Ok(out)
    }

    pub(crate) fn elb_target_health(&mut self, arn: &str) -> CloudResult<TargetHealth> {
        self.gate(Op::DescribeTargetHealth, arn)?;
        let tg = self
            .elb
            .target_groups
            .get(arn)
            .ok_or_else(|| tg_not_found(arn))?;
        let healthy_after = self.cfg.target_healthy_after;
        let mut health = TargetHealth::default();
        for t in &tg.targets {
            if self.now >= t.registered_at + healthy_after {
                health.healthy += 1;
            } else {
                health.initial += 1;
            }
        }
        Ok(health)
    }

    pub(crate) fn elb_create_target_group(
        &mut self,
        spec: &TargetGroupSpec,
    ) -> CloudResult<ObservedTargetGroup> {
        let resource = format!(
            "arn:aws:elasticloadbalancing:{}:{ACCOUNT}:targetgroup/{}/*",
            self.cfg.region, spec.name
        );
        self.gate(Op::CreateTargetGroup, &resource)?;
        if !spec.tags.is_empty() {
            self.authorize(&ELB_ADD_TAGS.action(), &resource)?;
        }
        if let Some(message) = name_problem(&spec.name) {
            return Err(invalid("ValidationError", message));
        }
        if spec.port == 0 {
            return Err(invalid(
                "ValidationError",
                "Port must be between 1 and 65535",
            ));
        }
        if let Some(existing) = self.elb.by_name(&spec.name) {
            // AWS is idempotent for identical settings and refuses others.
            let same = existing.port == spec.port
                && existing.vpc_id == spec.vpc_id
                && existing.health_check_path == spec.health_check_path;
            if !same {
                return Err(CloudError::AlreadyExists(format!(
                    "DuplicateTargetGroupName: A target group with the same name '{}' exists, \
                     but with different settings",
                    spec.name
                )));
            }
            let found = observed_tg(existing);
            self.applied(Op::CreateTargetGroup)?;
            return Ok(found);
        }
        if self.elb.target_groups.len() >= self.cfg.max_target_groups_per_region {
            return Err(limit(
                "TooManyTargetGroups",
                "You have reached the maximum number of target groups allowed for your account",
            ));
        }
        let tg = TargetGroup {
            arn: self.tg_arn(&spec.name),
            name: spec.name.clone(),
            port: spec.port,
            vpc_id: spec.vpc_id.clone(),
            health_check_path: spec.health_check_path.clone(),
            tags: spec.tags.clone(),
            targets: Vec::new(),
        };
        let found = observed_tg(&tg);
        self.elb.target_groups.insert(tg.arn.clone(), tg);
        self.applied(Op::CreateTargetGroup)?;
        Ok(found)
    }

    pub(crate) fn elb_delete_target_group(&mut self, arn: &str) -> CloudResult<()> {
        self.gate(Op::DeleteTargetGroup, arn)?;
        if !self.elb.target_groups.contains_key(arn) {
            return Err(tg_not_found(arn));
        }
        if self.elb.is_attached(arn) {
            return Err(CloudError::ResourceInUse(format!(
                "Target group '{arn}' is currently in use by a listener or a rule"
            )));
        }
        self.elb.target_groups.remove(arn);
        self.applied(Op::DeleteTargetGroup)
    }

    /// Refuses forwarding `rule` (None: a new rule) of `listener` to
    /// `tg_arn` when the target group is unknown, serves another load
    /// balancer, or would be one too many on this one.
    fn check_forward(&self, listener: &str, rule: Option<&str>, tg_arn: &str) -> CloudResult<()> {
        if !self.elb.target_groups.contains_key(tg_arn) {
            return Err(tg_not_found(tg_arn));
        }
        if let Some(other) = self.elb.attached_to(tg_arn).filter(|l| *l != listener) {
            return Err(invalid(
                "ValidationError",
                format!(
                    "Target group '{tg_arn}' is associated with another load balancer ({other})"
                ),
            ));
        }
        let mut attached = self.elb.attached(listener, rule);
        attached.insert(tg_arn);
        if attached.len() > MAX_TARGET_GROUPS_PER_ALB {
            return Err(limit(
                "TooManyTargetGroups",
                format!(
                    "You have reached the maximum number of target groups \
                     ({MAX_TARGET_GROUPS_PER_ALB}) for the load balancer"
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn elb_create_rule(&mut self, spec: &RuleSpec, tg_arn: &str) -> CloudResult<String> {
        let listener = spec.listener_arn.clone();
        self.gate(Op::CreateRule, &listener)?;
        if !spec.tags.is_empty() {
            self.authorize(&ELB_ADD_TAGS.action(), &listener)?;
        }
        let alb = self.alb(&listener)?;
        check_priority(spec.priority)?;
        if self.elb.priority_holder(&listener, spec.priority).is_some() {
            return Err(CloudError::PriorityInUse(spec.priority));
        }
        if self.elb.custom_rules(&listener) >= alb.rule_quota {
            return Err(limit(
                "TooManyRules",
                format!(
                    "The load balancer already has the maximum number of rules ({})",
                    alb.rule_quota
                ),
            ));
        }
        self.check_forward(&listener, None, tg_arn)?;
        self.check_auth(&listener, spec, true)?;
        let rule = Rule {
            listener: listener.clone(),
            arn: self.rule_arn(&listener),
            priority: Some(spec.priority),
            hosts: vec![spec.host.clone()],
            target_group_arn: Some(tg_arn.to_string()),
            tags: spec.tags.clone(),
            auth: spec.auth.clone(),
        };
        let arn = rule.arn.clone();
        self.elb.rules.insert(arn.clone(), rule);
        self.applied(Op::CreateRule)?;
        Ok(arn)
    }

    /// ModifyRule rewrites conditions and actions; the ARN, the priority and
    /// the tags stay as they are (AWS changes tags only through AddTags).
    pub(crate) fn elb_modify_rule(
        &mut self,
        arn: &str,
        spec: &RuleSpec,
        tg_arn: &str,
    ) -> CloudResult<()> {
        self.gate(Op::ModifyRule, arn)?;
        let rule = self.elb.rules.get(arn).ok_or_else(|| rule_not_found(arn))?;
        if rule.priority.is_none() {
            return Err(default_rule_refused(arn));
        }
        let listener = rule.listener.clone();
        self.check_forward(&listener, Some(arn), tg_arn)?;
        // Without a secret, AWS keeps the one it holds; stricter than AWS,
        // the simulator refuses to keep one held for another client.
        let holds_secret = match (&rule.auth, &spec.auth) {
            (Some(RuleAuth::Oidc(held)), Some(RuleAuth::Oidc(wanted))) => {
                held.issuer == wanted.issuer && held.client_id == wanted.client_id
            }
            _ => false,
        };
        self.check_auth(&listener, spec, !holds_secret)?;
        let rule = self.elb.rules.get_mut(arn).expect("checked above");
        rule.hosts = vec![spec.host.clone()];
        rule.target_group_arn = Some(tg_arn.to_string());
        rule.auth = spec.auth.clone();
        self.applied(Op::ModifyRule)
    }

    pub(crate) fn elb_set_rule_priority(&mut self, arn: &str, priority: i32) -> CloudResult<()> {
        self.gate(Op::SetRulePriorities, arn)?;
        let rule = self.elb.rules.get(arn).ok_or_else(|| rule_not_found(arn))?;
        if rule.priority.is_none() {
            return Err(default_rule_refused(arn));
        }
        check_priority(priority)?;
        let listener = rule.listener.clone();
        if self
            .elb
            .priority_holder(&listener, priority)
            .is_some_and(|holder| holder.arn != arn)
        {
            return Err(CloudError::PriorityInUse(priority));
        }
        self.elb.rules.get_mut(arn).expect("checked above").priority = Some(priority);
        self.applied(Op::SetRulePriorities)
    }

    pub(crate) fn elb_delete_rule(&mut self, arn: &str) -> CloudResult<()> {
        self.gate(Op::DeleteRule, arn)?;
        let rule = self.elb.rules.get(arn).ok_or_else(|| rule_not_found(arn))?;
        if rule.priority.is_none() {
            return Err(default_rule_refused(arn));
        }
        self.elb.rules.remove(arn);
        self.applied(Op::DeleteRule)
    }
}
