//! Renders one preview's wanted AWS resources from the template and its row.

use crate::model::Preview;
use crate::naming::{NamingConfig, ResourceNames, short_hash};
use crate::observed::{AliasTarget, DnsRecord, RecordType};
use crate::tags::{self, Tags};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a preview is built: the parts of the configuration that shape AWS
/// resources. Secrets here are ARNs, never values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// Written into every ownership tag; two controllers sharing an account
    /// must use different ids.
    pub controller_id: String,
    pub naming: NamingConfig,
    /// Image pattern; `{commit_sha}` expands to the dispatched commit.
    pub image: String,
    pub container_name: String,
    pub container_port: u16,
    pub cpu: String,
    pub memory: String,
    pub env: BTreeMap<String, String>,
    /// Container secrets: variable name → Secrets Manager / SSM ARN.
    pub secrets: BTreeMap<String, String>,
    pub execution_role_arn: Option<String>,
    pub task_role_arn: Option<String>,
    pub region: String,
    pub log_retention_days: i32,
    pub health_check_path: String,
    pub vpc_id: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
    pub dns: DnsMode,
    pub url_scheme: String,
    /// Listener rule priorities previewd may use, inclusive.
    pub priority_band: (i32, i32),
    /// Rules the ALB may hold (an adjustable AWS quota, default 100).
    pub alb_rule_quota: usize,
    /// How long a preview whose ECR image is missing waits for it before
    /// it fails (`container.image_wait_secs`).
    #[serde(default = "default_image_wait_secs")]
    pub image_wait_secs: u64,
    /// The account whose ECR registry previewd may ask about (read from the
    /// listener's ARN); `None`: any. An image in another account's registry
    /// is not checked: previewd's policy does not cover it.
    #[serde(default)]
    pub ecr_account: Option<String>,
    /// `cloud.ecr_repository`: when set, the one repository previewd's
    /// policy lets it describe; an image in any other is not checked.
    #[serde(default)]
    pub ecr_repository: Option<String>,
    /// The listener the preview's rule goes on: the pool's first in the
    /// configuration, the preview's own (`crate::pool::template_for`) in
    /// the template `plan()` is given.
    #[serde(default)]
    pub listener_arn: String,
    /// Access protection (`[access]`): the preview's rule authenticates
    /// before it forwards. The OIDC client secret in it never serializes.
    #[serde(default)]
    pub access: Option<crate::access::Access>,
}

/// The listener of [`Template::default`] (the simulator's first).
pub const DEFAULT_LISTENER_ARN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/previews/50dc6c495c0c9188/f2f7dc8efc522ab2";

fn default_image_wait_secs() -> u64 {
    crate::image::DEFAULT_IMAGE_WAIT_SECS
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum DnsMode {
    /// One alias A record per preview plus an ownership TXT record.
    Alias {
        alb_dns_name: String,
        alb_zone_id: String,
    },
    /// A wildcard record already points at the ALB: no per-preview records.
    Wildcard,
}

impl Default for Template {
    fn default() -> Self {
        Self {
            controller_id: "previewd".into(),
            naming: NamingConfig::default(),
            image: "public.ecr.aws/nginx/nginx:latest".into(),
            container_name: "app".into(),
            container_port: 80,
            cpu: "256".into(),
            memory: "512".into(),
            env: BTreeMap::new(),
            secrets: BTreeMap::new(),
            execution_role_arn: None,
            task_role_arn: None,
            region: "us-east-1".into(),
            log_retention_days: 14,
            health_check_path: "/".into(),
            vpc_id: "vpc-sim".into(),
            subnets: vec!["subnet-sim-a".into()],
            security_groups: vec!["sg-sim".into()],
            assign_public_ip: false,
            dns: DnsMode::Alias {
                alb_dns_name: "previews-alb.us-east-1.elb.amazonaws.com".into(),
                alb_zone_id: "Z35SXDOTRQ7X7K".into(),
            },
            url_scheme: "https".into(),
            priority_band: (1000, 1999),
            alb_rule_quota: 100,
            image_wait_secs: crate::image::DEFAULT_IMAGE_WAIT_SECS,
            ecr_account: None,
            ecr_repository: None,
            listener_arn: DEFAULT_LISTENER_ARN.into(),
            access: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerDefinition {
    pub name: String,
    pub image: String,
    pub port: u16,
    pub env: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    pub log_group: String,
    pub log_region: String,
    pub log_stream_prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDefinition {
    pub family: String,
    pub cpu: String,
    pub memory: String,
    pub execution_role_arn: Option<String>,
    pub task_role_arn: Option<String>,
    pub container: ContainerDefinition,
    /// Hash of everything above; decides whether a new revision is needed.
    pub spec_hash: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub name: String,
    pub desired_count: i32,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
    pub container_name: String,
    pub container_port: u16,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroupSpec {
    pub name: String,
    pub port: u16,
    pub vpc_id: String,
    pub health_check_path: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSpec {
    pub priority: i32,
    pub host: String,
    pub tags: Tags,
    /// The listener the rule is created on (the preview's placement).
    #[serde(default)]
    pub listener_arn: String,
    /// How the rule authenticates before it forwards (access protection);
    /// `None`: it only forwards. See [`crate::access::actions`].
    #[serde(default)]
    pub auth: Option<crate::access::RuleAuth>,
    /// The OIDC client secret to send: always with a `CreateRule`; with a
    /// `ModifyRule` only when AWS does not hold it already
    /// ([`crate::access::secret_to_send`]), else `UseExistingClientSecret`.
    #[serde(skip)]
    pub client_secret: Option<crate::access::ClientSecret>,
}

impl RuleSpec {
    /// The rule's actions, authentication first, forwarding to `target_group_arn`.
    pub fn actions<'a>(&'a self, target_group_arn: &'a str) -> Vec<crate::access::RuleAction<'a>> {
        crate::access::actions(self.auth.as_ref(), target_group_arn)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DnsAction {
    Upsert,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsChange {
    pub action: DnsAction,
    pub record: DnsRecord,
}

/// Everything one preview should have, before a rule priority is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub names: ResourceNames,
    pub tags: Tags,
    pub log_retention_days: i32,
    pub task_definition: TaskDefinition,
    pub target_group: TargetGroupSpec,
    pub service: ServiceSpec,
    /// Empty in wildcard DNS mode.
    pub dns_records: Vec<DnsRecord>,
    pub url: String,
}

/// Renders the wanted resources of a row.
pub fn render(t: &Template, p: &Preview) -> Wanted {
    let names = ResourceNames::new(&t.naming, &p.slug, &p.host_label);
    let base_tags = tags::ownership_tags(
        &t.controller_id,
        &p.key.project,
        &p.key.branch,
        &p.slug,
        None,
    );
    let commit = p.spec.commit_sha.clone().unwrap_or_default();
    let image = p
        .spec
        .image
        .clone()
        .unwrap_or_else(|| t.image.replace("{commit_sha}", &commit));
    let url = format!("{}://{}", t.url_scheme, names.host);
    let mut env = t.env.clone();
    env.extend(p.spec.env.clone());
    env.insert("PREVIEW_URL".into(), url.clone());
    env.insert("PREVIEW_BRANCH".into(), p.key.branch.clone());
    env.insert("PREVIEW_COMMIT_SHA".into(), commit);
    let mut td = TaskDefinition {
        family: names.family.clone(),
        cpu: t.cpu.clone(),
        memory: t.memory.clone(),
        execution_role_arn: t.execution_role_arn.clone(),
        task_role_arn: t.task_role_arn.clone(),
        container: ContainerDefinition {
            name: t.container_name.clone(),
            image,
            port: t.container_port,
            env,
            secrets: t.secrets.clone(),
            log_group: names.log_group.clone(),
            log_region: t.region.clone(),
            log_stream_prefix: "preview".into(),
        },
        spec_hash: String::new(),
        tags: Tags::new(),
    };
    let rendered = serde_json::to_string(&td).expect("task definitions serialize");
    td.spec_hash = short_hash(&[&rendered], 16);
    td.tags = base_tags.clone();
    td.tags.insert(tags::SPEC_HASH.into(), td.spec_hash.clone());

    let mut service_tags = base_tags.clone();
    service_tags.insert(tags::SPEC_HASH.into(), td.spec_hash.clone());
    let dns_records = match &t.dns {
        DnsMode::Wildcard => Vec::new(),
        DnsMode::Alias {
            alb_dns_name,
            alb_zone_id,
        } => vec![
            DnsRecord {
                name: names.host.clone(),
                kind: RecordType::A,
                ttl: None,
                values: Vec::new(),
                alias_target: Some(AliasTarget {
                    // Route53 answers in lower case; compare like with like.
                    dns_name: alb_dns_name.to_ascii_lowercase(),
                    hosted_zone_id: alb_zone_id.clone(),
                }),
            },
            DnsRecord {
                name: names.host.clone(),
                kind: RecordType::Txt,
                ttl: Some(300),
                values: vec![tags::dns_owner_marker(&t.controller_id, &p.slug)],
                alias_target: None,
            },
        ],
    };
    Wanted {
        target_group: TargetGroupSpec {
            name: names.target_group.clone(),
            port: t.container_port,
            vpc_id: t.vpc_id.clone(),
            health_check_path: t.health_check_path.clone(),
            tags: base_tags.clone(),
        },
        service: ServiceSpec {
            name: names.service.clone(),
            desired_count: 1,
            subnets: t.subnets.clone(),
            security_groups: t.security_groups.clone(),
            assign_public_ip: t.assign_public_ip,
            container_name: t.container_name.clone(),
            container_port: t.container_port,
            tags: service_tags,
        },
        log_retention_days: t.log_retention_days,
        task_definition: td,
        dns_records,
        url,
        tags: base_tags,
        names,
    }
}
