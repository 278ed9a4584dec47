//! The status page: `GET /` lists every preview, `GET /previews/{branch}`
//! shows one with its AWS resources and recent events. Server-rendered
//! HTML with no script; maud escapes every value it inserts (branch names
//! and messages are user input), and the page reloads itself every 10 s.

use crate::previews::SEGMENT;
use crate::{ApiError, AppState};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::{DOCTYPE, Markup, html};
use percent_encoding::utf8_percent_encode;
use previewd_core::key::PreviewKey;
use previewd_core::model::{Desired, Event, ListFilter, Phase, Preview, Timestamp};
use previewd_core::naming::ResourceNames;

/// Events shown on a preview's page (the store keeps a few more).
const EVENTS_SHOWN: i64 = 30;

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1b1f24}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35em .6em;\
border-bottom:1px solid #d0d7de;vertical-align:top}th{background:#f6f8fa}\
.phase{font-weight:600}.phase-Ready{color:#1a7f37}.phase-Failed{color:#cf222e}\
.phase-Pending,.phase-Provisioning,.phase-Deleting{color:#9a6700}.phase-Deleted{color:#57606a}.phase-Sleeping{color:#8250df}\
dt{font-weight:600;float:left;clear:left;width:11em}dd{margin-left:12em}\
code{font-family:ui-monospace,monospace}.muted{color:#57606a}";

/// The page's Content-Security-Policy: nothing may load or run but the one
/// inline style block, named by its digest; no frame may embed the page.
pub fn content_security_policy() -> &'static str {
    use base64::Engine;
    use sha2::Digest;
    static CSP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CSP.get_or_init(|| {
        let digest = sha2::Sha256::digest(STYLE.as_bytes());
        let hash = base64::engine::general_purpose::STANDARD.encode(digest);
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'"
        )
    })
}

fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content="10";
                title { (title) }
                style { (STYLE) }
            }
            body { (body) }
        }
    }
}

fn disabled() -> Response {
    (StatusCode::NOT_FOUND, "the status page is turned off").into_response()
}

/// "3m", "5h 2m", "4d 1h": how long a span of time is, for people.
pub fn human(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, mins) = (s / 86_400, s / 3_600 % 24, s / 60 % 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

fn ago(t: Timestamp, now: Timestamp) -> String {
    format!("{} ago", human(now - t))
}

/// When the TTL destroys it; moot once it is being destroyed anyway.
fn expiry(p: &Preview, now: Timestamp) -> String {
    if p.desired == Desired::Absent {
        return "—".into();
    }
    match p.expires_at {
        None => "never".into(),
        Some(t) if t > now => format!("in {}", human(t - now)),
        Some(t) => format!("expired {} ago", human(now - t)),
    }
}

fn short_commit(sha: Option<&str>) -> String {
    sha.map(|s| s.chars().take(7).collect())
        .unwrap_or_else(|| "—".into())
}

/// The preview URL: a link once the preview serves it; before that the
/// URL it will have, as plain text; nothing once it is being torn down.
fn preview_url(state: &AppState, p: &Preview) -> Markup {
    let (naming, scheme) = state.naming_of(&p.key.project);
    match (&p.status.url, p.desired) {
        (Some(url), _) => link(url),
        (None, Desired::Present) => html! {
            span.muted title="not serving yet" {
                (scheme) "://" (p.host_label) "." (naming.domain)
            }
        },
        (None, Desired::Absent) => html! { "—" },
    }
}

/// A link only to http(s): the URL is ours, but a page never links a
/// `javascript:` scheme whatever a row holds.
fn link(url: &str) -> Markup {
    if url.starts_with("https://") || url.starts_with("http://") {
        html! { a href=(url) { (url) } }
    } else {
        html! { (url) }
    }
}

/// A preview's page; with several projects the branch alone is ambiguous,
/// so the link names the project too.
fn detail_href(key: &PreviewKey, with_project: bool) -> String {
    let href = format!("/previews/{}", utf8_percent_encode(&key.branch, SEGMENT));
    if with_project {
        format!(
            "{href}?project={}",
            utf8_percent_encode(&key.project, SEGMENT)
        )
    } else {
        href
    }
}

fn phase_cell(phase: Phase) -> Markup {
    html! { span class={ "phase phase-" (phase.as_str()) } { (phase.as_str()) } }
}

/// `GET /`: every preview of the project, or of every project (with a
/// column naming each preview's) when several are served.
pub async fn index(State(state): State<AppState>) -> Result<Response, ApiError> {
    if !state.status_page {
        return Ok(disabled());
    }
    let several = state.several();
    let pool = state.pool();
    let names: Vec<&str> = pool.iter().map(|p| p.name.as_str()).collect();
    let title = names.join(", ");
    let filter = ListFilter {
        project: (!several).then(|| names[0].to_owned()),
        ..Default::default()
    };
    let rows = state.store.list(&filter).await?;
    let now = Utc::now();
    let body = html! {
        h1 { "Previews of " (title) }
        p.muted { (rows.len()) " preview(s) · " (now.format("%Y-%m-%d %H:%M:%S UTC")) " · refreshes every 10 s" }
        @if rows.is_empty() {
            p id="empty" { "No previews yet." }
        } @else {
            table id="previews" {
                thead { tr {
                    @if several { th { "Project" } }
                    th { "Branch" } th { "Phase" } th { "URL" } th { "Commit" }
                    th { "Age" } th { "Expires" } th { "Message" }
                } }
                tbody {
                    @for p in &rows {
                        tr data-branch=(p.key.branch) data-project=(p.key.project) {
                            @if several { td.project { (p.key.project) } }
                            td.branch { a href=(detail_href(&p.key, several)) { (p.key.branch) } }
                            td { (phase_cell(p.status.phase)) }
                            td.url { (preview_url(&state, p)) }
                            td { code title=[p.spec.commit_sha.as_deref()] { (short_commit(p.spec.commit_sha.as_deref())) } }
                            td title=(p.created_at.to_rfc3339()) { (human(now - p.created_at)) }
                            td title=[p.expires_at.map(|t| t.to_rfc3339())] { (expiry(p, now)) }
                            td.message { (p.status.message.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&format!("previewd — {title}"), body).into_response())
}

/// `GET /previews/{branch}`: one preview, its resources and its events.
pub async fn detail(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<crate::previews::ProjectQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    if !state.status_page {
        return Ok(disabled());
    }
    let Path(branch) = path.map_err(|e| ApiError::invalid("branch", e.body_text()))?;
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let key = crate::previews::key_in(&state, q.project.as_deref(), &branch)?;
    let Some(p) = state.store.get(&key).await? else {
        let body = html! {
            h1 { "No preview for " (branch) }
            p { a href="/" { "All previews" } }
        };
        return Ok((StatusCode::NOT_FOUND, page("previewd — not found", body)).into_response());
    };
    let events = state.store.events(&key, EVENTS_SHOWN).await?;
    let now = Utc::now();
    let body = html! {
        p { a href="/" { "← All previews" } }
        h1 { (p.key.branch) " " (phase_cell(p.status.phase)) }
        dl id="summary" {
            dt { "Project" } dd.project { (p.key.project) }
            dt { "URL" } dd { (preview_url(&state, &p)) }
            dt { "Message" } dd.message { (p.status.message.as_deref().unwrap_or("—")) }
            @if let Some(e) = &p.status.last_error {
                dt { "Last error" } dd.error { code { (e.code) } " " (e.message) }
            }
            dt { "Desired" } dd { (p.desired.as_str()) }
            dt { "Commit" } dd { code { (p.spec.commit_sha.as_deref().unwrap_or("—")) } }
            @if let Some(run) = &p.spec.ai_run_id { dt { "AI run" } dd { code { (run) } } }
            dt { "Generation" } dd { (p.generation) " (observed " (p.status.observed_generation) ")" }
            dt { "Created" } dd title=(p.created_at.to_rfc3339()) { (ago(p.created_at, now)) }
            dt { "Updated" } dd title=(p.updated_at.to_rfc3339()) { (ago(p.updated_at, now)) }
            dt { "Expires" } dd { (expiry(&p, now)) }
        }
        h2 { "Resources" }
        (resources(&state, &p))
        h2 { "Recent events" }
        (events_table(&events, now))
    };
    Ok(page(&format!("previewd — {}", p.key.branch), body).into_response())
}

fn resources(state: &AppState, p: &Preview) -> Markup {
    let names = ResourceNames::new(&state.naming_of(&p.key.project).0, &p.slug, &p.host_label);
    let priority = p
        .rule_priority
        .map_or_else(|| "not reserved yet".to_string(), |n| n.to_string());
    let rows = [
        ("ECS service", names.service.as_str()),
        ("ECS task definition family", names.family.as_str()),
        ("ALB target group", names.target_group.as_str()),
        ("ALB listener rule priority", priority.as_str()),
        ("Route53 host", names.host.as_str()),
        ("CloudWatch log group", names.log_group.as_str()),
    ];
    html! {
        table id="resources" {
            thead { tr { th { "Resource" } th { "Name" } } }
            tbody {
                @for (kind, name) in rows {
                    tr { td { (kind) } td { code { (name) } } }
                }
            }
        }
        p.muted { "Names derive from the slug " code { (p.slug) } ", fixed when the preview was first created." }
    }
}

fn events_table(events: &[Event], now: Timestamp) -> Markup {
    html! {
        @if events.is_empty() {
            p id="no-events" { "No events yet." }
        } @else {
            table id="events" {
                thead { tr { th { "When" } th { "Generation" } th { "Phase" } th { "Message" } } }
                tbody {
                    @for e in events {
                        tr {
                            td title=(e.at.to_rfc3339()) { (ago(e.at, now)) }
                            td { (e.generation) }
                            td { (phase_cell(e.phase)) }
                            td { (e.message.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_say_them() {
        let d = chrono::Duration::seconds;
        assert_eq!(human(d(42)), "42s");
        assert_eq!(human(d(3 * 60 + 5)), "3m");
        assert_eq!(human(d(5 * 3600 + 2 * 60)), "5h 2m");
        assert_eq!(human(d(4 * 86_400 + 3600 + 59)), "4d 1h");
        assert_eq!(human(d(-5)), "0s");
    }

    #[test]
    fn only_http_urls_become_links() {
        assert!(link("https://x.example.com").0.starts_with("<a href="));
        let js = link("javascript:alert(1)").0;
        assert!(!js.contains("<a"), "{js}");
    }

    #[test]
    fn a_branch_in_a_detail_link_is_one_path_segment() {
        let key = PreviewKey::new("acme/web", "qanote/issue-42").unwrap();
        assert_eq!(detail_href(&key, false), "/previews/qanote%2Fissue-42");
        // With several projects the link names the preview's.
        assert_eq!(
            detail_href(&key, true),
            "/previews/qanote%2Fissue-42?project=acme%2Fweb"
        );
    }
}
