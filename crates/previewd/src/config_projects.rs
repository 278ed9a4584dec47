//! Several projects in one file: `[[projects]]` entries, each resolved over
//! the top-level `[previews]`, `[naming]` and `[container]` sections.
//!
//! The rule a user reads in the example file: the top-level sections are
//! what every project starts from; a `[[projects]]` entry names its
//! repository (`project`) and sets only what differs (`ttl_hours`,
//! `max_lifetime_hours`, `[projects.naming]`, `[projects.container]`, key by
//! key; `env` and `secrets` replace the top-level tables whole). A file
//! without `[[projects]]` is one project, `previews.project`, exactly as
//! before. Setting `previews.project` next to `[[projects]]` is refused: it
//! would be unclear whether it is a project of its own.

use super::load::Problem;
use super::*;

/// One project as configured, its sections resolved.
#[derive(Debug, Clone)]
pub struct ProjectConfig {
    /// The repository, `owner/name`.
    pub project: String,
    /// `ttl_hours` and `max_lifetime_hours` (its `project` is `project`).
    pub previews: Previews,
    pub naming: NamingConfig,
    pub container: Container,
    /// Takes no new previews; the sweep destroys its live ones. Remove the
    /// entry once they are all gone.
    pub retired: bool,
    /// Access protection (`[access]`, or `[projects.access]` over it).
    pub access: AccessSection,
}

/// How long a preview of a project with these settings lives.
pub fn lifetime_of(p: &Previews) -> previewd_core::Lifetime {
    previewd_core::Lifetime {
        ttl: std::time::Duration::from_secs(p.ttl_hours * 3600),
        max_lifetime: std::time::Duration::from_secs(p.max_lifetime_hours * 3600),
    }
}

impl Config {
    /// Every project: the `[[projects]]` entries, or the one project of the
    /// top-level sections.
    pub fn project_list(&self) -> Vec<ProjectConfig> {
        if !self.projects.is_empty() {
            return self.projects.clone();
        }
        vec![ProjectConfig {
            project: self.previews.project.clone(),
            previews: self.previews.clone(),
            naming: self.naming.clone(),
            container: self.container.clone(),
            retired: false,
            access: self.access.clone(),
        }]
    }

    /// The projects the controller, the API and the sweep serve.
    pub fn projects_served(&self) -> previewd_core::projects::Projects {
        let list = self
            .project_list()
            .into_iter()
            .map(|p| previewd_core::projects::Project {
                template: std::sync::Arc::new(previewd_core::render::Template {
                    access: p.access.access(),
                    ..self.template_of(&p.naming, &p.container)
                }),
                lifetime: lifetime_of(&p.previews),
                name: p.project,
                retired: p.retired,
            })
            .collect();
        // `load` refused empty lists and duplicate names.
        previewd_core::projects::Projects::new(list).expect("checked by config::load")
    }

    /// What the IAM policy is scoped to: every listener of the pool, and
    /// every project's prefix and task roles.
    pub fn policy_scope(&self) -> previewd_aws::policy::PolicyScope {
        let projects = self.project_list();
        let mut pass_roles: Vec<String> = projects
            .iter()
            .flat_map(|p| {
                let k = &p.container;
                k.execution_role_arn
                    .iter()
                    .chain(k.task_role_arn.iter())
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        // Each role once, in the order the projects name them.
        let mut seen = std::collections::BTreeSet::new();
        pass_roles.retain(|r| seen.insert(r.clone()));
        let pool = self.pool();
        previewd_aws::policy::PolicyScope {
            listener_arn: pool.first().arn.clone(),
            more_listeners: pool.arns().skip(1).map(str::to_owned).collect(),
            cluster: self.cloud.cluster.clone(),
            prefix: projects[0].naming.prefix.clone(),
            other_prefixes: projects[1..]
                .iter()
                .map(|p| p.naming.prefix.clone())
                .collect(),
            hosted_zone_id: self.cloud.hosted_zone_id.clone(),
            pass_roles,
            ecr_repository: self.cloud.ecr_repository(),
        }
    }

    /// Refuses to run while the table holds previews, not yet deleted, of a
    /// project the configuration no longer names: their names (prefix,
    /// domain) are unknown, so they could be neither reconciled nor torn
    /// down, and their resources would be left running. Keeping the project
    /// as a `[[projects]]` entry with `retired = true` tears them down first.
    pub(crate) async fn refuse_unknown_projects(
        &self,
        store: &dyn previewd_core::ports::Store,
    ) -> anyhow::Result<()> {
        use previewd_core::model::{ListFilter, Phase};
        let pool = self.projects_served();
        let rows = store
            .list(&ListFilter::default())
            .await
            .map_err(|e| anyhow::anyhow!("listing previews: {e}"))?;
        let mut unknown: Vec<&str> = rows
            .iter()
            .filter(|p| p.status.phase != Phase::Deleted && pool.get(&p.key.project).is_none())
            .map(|p| p.key.project.as_str())
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        if !unknown.is_empty() {
            anyhow::bail!(
                "projects: the store holds live previews of {} which the configuration does not name; add each back as a [[projects]] entry with retired = true (its previews are then torn down), or with its settings to keep serving it",
                unknown.join(", ")
            );
        }
        Ok(())
    }

    /// The simulated hosted zone: the longest domain every project's lies in.
    pub(crate) fn sim_zone(&self) -> String {
        let domains: Vec<String> = self
            .project_list()
            .into_iter()
            .map(|p| p.naming.domain)
            .collect();
        let mut zone: Vec<&str> = domains[0].rsplit('.').collect();
        for d in &domains[1..] {
            let labels: Vec<&str> = d.rsplit('.').collect();
            let same = zone.iter().zip(&labels).take_while(|(a, b)| a == b).count();
            zone.truncate(same);
        }
        zone.reverse();
        zone.join(".")
    }
}

const ENTRY_KEYS: [&str; 7] = [
    "project",
    "ttl_hours",
    "max_lifetime_hours",
    "retired",
    "naming",
    "container",
    "access",
];

fn problem(key: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        key: key.into(),
        message: message.into(),
    }
}

/// Reads `[[projects]]` from `root` over the resolved top-level sections.
/// Problems are keyed `projects[N].KEY` (N from 0, in file order).
pub(super) fn read(
    root: &toml::Table,
    top: &Config,
    problems: &mut Vec<Problem>,
) -> Vec<ProjectConfig> {
    let Some(value) = root.get("projects") else {
        return Vec::new();
    };
    let Some(entries) = value.as_array() else {
        problems.push(problem(
            "projects",
            "must be an array of tables: one [[projects]] entry per repository",
        ));
        return Vec::new();
    };
    if root
        .get("previews")
        .and_then(|p| p.get("project"))
        .is_some()
    {
        problems.push(problem(
            "previews.project",
            "must not be set together with [[projects]]: name each repository in its own [[projects]] entry (`project = \"owner/name\"`); the top-level sections are what every entry starts from",
        ));
    }
    if entries.is_empty() {
        problems.push(problem("projects", "must hold at least one entry"));
    }
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("projects[{i}]");
        let Some(t) = entry.as_table() else {
            problems.push(problem(&at, "must be a table ([[projects]])"));
            continue;
        };
        for k in t.keys().filter(|k| !ENTRY_KEYS.contains(&k.as_str())) {
            problems.push(problem(
                format!("{at}.{k}"),
                format!("unknown key (known: {})", ENTRY_KEYS.join(", ")),
            ));
        }
        // Kept even when missing (as ""), so entries keep their indices.
        let project = match t.get("project").map(|v| v.as_str()) {
            Some(Some(p)) => p.to_owned(),
            Some(None) => {
                problems.push(problem(
                    format!("{at}.project"),
                    "must be a string, the repository owner/name",
                ));
                String::new()
            }
            None => {
                problems.push(problem(
                    format!("{at}.project"),
                    "is required: the repository owner/name",
                ));
                String::new()
            }
        };
        let mut previews = top.previews.clone();
        previews.project = project.clone();
        for (key, slot) in [
            ("ttl_hours", &mut previews.ttl_hours),
            ("max_lifetime_hours", &mut previews.max_lifetime_hours),
        ] {
            match t
                .get(key)
                .map(|v| v.as_integer().and_then(|n| u64::try_from(n).ok()))
            {
                None => {}
                Some(Some(n)) => *slot = n,
                Some(None) => problems.push(problem(
                    format!("{at}.{key}"),
                    "must be a whole number of hours",
                )),
            }
        }
        let retired = match t.get("retired").map(toml::Value::as_bool) {
            None => false,
            Some(Some(b)) => b,
            Some(None) => {
                problems.push(problem(format!("{at}.retired"), "must be true or false"));
                false
            }
        };
        let naming = overlay(
            &top.naming,
            t.get("naming"),
            &format!("{at}.naming"),
            problems,
        );
        let container = overlay(
            &top.container,
            t.get("container"),
            &format!("{at}.container"),
            problems,
        );
        // Setting `kind` starts the project's access afresh: the top
        // level's keys of another kind (or of none) do not carry over.
        let own_kind = t
            .get("access")
            .and_then(toml::Value::as_table)
            .is_some_and(|a| a.contains_key("kind"));
        let access_base = if own_kind {
            AccessSection::default()
        } else {
            top.access.clone()
        };
        // Overlaying nothing keeps the top level's resolved secret.
        let access = overlay(
            &access_base,
            t.get("access"),
            &format!("{at}.access"),
            problems,
        );
        out.push(ProjectConfig {
            project,
            previews,
            access,
            naming: NamingConfig {
                domain: naming.domain.trim_end_matches('.').to_owned(),
                ..naming
            },
            container,
            retired,
        });
    }
    out
}

/// `base` with the keys of `overrides` put over it; a bad key is reported
/// under `at` and the base's value kept.
fn overlay<T: Serialize + serde::de::DeserializeOwned + Clone>(
    base: &T,
    overrides: Option<&toml::Value>,
    at: &str,
    problems: &mut Vec<Problem>,
) -> T {
    let Some(overrides) = overrides else {
        return base.clone();
    };
    let Some(overrides) = overrides.as_table() else {
        problems.push(problem(at, "must be a table"));
        return base.clone();
    };
    let Ok(toml::Value::Table(mut merged)) = toml::Value::try_from(base) else {
        return base.clone();
    };
    for (k, v) in overrides {
        let mut one = merged.clone();
        one.insert(k.clone(), v.clone());
        match toml::Value::Table(one).try_into::<T>() {
            Ok(_) => {
                merged.insert(k.clone(), v.clone());
            }
            Err(e) => {
                let rule = e.message().lines().next().unwrap_or("invalid").to_owned();
                problems.push(problem(format!("{at}.{k}"), rule));
            }
        }
    }
    toml::Value::Table(merged)
        .try_into::<T>()
        .unwrap_or_else(|_| base.clone())
}

/// What is wrong with each entry's resolved settings, beyond what the
/// top-level checks already said: only keys the entry sets are checked
/// again, so one bad top-level key is reported once.
pub(super) fn problems(c: &Config, raw: &toml::Table) -> Vec<Problem> {
    let mut out = Vec::new();
    let entries = raw.get("projects").and_then(toml::Value::as_array);
    for (i, p) in c.projects.iter().enumerate() {
        let at = format!("projects[{i}]");
        let entry = entries
            .and_then(|e| e.get(i))
            .and_then(toml::Value::as_table);
        let set = |section: &str, key: &str| {
            entry
                .and_then(|t| t.get(section))
                .and_then(toml::Value::as_table)
                .is_some_and(|s| s.contains_key(key))
        };
        if p.project.is_empty() {
            // Reported by `read`.
        } else if let Err(e) = previewd_core::key::validate_project(&p.project) {
            out.push(problem(format!("{at}.project"), e.to_string()));
        } else if p.project.split('/').count() != 2 || p.project.split('/').any(str::is_empty) {
            out.push(problem(
                format!("{at}.project"),
                "must be the GitHub repository, owner/name",
            ));
        }
        if i > 0
            && !p.project.is_empty()
            && c.projects[..i]
                .iter()
                .any(|q| q.project.eq_ignore_ascii_case(&p.project))
        {
            out.push(problem(
                format!("{at}.project"),
                format!(
                    "{:?} is configured twice: one entry per repository",
                    p.project
                ),
            ));
        }
        for (k, e) in p.naming.problems() {
            if set("naming", k) {
                out.push(problem(format!("{at}.naming.{k}"), e.to_string()));
            }
        }
        if set("naming", "domain") && p.naming.domain.len() > 60 {
            out.push(problem(
                format!("{at}.naming.domain"),
                "must be at most 60 characters",
            ));
        }
        if !(1..=8760).contains(&p.previews.ttl_hours) {
            out.push(problem(
                format!("{at}.ttl_hours"),
                "must be between 1 and 8760 (a year)",
            ));
        }
        if p.previews.max_lifetime_hours < p.previews.ttl_hours
            || p.previews.max_lifetime_hours > 87_600
        {
            out.push(problem(
                format!("{at}.max_lifetime_hours"),
                "must be at least ttl_hours and at most 87600",
            ));
        }
        for (key, rule) in container_problems(&p.container) {
            if set("container", key.split('.').next().unwrap_or(&key)) {
                out.push(problem(format!("{at}.container.{key}"), rule));
            }
        }
    }
    out
}

/// What is wrong with a `[container]` section (the top-level one or a
/// project's), as (key under the section, rule).
pub(super) fn container_problems(k: &Container) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for key in k.env.keys() {
        let upper = key.to_ascii_uppercase();
        if ["PASSWORD", "SECRET", "TOKEN", "PRIVATE_KEY"]
            .iter()
            .any(|s| upper.contains(s))
        {
            out.push((format!("env.{key}"), "looks like a secret: put its Secrets Manager or SSM ARN under [container.secrets] instead".to_owned()));
        }
    }
    if !super::load::RETENTION_DAYS.contains(&k.log_retention_days) {
        out.push((
            "log_retention_days".into(),
            format!(
                "must be one of CloudWatch's periods {:?}",
                super::load::RETENTION_DAYS
            ),
        ));
    }
    if k.port == 0 {
        out.push(("port".into(), "must be 1..=65535".into()));
    }
    if !(1..=super::load::IMAGE_WAIT_MAX_SECS).contains(&k.image_wait_secs) {
        out.push((
            "image_wait_secs".into(),
            format!("must be 1..={} (seconds)", super::load::IMAGE_WAIT_MAX_SECS),
        ));
    }
    if !matches!(k.url_scheme.as_str(), "http" | "https") {
        out.push(("url_scheme".into(), "must be \"http\" or \"https\"".into()));
    }
    out
}

#[cfg(test)]
#[path = "config_projects_tests.rs"]
mod tests;
