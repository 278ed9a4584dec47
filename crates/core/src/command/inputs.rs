//! The workflow contract's inputs, and how a command is built from them:
//! every rule of the contract that needs neither the store nor DNS. The
//! API's `POST /v1/dispatch` and `previewd once` both build commands here,
//! so a request is refused alike, with the same field named, either way.

use super::{Command, Expiry, Lifetime, ReportTo};
use crate::key::PreviewKey;
use crate::model::{DeployRequest, PreviewSpec};
use crate::naming::NamingConfig;
use serde::Deserialize;

/// Exactly the workflow's `workflow_dispatch` inputs. GitHub sends unset
/// optional inputs as empty strings, so `""` means absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchRequest {
    pub action: String,
    pub branch: String,
    #[serde(default)]
    pub ai_run_id: Option<String>,
    #[serde(default)]
    pub callback_url: Option<String>,
    #[serde(default)]
    pub commit_sha: Option<String>,
    /// The repository the preview belongs to (`owner/name`): required when
    /// more than one project is configured (`Projects::resolve`).
    #[serde(default)]
    pub project: Option<String>,
}

/// An input that broke a rule of the contract: the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct Refusal {
    pub field: String,
    pub rule: String,
}

impl Refusal {
    pub(crate) fn new(field: &str, rule: impl Into<String>) -> Self {
        Refusal {
            field: field.to_owned(),
            rule: rule.into(),
        }
    }
}

fn present(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

pub(crate) fn validate_commit(sha: &str) -> Result<String, Refusal> {
    let ok = (7..=40).contains(&sha.len()) && sha.bytes().all(|c| c.is_ascii_hexdigit());
    if !ok {
        return Err(Refusal::new(
            "commit_sha",
            "must be 7 to 40 hexadecimal characters",
        ));
    }
    Ok(sha.to_ascii_lowercase())
}

fn validate_callback(url: &str) -> Result<(), Refusal> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest
        .and_then(|r| r.split(['/', '?', '#']).next())
        .unwrap_or("");
    if host.is_empty() || url.len() > 2048 || url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(Refusal::new(
            "callback_url",
            "must be an http:// or https:// URL with a host, at most 2048 characters",
        ));
    }
    Ok(())
}

fn validate_run_id(id: &str) -> Result<(), Refusal> {
    if id.len() > 256 || id.chars().any(char::is_control) {
        return Err(Refusal::new(
            "ai_run_id",
            "must be at most 256 characters with no control characters",
        ));
    }
    Ok(())
}

impl DispatchRequest {
    /// The command these inputs ask for in `project`: a deploy named by
    /// `naming`'s rules and living for `lifetime`, or a destroy. The
    /// refusal names the input that broke a rule.
    pub fn command(
        &self,
        project: &str,
        naming: &NamingConfig,
        lifetime: Lifetime,
    ) -> Result<Command, Refusal> {
        let key = PreviewKey::new(project, &self.branch)
            .map_err(|e| Refusal::new(e.field(), e.rule()))?;
        let report_to = || -> Result<ReportTo, Refusal> {
            let callback_url = present(&self.callback_url);
            if let Some(url) = &callback_url {
                validate_callback(url)?;
            }
            let ai_run_id = present(&self.ai_run_id);
            if let Some(id) = &ai_run_id {
                validate_run_id(id)?;
            }
            Ok(ReportTo {
                ai_run_id,
                callback_url,
            })
        };
        match self.action.as_str() {
            "deploy" => {
                let commit = present(&self.commit_sha).ok_or_else(|| {
                    Refusal::new("commit_sha", "is required for action \"deploy\"")
                })?;
                let commit = validate_commit(&commit)?;
                let ReportTo {
                    ai_run_id,
                    callback_url,
                } = report_to()?;
                let spec = PreviewSpec {
                    commit_sha: Some(commit),
                    ai_run_id,
                    callback_url,
                    ..Default::default()
                };
                Ok(Command::Deploy {
                    request: DeployRequest {
                        key,
                        spec,
                        expiry: Expiry::Lifetime(lifetime),
                    },
                    naming: naming.clone(),
                })
            }
            // A destroy that names no run and no callback of its own is
            // reported to the deploy's.
            "destroy" => match report_to()? {
                r if r == ReportTo::default() => Ok(Command::Destroy(key)),
                report_to => Ok(Command::DestroyFor { key, report_to }),
            },
            _ => Err(Refusal::new("action", "must be \"deploy\" or \"destroy\"")),
        }
    }
}
