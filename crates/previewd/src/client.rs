//! `previewd list|get|deploy|destroy`: a client of a running daemon's HTTP
//! API, printing a table for people or `--output json` for scripts. An API
//! error is printed with the field it names and ends the command non-zero.

use anyhow::Context;
use chrono::Utc;
use clap::{Args, Subcommand, ValueEnum};
use previewd_api::PreviewView;
use previewd_api::status_page::human;
use serde_json::{Value, json};
use std::time::Duration;

/// Where `serve` listens unless told otherwise.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// How long one request may take before the client gives up.
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// Options every client command takes.
#[derive(Debug, Args)]
pub struct Target {
    /// The daemon's base URL.
    #[arg(long, env = "PREVIEWD_SERVER", default_value = DEFAULT_SERVER)]
    server: String,
    /// How to print the answer.
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// The repository (`owner/name`) of the preview: needed when the
    /// daemon serves several projects; for `list`, only its previews.
    #[arg(long, env = "PREVIEWD_PROJECT")]
    project: Option<String>,
}

impl Target {
    /// `?project=…` when a project is named.
    fn project_query(&self) -> String {
        self.project.as_deref().map_or_else(String::new, |p| {
            format!(
                "?project={}",
                percent_encoding::utf8_percent_encode(p, percent_encoding::NON_ALPHANUMERIC)
            )
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// List the daemon's previews.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Show one preview.
    Get {
        /// The branch, e.g. qanote/issue-42.
        branch: String,
        #[command(flatten)]
        target: Target,
    },
    /// Deploy a commit of a branch (create or update its preview).
    Deploy {
        /// The branch, e.g. qanote/issue-42.
        branch: String,
        /// The commit to deploy.
        #[arg(long)]
        commit: String,
        /// The QA tool's run id, echoed in reports.
        #[arg(long)]
        ai_run_id: Option<String>,
        /// Where to send the outcome (must be on the daemon's allowlist).
        #[arg(long)]
        callback_url: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Destroy a branch's preview.
    Destroy {
        /// The branch, e.g. qanote/issue-42.
        branch: String,
        #[command(flatten)]
        target: Target,
    },
}

/// An answer the API refused, as it said it.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {message}{}", field.as_ref().map(|f| format!(" (field: {f})")).unwrap_or_default())]
struct ApiRefusal {
    status: reqwest::StatusCode,
    message: String,
    field: Option<String>,
}

struct Client {
    http: reqwest::Client,
    base: String,
    /// `PREVIEWD_API_TOKEN`, sent as the bearer token when set.
    token: Option<String>,
}

impl Client {
    fn new(server: &str) -> anyhow::Result<Self> {
        let base = server.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            anyhow::bail!("--server: must be an http:// or https:// URL (got {server:?})");
        }
        previewd_github::install_ring_provider();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        let token = std::env::var("PREVIEWD_API_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        Ok(Self { http, base, token })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the daemon at {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await.context("reading the answer")?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(value);
        }
        let message = value["error"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| value.as_str().unwrap_or("").trim().to_owned());
        Err(ApiRefusal {
            status,
            message,
            field: value["field"].as_str().map(str::to_owned),
        }
        .into())
    }
}

/// Runs a client command; the answer goes to stdout.
pub async fn run(cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::List { target } => {
            let v = Client::new(&target.server)?
                .call(
                    reqwest::Method::GET,
                    &format!("/v1/previews{}", target.project_query()),
                    None,
                )
                .await?;
            match target.output {
                Output::Json => print_json(&v),
                Output::Table => {
                    let rows: Vec<PreviewView> = serde_json::from_value(v)
                        .context("the daemon's answer is not a list of previews")?;
                    print!("{}", list_table(&rows, Utc::now()));
                }
            }
        }
        ClientCommand::Get { branch, target } => {
            let path = format!(
                "{}{}",
                previewd_api::status_url(&branch),
                target.project_query()
            );
            let v = Client::new(&target.server)?
                .call(reqwest::Method::GET, &path, None)
                .await?;
            match target.output {
                Output::Json => print_json(&v),
                Output::Table => {
                    let p: PreviewView = serde_json::from_value(v)
                        .context("the daemon's answer is not a preview")?;
                    print!("{}", detail(&p, Utc::now()));
                }
            }
        }
        ClientCommand::Deploy {
            branch,
            commit,
            ai_run_id,
            callback_url,
            target,
        } => {
            let mut body = json!({"action": "deploy", "branch": branch, "commit_sha": commit});
            if let Some(id) = ai_run_id {
                body["ai_run_id"] = id.into();
            }
            if let Some(url) = callback_url {
                body["callback_url"] = url.into();
            }
            dispatch(&target, body).await?;
        }
        ClientCommand::Destroy { branch, target } => {
            dispatch(&target, json!({"action": "destroy", "branch": branch})).await?;
        }
    }
    Ok(())
}

async fn dispatch(target: &Target, mut body: Value) -> anyhow::Result<()> {
    if let Some(p) = &target.project {
        body["project"] = p.clone().into();
    }
    let v = Client::new(&target.server)?
        .call(reqwest::Method::POST, "/v1/dispatch", Some(body))
        .await?;
    match target.output {
        Output::Json => print_json(&v),
        Output::Table => {
            let text = |k: &str| match &v[k] {
                Value::String(s) => s.clone(),
                Value::Null => "—".into(),
                other => other.to_string(),
            };
            let pairs = [
                "action",
                "project",
                "branch",
                "changed",
                "phase",
                "generation",
                "url",
                "status_url",
            ]
            .map(|k| (k.replace('_', " "), text(k)));
            print!("{}", key_values(&pairs));
        }
    }
    Ok(())
}

fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// Columns padded to their widest cell, two spaces apart.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn key_values(pairs: &[(String, String)]) -> String {
    let w = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("{k:<w$}  {v}\n"))
        .collect()
}

fn short(sha: &Option<String>) -> String {
    sha.as_deref()
        .map(|s| s.chars().take(7).collect())
        .unwrap_or_else(|| "—".into())
}

pub fn list_table(rows: &[PreviewView], now: chrono::DateTime<Utc>) -> String {
    if rows.is_empty() {
        return "no previews\n".into();
    }
    // The project column once the list spans several projects.
    let several = rows.iter().any(|p| p.project != rows[0].project);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|p| {
            let project = several.then(|| p.project.clone());
            project
                .into_iter()
                .chain([
                    p.branch.clone(),
                    p.phase.to_string(),
                    p.url.clone().unwrap_or_else(|| "—".into()),
                    short(&p.commit_sha),
                    human(now - p.created_at),
                    p.message.clone().unwrap_or_default(),
                ])
                .collect()
        })
        .collect();
    let header = [
        "PROJECT", "BRANCH", "PHASE", "URL", "COMMIT", "AGE", "MESSAGE",
    ];
    table(&header[usize::from(!several)..], &cells)
}

fn detail(p: &PreviewView, now: chrono::DateTime<Utc>) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    let mut pairs = vec![
        ("project", p.project.clone()),
        ("branch", p.branch.clone()),
        ("phase", p.phase.to_string()),
        ("desired", p.desired.to_string()),
        ("url", opt(&p.url)),
        ("message", opt(&p.message)),
        ("commit", opt(&p.commit_sha)),
        ("ai run id", opt(&p.ai_run_id)),
        (
            "generation",
            format!("{} (observed {})", p.generation, p.observed_generation),
        ),
        ("slug", p.slug.clone()),
        ("host", p.host.clone()),
        (
            "rule priority",
            p.rule_priority.map_or("—".into(), |n| n.to_string()),
        ),
        ("age", human(now - p.created_at)),
        (
            "expires",
            p.expires_at.map_or("never".into(), |t| t.to_rfc3339()),
        ),
    ];
    if let Some(e) = &p.last_error {
        pairs.push(("last error", format!("{}: {}", e.code, e.message)));
    }
    let pairs: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (k.into(), v)).collect();
    key_values(&pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_pads_each_column_to_its_widest_cell() {
        let rows = vec![
            vec!["qanote/issue-42".to_string(), "Ready".into(), "ok".into()],
            vec!["main".to_string(), "Failed".into(), "AccessDenied".into()],
        ];
        assert_eq!(
            table(&["BRANCH", "PHASE", "MESSAGE"], &rows),
            "BRANCH           PHASE   MESSAGE\n\
             qanote/issue-42  Ready   ok\n\
             main             Failed  AccessDenied\n"
        );
    }

    #[test]
    fn a_refusal_names_its_field() {
        let e = ApiRefusal {
            status: reqwest::StatusCode::UNPROCESSABLE_ENTITY,
            message: "commit_sha: must be hex".into(),
            field: Some("commit_sha".into()),
        };
        assert_eq!(
            e.to_string(),
            "422 Unprocessable Entity: commit_sha: must be hex (field: commit_sha)"
        );
    }
}
