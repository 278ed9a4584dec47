//! The projects one previewd serves: each a GitHub repository with its own
//! template (container, naming), lifetime and repository, and the rules
//! that pick a project for a dispatch or a webhook.
//!
//! # Guarantees
//! - A pool holds at least one project and no two with the same name
//!   (compared as GitHub does, ignoring case).
//! - A dispatch without `project` goes to the one project when exactly one
//!   is configured, and is refused (naming the field and the rule) when
//!   several are; a dispatch naming an unknown or retired project is refused.
//! - Names never collide across projects: resource names are
//!   `<prefix>-<slug>` and host names `<host label>.<domain>`, and the
//!   store keeps slugs and host labels unique over the whole table, every
//!   project together; a prefix holds no `-`, so two prefixes never share a
//!   listing (`pv-` is not a prefix of `pvx-…`).
//!
//! # Caveats
//! - Host labels are unique across projects even under different domains:
//!   the same branch in two projects with the same host pattern gets the
//!   pattern's label in the first and the fallback in the second. Give
//!   projects distinct host patterns to keep every name predictable.

use crate::command::Lifetime;
use crate::command::Refusal;
use crate::render::Template;
use std::sync::Arc;

/// One repository previewd builds previews of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The GitHub repository, `owner/name`: the project's key in the table,
    /// where its statuses go, and what its webhooks carry.
    pub name: String,
    /// How its previews are built and named.
    pub template: Arc<Template>,
    /// How long its previews live.
    pub lifetime: Lifetime,
    /// Takes no new previews; its live ones are destroyed by the sweep,
    /// with this template, so nothing of them is left behind.
    pub retired: bool,
}

/// A pool of projects that cannot be empty or hold a name twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projects {
    list: Vec<Project>,
    /// Serves a project no entry names: only for pools built from a lone
    /// template ([`Projects::uniform`]), as tests and `once` do.
    fallback: Option<Arc<Template>>,
}

/// Why a list of projects is not a pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectsError {
    #[error("at least one project must be configured")]
    Empty,
    #[error("project {0:?} is configured twice (names compare ignoring case, as GitHub's do)")]
    Duplicate(String),
}

impl Projects {
    /// The pool of `list`, in order.
    pub fn new(list: Vec<Project>) -> Result<Self, ProjectsError> {
        if list.is_empty() {
            return Err(ProjectsError::Empty);
        }
        for (i, p) in list.iter().enumerate() {
            if list[..i]
                .iter()
                .any(|q| q.name.eq_ignore_ascii_case(&p.name))
            {
                return Err(ProjectsError::Duplicate(p.name.clone()));
            }
        }
        Ok(Self {
            list,
            fallback: None,
        })
    }

    /// One template for every project, whatever its name: what a
    /// controller built from a lone template (tests, benchmarks) serves.
    pub fn uniform(template: Arc<Template>) -> Self {
        Self {
            list: Vec::new(),
            fallback: Some(template),
        }
    }

    /// The configured projects, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Project> {
        self.list.iter()
    }

    /// The project named `name` (ignoring case).
    pub fn get(&self, name: &str) -> Option<&Project> {
        self.list.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The template a row of `project` is built, observed and torn down
    /// with; `None` for a project this pool does not know, whose rows must
    /// not be touched with another project's names.
    pub fn template(&self, project: &str) -> Option<&Arc<Template>> {
        self.get(project)
            .map(|p| &p.template)
            .or(self.fallback.as_ref())
    }

    /// Every template: the configured projects' and the fallback.
    pub fn templates(&self) -> impl Iterator<Item = &Arc<Template>> {
        self.list
            .iter()
            .map(|p| &p.template)
            .chain(self.fallback.iter())
    }

    /// The distinct naming prefixes, sorted: observation and garbage
    /// collection list once per prefix, not once per project.
    pub fn prefixes(&self) -> Vec<String> {
        let mut out: Vec<String> = self.templates().map(|t| t.naming.prefix.clone()).collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether any project keeps per-preview DNS records.
    pub fn any_alias_dns(&self) -> bool {
        self.templates()
            .any(|t| matches!(t.dns, crate::render::DnsMode::Alias { .. }))
    }

    /// The project a dispatch (or `once`'s `--project`) asks for: the one
    /// named, or the only one when none is named. The refusal names the
    /// field `project` and the rule.
    pub fn resolve(&self, asked: Option<&str>) -> Result<&Project, Refusal> {
        let asked = asked.map(str::trim).filter(|s| !s.is_empty());
        let open: Vec<&Project> = self.list.iter().filter(|p| !p.retired).collect();
        match asked {
            None => match open.as_slice() {
                [only] if self.list.len() == 1 => Ok(*only),
                _ => Err(Refusal::new(
                    "project",
                    format!(
                        "is required when more than one project is configured (one of: {})",
                        self.names(&open)
                    ),
                )),
            },
            Some(name) => match self.get(name) {
                Some(p) if p.retired => Err(Refusal::new(
                    "project",
                    format!("{:?} is retired: it takes no new previews", p.name),
                )),
                Some(p) => Ok(p),
                None => Err(Refusal::new(
                    "project",
                    format!(
                        "{name:?} is not a configured project (one of: {})",
                        self.names(&open)
                    ),
                )),
            },
        }
    }

    /// [`Projects::resolve`] for a dispatch's `action`: a destroy may name
    /// a retired project (tearing down is what retiring is for); anything
    /// else follows `resolve`'s rules.
    pub fn resolve_for(&self, asked: Option<&str>, action: &str) -> Result<&Project, Refusal> {
        let named = asked.map(str::trim).and_then(|a| self.get(a));
        match named {
            Some(p) if action == "destroy" => Ok(p),
            _ => self.resolve(asked),
        }
    }

    /// The project a GitHub webhook for `repository` (its `full_name`)
    /// belongs to; `None`: no project serves that repository.
    pub fn for_repository(&self, repository: &str) -> Option<&Project> {
        self.get(repository)
    }

    fn names(&self, list: &[&Project]) -> String {
        let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
        if names.is_empty() {
            "none open".into()
        } else {
            names.join(", ")
        }
    }
}

#[cfg(test)]
#[path = "projects_tests.rs"]
mod tests;

/// The longest start every one of `prefixes` shares: one listing filtered
/// on our side with it, then by [`under_any`], serves every project.
pub fn common_prefix(prefixes: &[String]) -> String {
    let Some(first) = prefixes.first() else {
        return String::new();
    };
    let mut len = first.len();
    for p in &prefixes[1..] {
        len = first
            .bytes()
            .zip(p.bytes())
            .take(len)
            .take_while(|(a, b)| a == b)
            .count();
    }
    first[..len].to_owned()
}

/// Whether `name` starts with one of `prefixes`.
pub fn under_any(name: &str, prefixes: &[String]) -> bool {
    prefixes.iter().any(|p| name.starts_with(p.as_str()))
}
