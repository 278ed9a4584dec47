//! previewd's configuration: one TOML file, every key overridable by
//! `PREVIEWD_<SECTION>_<KEY>`, secrets only from the environment or files.

use previewd_core::naming::NamingConfig;
use previewd_core::render::{DnsMode, Template};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// The API (`/v1`, the webhook) and health checks: what the public load
    /// balancer forwards. On a loopback address it serves the pages and
    /// `/metrics` too, unless `internal_listen` is set.
    pub listen: SocketAddr,
    /// The status pages and `/metrics`, which publish every branch, commit
    /// and AWS error: bind it where only the VPC reaches. Unset, they are
    /// served on `listen` if that is loopback, else nowhere.
    pub internal_listen: Option<SocketAddr>,
    /// File holding the API bearer token (else `PREVIEWD_API_TOKEN`).
    pub api_token_file: Option<PathBuf>,
    /// Serve the read-only HTML status page at `/` (no token needed).
    pub status_page: bool,
    /// Open connections per listener, further capped at half the
    /// process's open-file limit so idle sockets cannot exhaust it.
    pub max_connections: usize,
    /// A connection must send a whole request head within this, and is
    /// closed after this long idle between keep-alive requests.
    pub header_read_timeout_secs: u64,
    /// One request, body included, is answered 408 after this.
    pub request_timeout_secs: u64,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid"),
            internal_listen: None,
            api_token_file: None,
            status_page: true,
            max_connections: 512,
            header_read_timeout_secs: 10,
            request_timeout_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// `sqlite://previewd.db` (default) or `postgres://…`. A password may
    /// sit in it only when it comes from `PREVIEWD_STORE_URL`.
    pub url: String,
    /// A file holding the PostgreSQL password, put into `url` at start.
    pub password_file: Option<PathBuf>,
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            url: "sqlite://previewd.db".into(),
            password_file: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Previews {
    /// The repository previews are built from, `owner/repo`.
    pub project: String,
    /// A preview untouched this long after its last deploy is destroyed.
    pub ttl_hours: u64,
    /// No preview lives longer than this after it was first created,
    /// however often it is redeployed.
    pub max_lifetime_hours: u64,
}

impl Default for Previews {
    fn default() -> Self {
        Self {
            project: "example/app".into(),
            ttl_hours: 72,
            max_lifetime_hours: 14 * 24,
        }
    }
}

/// GitHub deployment statuses. The token comes from
/// `PREVIEWD_GITHUB_TOKEN`; or set `app_id`, `installation_id` and
/// `private_key_file` to authenticate as a GitHub App.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Github {
    pub api_url: String,
    pub app_id: Option<u64>,
    pub installation_id: Option<u64>,
    pub private_key_file: Option<PathBuf>,
    /// Opt-in: a pull request carrying this label gets a preview of its
    /// head commit (redeployed on each push, destroyed when the label or
    /// the pull request goes). Unset: labels change nothing.
    pub preview_label: Option<String>,
    /// Opt-in: keep one comment on each preview's pull request with its
    /// URL, phase, commit and last message, edited on every phase change
    /// and marked gone when the preview is destroyed. Needs GitHub
    /// credentials that may write pull-request comments.
    pub pr_comment: bool,
}

impl Default for Github {
    fn default() -> Self {
        Self {
            api_url: "https://api.github.com".into(),
            app_id: None,
            installation_id: None,
            private_key_file: None,
            preview_label: None,
            pr_comment: false,
        }
    }
}

/// Where `callback_url` may point: exact hosts, `*.suffix` patterns or IPs.
/// Signed with `PREVIEWD_CALLBACK_SECRET`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Callbacks {
    pub allowed_hosts: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gc {
    /// Sweep this often (and at least every ttl/6).
    pub interval_secs: u64,
    /// A resource must stay unwanted this long before it is deleted.
    pub grace_secs: u64,
    /// The brake: a sweep with more deletions due than this deletes none.
    pub max_deletions: usize,
}

impl Default for Gc {
    fn default() -> Self {
        Self {
            interval_secs: 600,
            grace_secs: 900,
            max_deletions: 20,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloudKind {
    /// The in-memory simulated AWS: nothing real is created.
    Sim,
    Aws,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudSection {
    pub kind: CloudKind,
    pub region: String,
    pub cluster: String,
    pub listener_arn: String,
    pub hosted_zone_id: String,
    /// `alias` (A alias + TXT per preview) or `wildcard` (no records).
    pub dns_mode: String,
    pub alb_dns_name: String,
    pub alb_zone_id: String,
    pub priority_band_start: i32,
    pub priority_band_end: i32,
    pub alb_rule_quota: usize,
    pub vpc_id: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
    /// A bound on each AWS call, the SDK's own retries included.
    pub call_timeout_secs: u64,
    /// The share of the account's AWS API rate limits (burst and rate of
    /// every bucket) previewd paces itself to, in percent: all replicas
    /// together, each taking an equal part (they count each other by
    /// heartbeat). The buckets are per account and Region, shared with
    /// production's deploys.
    pub api_share_percent: u32,
    /// The ECR repository preview images are pushed to (for the IAM
    /// policy's push statement); empty for none.
    pub ecr_repository: String,
    /// The pool of listeners (`[[cloud.listeners]]`); empty: the single
    /// listener of `listener_arn` and its keys, a pool of one.
    pub listeners: Vec<ListenerEntry>,
}

impl CloudSection {
    /// `ecr_repository`, when set: what the policy's ECR statements and
    /// the image check are scoped to.
    pub fn ecr_repository(&self) -> Option<String> {
        Some(self.ecr_repository.clone()).filter(|r| !r.is_empty())
    }
}

impl Default for CloudSection {
    fn default() -> Self {
        let t = Template::default();
        let (alb_dns_name, alb_zone_id) = match t.dns {
            DnsMode::Alias {
                alb_dns_name,
                alb_zone_id,
            } => (alb_dns_name, alb_zone_id),
            DnsMode::Wildcard => (String::new(), String::new()),
        };
        Self {
            kind: CloudKind::Sim,
            region: t.region,
            cluster: "previews".into(),
            listener_arn:
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/previews/1/1"
                    .into(),
            hosted_zone_id: "ZSIMULATED".into(),
            dns_mode: "alias".into(),
            alb_dns_name,
            alb_zone_id,
            priority_band_start: t.priority_band.0,
            priority_band_end: t.priority_band.1,
            alb_rule_quota: t.alb_rule_quota,
            vpc_id: t.vpc_id,
            subnets: t.subnets,
            security_groups: t.security_groups,
            assign_public_ip: t.assign_public_ip,
            call_timeout_secs: 20,
            api_share_percent: 50,
            ecr_repository: String::new(),
            listeners: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Container {
    /// `{commit_sha}` expands to the dispatched commit.
    pub image: String,
    pub name: String,
    pub port: u16,
    pub cpu: String,
    pub memory: String,
    pub env: BTreeMap<String, String>,
    /// Variable name → Secrets Manager or SSM parameter ARN.
    pub secrets: BTreeMap<String, String>,
    pub execution_role_arn: Option<String>,
    pub task_role_arn: Option<String>,
    pub health_check_path: String,
    pub log_retention_days: i32,
    pub url_scheme: String,
    /// How long a preview whose ECR image is missing waits for it to be
    /// pushed before it fails (images outside ECR are not checked).
    pub image_wait_secs: u64,
}

impl Default for Container {
    fn default() -> Self {
        let t = Template::default();
        Self {
            image: t.image,
            name: t.container_name,
            port: t.container_port,
            cpu: t.cpu,
            memory: t.memory,
            env: t.env,
            secrets: t.secrets,
            execution_role_arn: None,
            task_role_arn: None,
            health_check_path: t.health_check_path,
            log_retention_days: t.log_retention_days,
            url_scheme: t.url_scheme,
            image_wait_secs: t.image_wait_secs,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerSection {
    /// Written into every ownership tag. Never change it on a live system:
    /// resources tagged with the old id stop being ours.
    pub id: String,
    pub workers: usize,
    pub resync_interval_secs: u64,
    pub progress_interval_ms: u64,
    pub poll_interval_ms: u64,
    /// On SIGTERM/SIGINT, how long reconciles under way may take to finish;
    /// the rest are abandoned and their leases released to other replicas.
    pub shutdown_grace_secs: u64,
    /// How long a claimed preview stays a replica's without renewal (every
    /// quarter of it while a pass runs): how soon another replica takes
    /// over from one that died. Replicas' clocks must agree to within a
    /// quarter of it.
    pub lease_secs: u64,
}

impl Default for ControllerSection {
    fn default() -> Self {
        Self {
            id: "previewd".into(),
            workers: previewd_controller::DEFAULT_WORKERS,
            resync_interval_secs: 300,
            progress_interval_ms: 2000,
            poll_interval_ms: 5000,
            shutdown_grace_secs: 20,
            lease_secs: 15,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimSection {
    pub latency_ms: u64,
    pub service_stable_after_ms: u64,
    pub target_healthy_after_ms: u64,
}

impl Default for SimSection {
    fn default() -> Self {
        Self {
            latency_ms: 20,
            service_stable_after_ms: 3000,
            target_healthy_after_ms: 1000,
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub server: Server,
    pub store: StoreSection,
    pub previews: Previews,
    pub cloud: CloudSection,
    pub naming: NamingConfig,
    pub container: Container,
    pub controller: ControllerSection,
    pub gc: Gc,
    pub github: Github,
    pub callbacks: Callbacks,
    pub sim: SimSection,
    /// The `[[projects]]` entries, each resolved over the top-level
    /// `[previews]`, `[naming]` and `[container]`; empty for a
    /// single-project file (`previews.project`). See [`Config::project_list`].
    pub projects: Vec<ProjectConfig>,
    pub sleep: SleepSection,
    /// `[access]`: the top-level access protection, what every project
    /// starts from (its client secret read at load).
    pub access: AccessSection,
}

/// A value that must never be printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Config {
    /// The sweep interval: as configured, and at least every ttl/6.
    pub fn gc_interval(&self) -> std::time::Duration {
        let ttl_hours = self
            .project_list()
            .iter()
            .map(|p| p.previews.ttl_hours)
            .min()
            .unwrap_or(self.previews.ttl_hours);
        let sixth_of_ttl = ttl_hours.saturating_mul(3600) / 6;
        std::time::Duration::from_secs(self.gc.interval_secs.min(sixth_of_ttl).max(1))
    }

    pub fn sweep_options(&self, dry_run: bool) -> previewd_controller::SweepOptions {
        previewd_controller::SweepOptions {
            dry_run,
            grace: std::time::Duration::from_secs(self.gc.grace_secs),
            max_deletions: self.gc.max_deletions,
        }
    }

    /// The template of the first project (of `[[projects]]`, else of the
    /// top-level sections). The cloud's parts of it are the same for all.
    pub fn template(&self) -> Template {
        let (naming, container, access) = match self.projects.first() {
            Some(p) => (&p.naming, &p.container, &p.access),
            None => (&self.naming, &self.container, &self.access),
        };
        Template {
            access: access.access(),
            ..self.template_of(naming, container)
        }
    }

    /// The template of a project named `naming` and built by `container`.
    pub(crate) fn template_of(&self, naming: &NamingConfig, k: &Container) -> Template {
        let c = &self.cloud;
        // With a pool, its first listener stands where the single one did.
        let first = c.listeners.first();
        let listener_arn = first.map_or(&c.listener_arn, |l| &l.arn);
        let dns = if c.dns_mode == "wildcard" {
            DnsMode::Wildcard
        } else {
            DnsMode::Alias {
                alb_dns_name: first.map_or(&c.alb_dns_name, |l| &l.alb_dns_name).clone(),
                alb_zone_id: first.map_or(&c.alb_zone_id, |l| &l.alb_zone_id).clone(),
            }
        };
        Template {
            controller_id: self.controller.id.clone(),
            naming: naming.clone(),
            image: k.image.clone(),
            container_name: k.name.clone(),
            container_port: k.port,
            cpu: k.cpu.clone(),
            memory: k.memory.clone(),
            env: k.env.clone(),
            secrets: k.secrets.clone(),
            execution_role_arn: k.execution_role_arn.clone(),
            task_role_arn: k.task_role_arn.clone(),
            region: c.region.clone(),
            log_retention_days: k.log_retention_days,
            health_check_path: k.health_check_path.clone(),
            vpc_id: c.vpc_id.clone(),
            subnets: c.subnets.clone(),
            security_groups: c.security_groups.clone(),
            assign_public_ip: c.assign_public_ip,
            dns,
            url_scheme: k.url_scheme.clone(),
            priority_band: first.map_or((c.priority_band_start, c.priority_band_end), |l| {
                (l.priority_band_start, l.priority_band_end)
            }),
            alb_rule_quota: first.map_or(c.alb_rule_quota, |l| l.rule_quota),
            image_wait_secs: k.image_wait_secs,
            listener_arn: listener_arn.clone(),
            // arn:aws:elasticloadbalancing:<region>:<account>:listener/…
            ecr_account: listener_arn
                .split(':')
                .nth(4)
                .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
                .map(str::to_owned),
            ecr_repository: c.ecr_repository(),
            // Per project: `template` and `projects_served` set it.
            access: None,
        }
    }

    /// The API token from `PREVIEWD_API_TOKEN` or `server.api_token_file`,
    /// refused (naming where it came from) when it is empty, blank or
    /// shorter than 32 characters: a weak token is no token at all, and
    /// with a token the daemon agrees to listen beyond loopback.
    pub fn api_token(&self) -> anyhow::Result<Option<previewd_api::ApiToken>> {
        let (source, raw) = match (
            std::env::var("PREVIEWD_API_TOKEN"),
            &self.server.api_token_file,
        ) {
            (Ok(v), _) => ("PREVIEWD_API_TOKEN".to_owned(), v),
            (Err(_), Some(path)) => {
                let v = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("server.api_token_file: cannot read {}: {e}", path.display())
                })?;
                // One trailing newline is how files end, not part of the token.
                let v = v.strip_suffix('\n').unwrap_or(&v);
                let v = v.strip_suffix('\r').unwrap_or(v).to_owned();
                (format!("server.api_token_file ({})", path.display()), v)
            }
            (Err(_), None) => return Ok(None),
        };
        previewd_api::ApiToken::new(&raw)
            .map(Some)
            .map_err(|rule| anyhow::anyhow!("{source}: the API token {rule}"))
    }

    /// `store.url` with the password of `store.password_file` put in.
    pub fn store_url(&self) -> anyhow::Result<Secret> {
        let Some(path) = &self.store.password_file else {
            return Ok(Secret(self.store.url.clone()));
        };
        let password = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("store.password_file: cannot read {}: {e}", path.display())
        })?;
        let password = password.trim_end_matches(['\n', '\r']);
        let mut url = reqwest::Url::parse(&self.store.url)
            .map_err(|e| anyhow::anyhow!("store.url: not a URL ({e})"))?;
        url.set_password(Some(password))
            .map_err(|()| anyhow::anyhow!("store.url: cannot carry a password"))?;
        Ok(Secret(url.to_string()))
    }
}

#[path = "config_load.rs"]
mod load;
pub use load::load;
#[path = "config_pool.rs"]
mod pool;
pub use pool::ListenerEntry;

#[path = "config_projects.rs"]
mod projects;
pub use projects::{ProjectConfig, lifetime_of};

#[path = "config_sleep.rs"]
mod sleep;
pub use sleep::SleepSection;

#[path = "config_access.rs"]
mod access;
pub use access::AccessSection;
