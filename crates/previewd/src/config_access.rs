//! `[access]`: access protection (issue 18). A project's preview rules
//! authenticate the visitor (`kind = "oidc"` or `"cognito"`) before they
//! forward. Set at the top level, it is what every `[[projects]]` entry
//! starts from; `[projects.access]` overrides it key by key, or, when it
//! sets `kind`, replaces it whole (`kind = "none"` turns it off).
//!
//! The OIDC client secret is read once, at load, from the variable named
//! by `client_secret_env` or the file `client_secret_file`; never from the
//! configuration file, and it never prints.

use super::load::Problem;
use previewd_core::access::{
    Access, ClientSecret, Cognito, Oidc, OnUnauthenticated, RuleAuth, Session,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessKind {
    /// No protection: the rule only forwards.
    #[default]
    None,
    Oidc,
    Cognito,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessSection {
    pub kind: AccessKind,
    /// OIDC: the identity provider's issuer and endpoints (https URLs).
    pub issuer: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub user_info_endpoint: Option<String>,
    pub client_id: Option<String>,
    /// OIDC: the variable holding the client secret (exactly one of this
    /// and `client_secret_file`).
    pub client_secret_env: Option<String>,
    /// OIDC: a file holding the client secret (one trailing newline is
    /// not part of it).
    pub client_secret_file: Option<PathBuf>,
    /// Cognito: the user pool, its app client and its domain (the prefix
    /// or the custom domain).
    pub user_pool_arn: Option<String>,
    pub user_pool_client_id: Option<String>,
    pub user_pool_domain: Option<String>,
    /// Either kind; AWS's defaults when unset (`openid`,
    /// `AWSELBAuthSessionCookie`, 604800 s, `authenticate`).
    pub scope: Option<String>,
    pub session_cookie_name: Option<String>,
    pub session_timeout_secs: Option<i64>,
    /// `authenticate` (send to the login page), `deny` (401) or `allow`.
    pub on_unauthenticated: Option<String>,
    /// The client secret read at load; never serialized, never printed.
    #[serde(skip)]
    pub client_secret: Option<ClientSecret>,
}

const OIDC_KEYS: [&str; 7] = [
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "user_info_endpoint",
    "client_id",
    "client_secret_env",
    "client_secret_file",
];
const COGNITO_KEYS: [&str; 3] = ["user_pool_arn", "user_pool_client_id", "user_pool_domain"];

impl AccessSection {
    pub fn is_on(&self) -> bool {
        self.kind != AccessKind::None
    }

    /// What the template carries: `None` when off. Only meaningful once
    /// [`resolve`] found no problem.
    pub fn access(&self) -> Option<Access> {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let session = Session {
            scope: self
                .scope
                .clone()
                .unwrap_or_else(|| previewd_core::access::DEFAULT_SCOPE.into()),
            cookie_name: self
                .session_cookie_name
                .clone()
                .unwrap_or_else(|| previewd_core::access::DEFAULT_SESSION_COOKIE_NAME.into()),
            timeout_secs: self
                .session_timeout_secs
                .unwrap_or(previewd_core::access::DEFAULT_SESSION_TIMEOUT_SECS),
            on_unauthenticated: self
                .on_unauthenticated
                .as_deref()
                .and_then(OnUnauthenticated::parse)
                .unwrap_or_default(),
        };
        let auth = match self.kind {
            AccessKind::None => return None,
            AccessKind::Oidc => RuleAuth::Oidc(Oidc {
                issuer: s(&self.issuer),
                authorization_endpoint: s(&self.authorization_endpoint),
                token_endpoint: s(&self.token_endpoint),
                user_info_endpoint: s(&self.user_info_endpoint),
                client_id: s(&self.client_id),
                session,
            }),
            AccessKind::Cognito => RuleAuth::Cognito(Cognito {
                user_pool_arn: s(&self.user_pool_arn),
                user_pool_client_id: s(&self.user_pool_client_id),
                user_pool_domain: s(&self.user_pool_domain),
                session,
            }),
        };
        Some(Access {
            auth,
            client_secret: self.client_secret.clone(),
        })
    }

    /// Where the secret comes from, for `config check` (never the value).
    pub fn secret_source(&self) -> Option<String> {
        match (&self.client_secret_env, &self.client_secret_file) {
            (Some(var), _) => Some(format!("the variable {var}")),
            (None, Some(path)) => Some(format!("the file {}", path.display())),
            (None, None) => None,
        }
    }

    fn set(&self, key: &str) -> bool {
        match key {
            "issuer" => self.issuer.is_some(),
            "authorization_endpoint" => self.authorization_endpoint.is_some(),
            "token_endpoint" => self.token_endpoint.is_some(),
            "user_info_endpoint" => self.user_info_endpoint.is_some(),
            "client_id" => self.client_id.is_some(),
            "client_secret_env" => self.client_secret_env.is_some(),
            "client_secret_file" => self.client_secret_file.is_some(),
            "user_pool_arn" => self.user_pool_arn.is_some(),
            "user_pool_client_id" => self.user_pool_client_id.is_some(),
            "user_pool_domain" => self.user_pool_domain.is_some(),
            _ => false,
        }
    }
}

impl super::Config {
    /// The projects whose previews authenticate visitors (`[access]` on).
    pub fn protected_projects(&self) -> Vec<String> {
        self.project_list()
            .into_iter()
            .filter(|p| p.access.is_on())
            .map(|p| p.project)
            .collect()
    }
}

/// An absolute https URL with a host: what AWS takes for the issuer and
/// the endpoints (the visitor's browser is sent to them).
fn https_url(v: &str) -> Option<String> {
    match reqwest::Url::parse(v) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()) => None,
        Ok(_) => Some(format!("must be an https:// URL with a host (got {v:?})")),
        Err(_) => Some(format!("must be an absolute https:// URL (got {v:?})")),
    }
}

/// `arn:aws:cognito-idp:REGION:ACCOUNT:userpool/REGION_ID`.
fn user_pool_arn(v: &str) -> bool {
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts[..] else {
        return false;
    };
    let Some(pool) = resource.strip_prefix("userpool/") else {
        return false;
    };
    let token =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    arn == "arn"
        && partition.starts_with("aws")
        && service == "cognito-idp"
        && token(region)
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && pool.split_once('_').is_some_and(|(r, id)| {
            r == region && !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// Checks `a` (the section at `at`: `access` or `projects[N].access`) and
/// reads its client secret from `env` or its file into it.
pub(super) fn resolve(
    a: &mut AccessSection,
    at: &str,
    url_scheme: &str,
    env: &HashMap<String, String>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut bad = |key: &str, message: String| {
        out.push(Problem {
            key: format!("{at}.{key}"),
            message,
        })
    };
    let (mine, theirs): (&[&str], &[&str]) = match a.kind {
        AccessKind::None => return Vec::new(),
        AccessKind::Oidc => (&OIDC_KEYS, &COGNITO_KEYS),
        AccessKind::Cognito => (&COGNITO_KEYS, &OIDC_KEYS),
    };
    let kind = if a.kind == AccessKind::Oidc {
        "oidc"
    } else {
        "cognito"
    };
    for key in theirs.iter().filter(|k| a.set(k)) {
        bad(key, format!("is not a key of kind = \"{kind}\""));
    }
    for key in mine
        .iter()
        .filter(|k| !k.starts_with("client_secret") && !a.set(k))
    {
        bad(key, format!("is required with kind = \"{kind}\""));
    }
    if url_scheme != "https" {
        bad(
            "kind",
            format!(
                "authenticate actions work only on an HTTPS listener, and container.url_scheme is {url_scheme:?}: serve previews on an HTTPS listener (url_scheme = \"https\")"
            ),
        );
    }
    let endpoints = [
        ("issuer", &a.issuer),
        ("authorization_endpoint", &a.authorization_endpoint),
        ("token_endpoint", &a.token_endpoint),
        ("user_info_endpoint", &a.user_info_endpoint),
    ];
    for (key, v) in endpoints {
        if let Some(rule) = v.as_deref().and_then(https_url) {
            bad(key, rule);
        }
    }
    let id_like =
        |v: &str| !v.is_empty() && v.len() <= 256 && v.bytes().all(|b| b.is_ascii_graphic());
    if a.client_id.as_deref().is_some_and(|v| !id_like(v)) {
        bad(
            "client_id",
            "must be 1..=256 printable characters, no spaces".into(),
        );
    }
    if a.user_pool_arn
        .as_deref()
        .is_some_and(|v| !user_pool_arn(v))
    {
        bad(
            "user_pool_arn",
            "must be a Cognito user pool ARN (arn:aws:cognito-idp:REGION:ACCOUNT:userpool/REGION_ID)".into(),
        );
    }
    if a.user_pool_client_id.as_deref().is_some_and(|v| {
        v.is_empty() || v.len() > 128 || !v.bytes().all(|b| b.is_ascii_alphanumeric())
    }) {
        bad(
            "user_pool_client_id",
            "must be the app client id: 1..=128 letters and digits".into(),
        );
    }
    if a.user_pool_domain.as_deref().is_some_and(|v| {
        v.is_empty()
            || v.len() > 253
            || v.contains("://")
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    }) {
        bad(
            "user_pool_domain",
            "must be the user pool's domain prefix (my-previews) or its custom domain (auth.example.com), without https://".into(),
        );
    }
    if a.scope.as_deref().is_some_and(|v| {
        v.trim().is_empty()
            || v.len() > 256
            || !v.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
    }) {
        bad("scope", "must be 1..=256 printable characters (claims separated by spaces, e.g. \"openid email\")".into());
    }
    if a.session_cookie_name.as_deref().is_some_and(|v| {
        v.is_empty()
            || v.len() > 64
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }) {
        bad(
            "session_cookie_name",
            "must be 1..=64 of [A-Za-z0-9_-]".into(),
        );
    }
    if a.session_timeout_secs
        .is_some_and(|s| !(1..=604_800).contains(&s))
    {
        bad(
            "session_timeout_secs",
            "must be 1..=604800 (seconds; AWS allows at most 7 days)".into(),
        );
    }
    if a.on_unauthenticated
        .as_deref()
        .is_some_and(|v| OnUnauthenticated::parse(v).is_none())
    {
        bad(
            "on_unauthenticated",
            "must be \"authenticate\", \"deny\" or \"allow\"".into(),
        );
    }
    match (a.kind, &a.client_secret_env, &a.client_secret_file) {
        (AccessKind::Cognito, None, None) => {}
        (AccessKind::Cognito, _, _) => bad(
            if a.client_secret_env.is_some() { "client_secret_env" } else { "client_secret_file" },
            "is not a key of kind = \"cognito\": the load balancer reads the app client's secret from the user pool".into(),
        ),
        (_, Some(_), Some(_)) => bad(
            "client_secret_env",
            "set exactly one of client_secret_env and client_secret_file".into(),
        ),
        (_, None, None) => bad(
            "client_secret_env",
            "is required with kind = \"oidc\" (or client_secret_file): the client secret never sits in the configuration file".into(),
        ),
        (_, Some(var), None) => match env.get(var) {
            Some(v) if !v.trim().is_empty() => a.client_secret = Some(ClientSecret::new(v.as_str())),
            Some(_) => bad("client_secret_env", format!("the variable {var} is empty")),
            None => bad("client_secret_env", format!("the variable {var} is not set")),
        },
        (_, None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(v) => {
                let v = v.strip_suffix('\n').unwrap_or(&v);
                let v = v.strip_suffix('\r').unwrap_or(v);
                if v.trim().is_empty() {
                    bad("client_secret_file", format!("{} is empty", path.display()));
                } else {
                    a.client_secret = Some(ClientSecret::new(v));
                }
            }
            // The io error names the cause, never the content.
            Err(e) => bad("client_secret_file", format!("cannot read {}: {e}", path.display())),
        },
    }
    out
}

/// The variables named by `client_secret_env` anywhere (the file's
/// `[access]` and `[[projects]]` entries, and `PREVIEWD_ACCESS_CLIENT_SECRET_ENV`):
/// they hold secrets, not configuration keys, even when they start with
/// `PREVIEWD_`.
pub(super) fn secret_variables(root: &toml::Table, env: &[(String, String)]) -> Vec<String> {
    let named = |t: Option<&toml::Value>| {
        t.and_then(|a| a.get("client_secret_env"))
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
    };
    let mut out: Vec<String> = named(root.get("access")).into_iter().collect();
    if let Some(entries) = root.get("projects").and_then(toml::Value::as_array) {
        out.extend(entries.iter().filter_map(|e| named(e.get("access"))));
    }
    for (k, v) in env {
        match k.as_str() {
            "PREVIEWD_ACCESS_CLIENT_SECRET_ENV" => out.push(v.clone()),
            // `[[projects]]` from the environment (read by `load` too).
            "PREVIEWD_PROJECTS" => {
                let parsed = format!("v = {v}").parse::<toml::Table>().ok();
                if let Some(entries) = parsed
                    .as_ref()
                    .and_then(|t| t.get("v"))
                    .and_then(toml::Value::as_array)
                {
                    out.extend(entries.iter().filter_map(|e| named(e.get("access"))));
                }
            }
            _ => {}
        }
    }
    out
}

/// Checks and resolves every `[[projects]]` entry's access (each entry
/// resolved over the top-level `[access]` by `projects::read`). An entry
/// that sets no `[projects.access]` shares the top level's, checked and
/// read once already; only its URL scheme is its own.
pub(super) fn resolve_projects(
    cfg: &mut super::Config,
    root: &toml::Table,
    env: &HashMap<String, String>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let entries = root.get("projects").and_then(toml::Value::as_array);
    for (i, p) in cfg.projects.iter_mut().enumerate() {
        let own = entries
            .and_then(|e| e.get(i))
            .and_then(|e| e.get("access"))
            .is_some();
        let at = format!("projects[{i}].access");
        if own {
            out.extend(resolve(&mut p.access, &at, &p.container.url_scheme, env));
        } else if p.access.is_on() && p.container.url_scheme != "https" {
            out.push(Problem {
                key: format!("projects[{i}].container.url_scheme"),
                message: format!(
                    "must be \"https\": the project inherits [access], and authenticate actions work only on an HTTPS listener (got {:?})",
                    p.container.url_scheme
                ),
            });
        }
    }
    out
}

#[cfg(test)]
#[path = "config_access_tests.rs"]
mod tests;
