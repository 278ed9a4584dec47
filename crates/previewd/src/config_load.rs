//! Reading the file and the environment, and reporting every problem at
//! once, each with its key.

use super::*;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::path::Path;

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

const SECTIONS: [&str; 13] = [
    "server",
    "store",
    "previews",
    "cloud",
    "naming",
    "container",
    "controller",
    "gc",
    "github",
    "callbacks",
    "sim",
    "sleep",
    "access",
];

/// Variables with the `PREVIEWD_` prefix that are not key overrides.
const NOT_OVERRIDES: [&str; 9] = [
    "PREVIEWD_CONFIG",
    "PREVIEWD_API_TOKEN",
    "PREVIEWD_GITHUB_TOKEN",
    "PREVIEWD_GITHUB_WEBHOOK_SECRET",
    "PREVIEWD_CALLBACK_SECRET",
    // The stack's variable for access protection's OIDC client secret,
    // named by `client_secret_env`.
    "PREVIEWD_ACCESS_CLIENT_SECRET",
    "PREVIEWD_SERVER",
    "PREVIEWD_LOG",
    "PREVIEWD_LOG_FORMAT",
];

fn problem(key: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        key: key.into(),
        message: message.into(),
    }
}

/// Reads `path` (if any), applies `PREVIEWD_<SECTION>_<KEY>` variables from
/// `env`, and checks everything.
pub fn load(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, Vec<Problem>> {
    let mut problems = Vec::new();
    let env: Vec<(String, String)> = env.into_iter().collect();
    let mut root = match path {
        None => toml::Table::new(),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                vec![problem(
                    "--config",
                    format!("cannot read {}: {e}", p.display()),
                )]
            })?;
            text.parse::<toml::Table>().map_err(|e| {
                vec![problem(
                    "--config",
                    format!("{} is not valid TOML: {e}", p.display()),
                )]
            })?
        }
    };
    // The text of every override, for keys that want a string.
    let mut env_raw = HashMap::new();
    // Variables holding access protection's client secrets, not keys.
    let secret_vars = super::access::secret_variables(&root, &env);
    for (name, value) in env.iter().cloned() {
        let Some(rest) = name.strip_prefix("PREVIEWD_") else {
            continue;
        };
        if secret_vars.contains(&name) {
            continue;
        }
        // `[[projects]]` from the environment (the CloudFormation stack's
        // `Projects`): a TOML array of inline tables, replacing the file's.
        if name == "PREVIEWD_PROJECTS" {
            match format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
            {
                Some(v @ toml::Value::Array(_)) => {
                    root.insert("projects".into(), v);
                }
                _ => problems.push(problem(
                    name,
                    "must be a TOML array of inline tables, e.g. [{ project = \"acme/web\" }, { project = \"acme/api\", naming = { prefix = \"api\" } }]",
                )),
            }
            continue;
        }
        if NOT_OVERRIDES.contains(&name.as_str())
            || rest.starts_with("TEST_")
            || rest.starts_with("CHAOS_")
        {
            continue;
        }
        let lower = rest.to_ascii_lowercase();
        let Some(section) = SECTIONS
            .iter()
            .find(|s| lower.starts_with(&format!("{s}_")))
        else {
            problems.push(problem(name, "not a configuration key (PREVIEWD_<SECTION>_<KEY>, sections: server, store, previews, cloud, naming, container, controller, gc, github, callbacks, sim, sleep, access)"));
            continue;
        };
        let key = lower[section.len() + 1..].to_owned();
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"));
        let table = root
            .entry(*section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = table {
            env_raw.insert(format!("{section}.{key}"), value.clone());
            t.insert(key, parsed.unwrap_or(toml::Value::String(value)));
        }
    }
    for key in root.keys() {
        if !SECTIONS.contains(&key.as_str()) && key != "projects" {
            problems.push(problem(
                key.clone(),
                format!("unknown section (known: {}, projects)", SECTIONS.join(", ")),
            ));
        }
    }
    let mut cfg = Config {
        server: section(&root, "server", &env_raw, &mut problems),
        store: section(&root, "store", &env_raw, &mut problems),
        previews: section(&root, "previews", &env_raw, &mut problems),
        cloud: section(&root, "cloud", &env_raw, &mut problems),
        naming: section(&root, "naming", &env_raw, &mut problems),
        container: section(&root, "container", &env_raw, &mut problems),
        controller: section(&root, "controller", &env_raw, &mut problems),
        gc: section(&root, "gc", &env_raw, &mut problems),
        github: section(&root, "github", &env_raw, &mut problems),
        callbacks: section(&root, "callbacks", &env_raw, &mut problems),
        sim: section(&root, "sim", &env_raw, &mut problems),
        projects: Vec::new(),
        sleep: section(&root, "sleep", &env_raw, &mut problems),
        access: section(&root, "access", &env_raw, &mut problems),
    };
    cfg.naming.domain = cfg.naming.domain.trim_end_matches('.').to_owned();
    let env_all: HashMap<String, String> = env.into_iter().collect();
    // Before the projects copy it: each entry starts from the resolved one.
    let url_scheme = cfg.container.url_scheme.clone();
    problems.extend(super::access::resolve(
        &mut cfg.access,
        "access",
        &url_scheme,
        &env_all,
    ));
    cfg.projects = super::projects::read(&root, &cfg, &mut problems);
    problems.extend(super::access::resolve_projects(&mut cfg, &root, &env_all));
    // A file is read by whoever can read the deploy repository or the
    // image; the environment comes from the secret store.
    if !env_raw.contains_key("store.url") && has_password(&cfg.store.url) {
        problems.push(problem(
            "store.url",
            "a password must not sit in the configuration file: set PREVIEWD_STORE_URL, or name a file with store.password_file",
        ));
    }
    problems.extend(check(&cfg));
    problems.extend(super::projects::problems(&cfg, &root));
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(problems)
    }
}

/// Deserializes one section; on an error records it, drops the offending
/// key and tries again, so every bad key in the section is reported.
fn section<T: DeserializeOwned + Default>(
    root: &toml::Table,
    name: &str,
    env_raw: &HashMap<String, String>,
    problems: &mut Vec<Problem>,
) -> T {
    let Some(value) = root.get(name) else {
        return T::default();
    };
    let toml::Value::Table(table) = value else {
        problems.push(problem(name, "must be a table"));
        return T::default();
    };
    let mut table = table.clone();
    for (key, _) in table.iter().filter(|(k, v)| looks_secret(k, v)) {
        problems.push(problem(format!("{name}.{key}"), "secrets never sit in the file: set the PREVIEWD_* variable or name a file with a *_file key"));
    }
    table.retain(|k, v| !looks_secret(k, v));
    for _ in 0..64 {
        match serde_path_to_error::deserialize::<_, T>(toml::Value::Table(table.clone())) {
            Ok(v) => return v,
            Err(e) => {
                let path = e.path().to_string();
                let msg = e.inner().to_string();
                let key = match path.as_str() {
                    "." => msg.split('`').nth(1).unwrap_or("?").to_owned(),
                    p => p.split('.').next().unwrap_or(p).to_owned(),
                };
                // `PREVIEWD_CONTAINER_CPU=256` reads as a number; where the
                // key wants text, take the variable as it was written.
                if let Some(raw) = env_raw.get(&format!("{name}.{key}"))
                    && table.get(&key).is_some_and(|v| !v.is_str())
                {
                    table.insert(key, toml::Value::String(raw.clone()));
                    continue;
                }
                let rule = msg
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty() && !l.starts_with("in `"))
                    .unwrap_or(&msg)
                    .to_owned();
                problems.push(problem(format!("{name}.{key}"), rule));
                if table.remove(&key).is_none() {
                    break;
                }
            }
        }
    }
    T::default()
}

/// A string value under a secret-sounding key. (`container.secrets` is a
/// table of ARNs, which are references, not secrets; a `*_file` key names
/// a file, a `*_env` key a variable, an `*_endpoint` key a URL such as
/// `access.token_endpoint`.)
fn looks_secret(key: &str, value: &toml::Value) -> bool {
    value.is_str()
        && !key.ends_with("_file")
        && !key.ends_with("_env")
        && !key.ends_with("_endpoint")
        && ["token", "secret", "password", "private_key"]
            .iter()
            .any(|s| key.contains(s))
}

/// Whether a URL's userinfo holds a password (`scheme://user:pass@host`).
fn has_password(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| u.password().is_some_and(|p| !p.is_empty()))
}

/// `github.api_url` is where the GitHub token is sent: https only, except
/// to this machine (the tests' fake GitHub).
fn api_url_problem(url: &str) -> Option<String> {
    let Ok(u) = reqwest::Url::parse(url) else {
        return Some(
            "must be an absolute URL (https://api.github.com or your GitHub Enterprise API)".into(),
        );
    };
    let host = u.host_str().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match u.scheme() {
        "https" => None,
        "http" if loopback => None,
        _ => Some("must be https:// (plain http only to a loopback address): the GitHub token travels with every request".into()),
    }
}

/// The longest `container.image_wait_secs`: a day. A build slower than
/// that is a broken build, and the preview should say so.
pub(super) const IMAGE_WAIT_MAX_SECS: u64 = 24 * 3600;

/// CloudWatch Logs accepts only these retention periods.
pub(super) const RETENTION_DAYS: [i32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

fn check(c: &Config) -> Vec<Problem> {
    let mut out: Vec<Problem> = c
        .naming
        .problems()
        .into_iter()
        .map(|(k, e)| problem(format!("naming.{k}"), e.to_string()))
        .collect();
    if c.projects.is_empty()
        && let Err(e) = previewd_core::key::validate_project(&c.previews.project)
    {
        out.push(problem("previews.project", e.to_string()));
    }
    if !(1..=8760).contains(&c.previews.ttl_hours) {
        out.push(problem(
            "previews.ttl_hours",
            "must be between 1 and 8760 (a year)",
        ));
    }
    if c.previews.max_lifetime_hours < c.previews.ttl_hours
        || c.previews.max_lifetime_hours > 87_600
    {
        out.push(problem(
            "previews.max_lifetime_hours",
            "must be at least ttl_hours and at most 87600",
        ));
    }
    if let Some(rule) = api_url_problem(&c.github.api_url) {
        out.push(problem("github.api_url", rule));
    }
    if let Some(rule) = c
        .github
        .preview_label
        .as_deref()
        .and_then(previewd_core::pull_request::label_problem)
    {
        out.push(problem("github.preview_label", rule));
    }
    let s = &c.server;
    if !(1..=65_536).contains(&s.max_connections) {
        out.push(problem("server.max_connections", "must be 1..=65536"));
    }
    for (key, secs) in [
        (
            "server.header_read_timeout_secs",
            s.header_read_timeout_secs,
        ),
        ("server.request_timeout_secs", s.request_timeout_secs),
    ] {
        if !(1..=600).contains(&secs) {
            out.push(problem(key, "must be 1..=600 (seconds)"));
        }
    }
    if s.internal_listen
        .is_some_and(|i| i.port() != 0 && i == s.listen)
    {
        out.push(problem(
            "server.internal_listen",
            "must differ from server.listen: the pages must not share the public listener",
        ));
    }
    if c.store.password_file.is_some() && !c.store.url.starts_with("postgres") {
        out.push(problem(
            "store.password_file",
            "only a postgres:// store has a password",
        ));
    }
    if let Err(e) = previewd_github::CallbackPolicy::new(&c.callbacks.allowed_hosts) {
        out.push(problem("callbacks.allowed_hosts", e));
    }
    let app = [
        c.github.app_id.is_some(),
        c.github.installation_id.is_some(),
        c.github.private_key_file.is_some(),
    ];
    if app.iter().any(|x| *x) && !app.iter().all(|x| *x) {
        out.push(problem(
            "github.app_id",
            "a GitHub App needs app_id, installation_id and private_key_file together",
        ));
    }
    out.extend(super::sleep::problems(c));
    if c.gc.interval_secs == 0 {
        out.push(problem("gc.interval_secs", "must be at least 1"));
    }
    if c.gc.max_deletions == 0 {
        out.push(problem(
            "gc.max_deletions",
            "must be at least 1 (the brake would stop every sweep)",
        ));
    }
    if c.naming.domain.len() > 60 {
        out.push(problem("naming.domain", "must be at most 60 characters: a preview host (label + domain) must fit the ALB's 128-character host condition"));
    }
    for (key, ms) in [
        (
            "controller.progress_interval_ms",
            c.controller.progress_interval_ms,
        ),
        ("controller.poll_interval_ms", c.controller.poll_interval_ms),
    ] {
        if ms < 20 {
            out.push(problem(key, "must be at least 20 (milliseconds)"));
        }
    }
    for (key, rule) in super::projects::container_problems(&c.container) {
        out.push(problem(format!("container.{key}"), rule));
    }
    let url = &c.store.url;
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        out.push(problem(
            "store.url",
            "must start with sqlite:, postgres:// or postgresql://",
        ));
    }
    if c.cloud.kind == CloudKind::Aws {
        out.extend(aws_problems(&c.cloud));
    }
    out.extend(
        super::pool::problems(&c.cloud)
            .into_iter()
            .map(|(k, m)| problem(k, m)),
    );
    if !matches!(c.cloud.dns_mode.as_str(), "alias" | "wildcard") {
        out.push(problem(
            "cloud.dns_mode",
            "must be \"alias\" or \"wildcard\"",
        ));
    }
    let (start, end) = (c.cloud.priority_band_start, c.cloud.priority_band_end);
    if !(1..=50_000).contains(&start) || !(1..=50_000).contains(&end) || start > end {
        out.push(problem(
            "cloud.priority_band_start",
            "the band must lie within 1..=50000 with start <= end",
        ));
    }
    if c.cloud.subnets.is_empty() {
        out.push(problem("cloud.subnets", "must name at least one subnet"));
    }
    let id = &c.controller.id;
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        out.push(problem("controller.id", "must be 1..=64 of [A-Za-z0-9-_.]"));
    }
    if !(4..=600).contains(&c.controller.lease_secs) {
        out.push(problem(
            "controller.lease_secs",
            "must be 4..=600 (seconds; it is renewed every quarter of it)",
        ));
    }
    if !(1..=256).contains(&c.controller.workers) {
        out.push(problem("controller.workers", "must be between 1 and 256"));
    }
    if c.controller.resync_interval_secs == 0 {
        out.push(problem(
            "controller.resync_interval_secs",
            "must be at least 1",
        ));
    }
    // The simulator paces previewd too, so this holds for either kind.
    if !(1..=100).contains(&c.cloud.api_share_percent) {
        out.push(problem("cloud.api_share_percent", "must be 1..=100"));
    }
    out
}

/// What `cloud.kind = "aws"` needs that the simulator does not.
fn aws_problems(c: &crate::config::CloudSection) -> Vec<Problem> {
    let mut out = Vec::new();
    // A pool's entries are checked on their own (`config_pool`).
    if c.listeners.is_empty() && !super::pool::is_listener_arn(&c.listener_arn) {
        out.push(problem(
            "cloud.listener_arn",
            "must be an Application Load Balancer listener ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/…)",
        ));
    }
    if c.cluster.trim().is_empty() {
        out.push(problem("cloud.cluster", "must name the ECS cluster"));
    }
    if c.dns_mode == "alias" {
        if c.hosted_zone_id.trim().is_empty() {
            out.push(problem(
                "cloud.hosted_zone_id",
                "must name the Route53 zone of naming.domain (or set dns_mode = \"wildcard\")",
            ));
        }
        if c.listeners.is_empty()
            && (c.alb_dns_name.trim().is_empty() || c.alb_zone_id.trim().is_empty())
        {
            out.push(problem(
                "cloud.alb_dns_name",
                "alias records need the load balancer's DNS name and canonical zone id (alb_zone_id)",
            ));
        }
    }
    if !c.vpc_id.starts_with("vpc-") {
        out.push(problem("cloud.vpc_id", "must be a VPC id (vpc-…)"));
    }
    if let Some(bad) = c.subnets.iter().find(|s| !s.starts_with("subnet-")) {
        out.push(problem(
            "cloud.subnets",
            format!("{bad:?} is not a subnet id (subnet-…)"),
        ));
    }
    if c.security_groups.is_empty() || c.security_groups.iter().any(|s| !s.starts_with("sg-")) {
        out.push(problem(
            "cloud.security_groups",
            "must list at least one security group id (sg-…)",
        ));
    }
    if !(1..=300).contains(&c.call_timeout_secs) {
        out.push(problem("cloud.call_timeout_secs", "must be 1..=300"));
    }
    out
}
