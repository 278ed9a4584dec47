//! `POST /v1/github/webhook`: GitHub tells us a PR closed or a branch was
//! deleted, and the preview goes; with `github.preview_label` set, a pull
//! request carrying that label gets a preview of its head commit, moved on
//! each push and gone when the label or the pull request goes.
//!
//! Anyone can reach this route, so it is built to cost an attacker's
//! request nothing and to make a replay a no-op.
//!
//! # Guarantees
//! - Before a byte of the body is read: the signature header must have the
//!   `sha256=<64 hex>` form, the event must be one previewd handles, the
//!   delivery id must be short and printable, and `Content-Length` must be
//!   given and at most 1 MB. A body then has 10 s to arrive.
//! - The signature is checked (in constant time) before the body is parsed.
//! - A delivery is acted on once, known both by its `X-GitHub-Delivery` id
//!   and by the SHA-256 of its body: the same signed body under a fresh id
//!   is a duplicate. A close older than the preview's last deploy is stale
//!   and ignored.
//! - The delivery is recorded in the transaction of the destroy it causes
//!   (and forgotten again when a label's deploy fails), so a failure
//!   between the two cannot turn GitHub's redelivery into a no-op.
//! - A pull-request change older than the preview's last deploy (its
//!   `updated_at` against the deploy's time) is stale and ignored: a late
//!   delivery never rolls a preview back to an older commit.
//! - Events for other repositories are ignored.

use crate::limits::{MAX_WEBHOOK_BODY, WEBHOOK_BODY_TIMEOUT, declared_length};
use crate::{ApiError, AppState};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use previewd_core::command::{Command, Effect};
use previewd_core::key::PreviewKey;
use previewd_core::ports::Delivery;
use previewd_core::pull_request::{self, PrIntent, PrWrite};
use previewd_github::{
    HANDLED_EVENTS, PullRequestChange, WebhookEvent, parse_event, verify_signature,
};
use serde_json::{Value, json};

/// GitHub's delivery ids are UUIDs (36 characters); room for more, not
/// for an attacker's megabyte.
const MAX_DELIVERY_ID: usize = 128;

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid(name_of(name), "header is required"))
}

/// The header's name as GitHub's documentation writes it.
fn name_of(lower: &'static str) -> &'static str {
    match lower {
        "x-hub-signature-256" => "X-Hub-Signature-256",
        "x-github-event" => "X-GitHub-Event",
        _ => "X-GitHub-Delivery",
    }
}

/// Everything that can be judged from the head alone.
struct Head<'a> {
    signature: &'a str,
    event: &'a str,
    delivery: &'a str,
}

fn check_head(headers: &HeaderMap) -> Result<Head<'_>, ApiError> {
    let signature = header(headers, "x-hub-signature-256").map_err(|_| ApiError::BadSignature)?;
    let well_formed = signature
        .strip_prefix("sha256=")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if !well_formed {
        return Err(ApiError::BadSignature);
    }
    let event = header(headers, "x-github-event")?;
    if !HANDLED_EVENTS.contains(&event) {
        return Err(ApiError::invalid(
            "X-GitHub-Event",
            format!(
                "previewd handles only {}; configure the webhook to send just those",
                HANDLED_EVENTS.join(", ")
            ),
        ));
    }
    let delivery = header(headers, "x-github-delivery")?;
    if delivery.len() > MAX_DELIVERY_ID || !delivery.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            "X-GitHub-Delivery",
            format!("must be at most {MAX_DELIVERY_ID} printable characters"),
        ));
    }
    Ok(Head {
        signature,
        event,
        delivery,
    })
}

/// Reads at most `MAX_WEBHOOK_BODY` bytes within `WEBHOOK_BODY_TIMEOUT`.
async fn read_body(body: Body) -> Result<axum::body::Bytes, ApiError> {
    let too_slow = || {
        ApiError::refused(
            StatusCode::REQUEST_TIMEOUT,
            "body",
            format!("did not arrive within {} s", WEBHOOK_BODY_TIMEOUT.as_secs()),
        )
    };
    tokio::time::timeout(
        WEBHOOK_BODY_TIMEOUT,
        axum::body::to_bytes(body, MAX_WEBHOOK_BODY),
    )
    .await
    .map_err(|_| too_slow())?
    .map_err(|_| {
        ApiError::refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body",
            format!("is longer than its Content-Length or {MAX_WEBHOOK_BODY} bytes"),
        )
    })
}

pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Some(secret) = &state.webhook_secret else {
        return Err(ApiError::Unavailable(
            "no webhook secret is configured (PREVIEWD_GITHUB_WEBHOOK_SECRET)".into(),
        ));
    };
    let head = check_head(&headers)?;
    declared_length(&headers, MAX_WEBHOOK_BODY)?;
    let body = read_body(body).await?;
    if !verify_signature(secret.as_bytes(), &body, head.signature) {
        return Err(ApiError::BadSignature);
    }
    let parsed =
        parse_event(head.event, &body).map_err(|e| ApiError::invalid("body", e.to_string()))?;
    let delivery = Delivery::of_body(head.delivery, head.event, &body);
    let now = chrono::Utc::now();
    // Each delivery goes to the project of its repository (its
    // `repository.full_name`); one no project serves is ignored.
    let pool = state.pool();
    let served = |repo: &str| pool.for_repository(repo).map(|p| p.name.clone());
    // What to destroy, or the answer for a delivery that destroys nothing.
    let (project, branch, event_at) = match parsed {
        WebhookEvent::PullRequestClosed {
            repo,
            branch,
            closed_at,
            ..
        } if served(&repo).is_some() => (served(&repo), branch, closed_at),
        // A branch deletion carries no time of its own: the body digest
        // is what makes its replay a duplicate.
        WebhookEvent::BranchDeleted { repo, branch } if served(&repo).is_some() => {
            (served(&repo), branch, None)
        }
        WebhookEvent::PullRequestChanged(c) if served(&c.repo).is_some() => {
            let project = pool.for_repository(&c.repo).expect("served");
            return labelled(&state, project, head.event, delivery, c).await;
        }
        WebhookEvent::PullRequestClosed { repo, .. }
        | WebhookEvent::BranchDeleted { repo, .. }
        | WebhookEvent::PullRequestChanged(PullRequestChange { repo, .. }) => {
            let names: Vec<&str> = pool.iter().map(|p| p.name.as_str()).collect();
            let why = format!(
                "repository {repo} is not a project of this previewd (projects: {})",
                names.join(", ")
            );
            tracing::info!(%repo, event = head.event, "webhook for a repository no project serves; ignored");
            return remembered(
                &state,
                &delivery,
                StatusCode::ACCEPTED,
                json!({ "ignored": why }),
            )
            .await;
        }
        WebhookEvent::Ping => {
            return remembered(&state, &delivery, StatusCode::OK, json!({ "pong": true })).await;
        }
        WebhookEvent::Other(what) => {
            return remembered(
                &state,
                &delivery,
                StatusCode::ACCEPTED,
                json!({ "ignored": what }),
            )
            .await;
        }
    };
    let project = project.expect("matched a served repository");
    let Ok(key) = PreviewKey::new(&project, &branch) else {
        let answer = json!({ "ignored": "not a valid branch name" });
        return remembered(&state, &delivery, StatusCode::ACCEPTED, answer).await;
    };
    // The delivery is recorded in the transaction of the destroy.
    let command = Command::WebhookDestroy {
        delivery: delivery.clone(),
        key: key.clone(),
        event_at,
    };
    match state.store.apply(&command, now).await? {
        Effect::Duplicate => Ok(duplicate(&delivery)),
        Effect::Stale => {
            tracing::info!(%key, event = head.event, "webhook: close older than the last deploy; ignored");
            Ok((
                StatusCode::ACCEPTED,
                Json(
                    json!({ "branch": branch, "ignored": "older than the preview's last deploy" }),
                ),
            ))
        }
        Effect::Applied(out) => {
            tracing::info!(%key, event = head.event, found = out.is_some(), "webhook: destroying preview");
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "branch": branch, "found": out.is_some() })),
            ))
        }
    }
}

/// A pull-request change under `github.preview_label`: core decides the
/// intent and builds the command; the store records the delivery with it.
async fn labelled(
    state: &AppState,
    project: &previewd_core::projects::Project,
    event: &str,
    delivery: Delivery,
    c: PullRequestChange,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let intent = pull_request::intent(
        c.change,
        &c.labels,
        c.label.as_deref(),
        state.preview_label.as_deref(),
    );
    // A retired project takes no new previews; its destroys still go.
    if project.retired && matches!(intent, PrIntent::Deploy) {
        let answer = json!({ "ignored": format!("project {} is retired: it takes no new previews", project.name) });
        return remembered(state, &delivery, StatusCode::ACCEPTED, answer).await;
    }
    let write = PrWrite {
        project: &project.name,
        branch: &c.branch,
        head_sha: &c.head_sha,
        event_at: c.updated_at,
        delivery: delivery.clone(),
        number: c.number,
    };
    let command =
        match pull_request::command(&intent, write, &project.template.naming, project.lifetime) {
            Ok(Some(command)) => command,
            Ok(None) => {
                let why = match intent {
                    PrIntent::Ignore(why) => why,
                    _ => "nothing to do",
                };
                let answer = json!({ "ignored": format!("pull_request.{}: {why}", c.change) });
                return remembered(state, &delivery, StatusCode::ACCEPTED, answer).await;
            }
            Err(refusal) => {
                // A branch previewd cannot name is not a request to refuse:
                // GitHub would only redeliver it.
                let answer = json!({ "ignored": format!("{}: {}", refusal.field, refusal.rule) });
                return remembered(state, &delivery, StatusCode::ACCEPTED, answer).await;
            }
        };
    let key = command.key().clone();
    match state.store.apply(&command, chrono::Utc::now()).await? {
        Effect::Duplicate => Ok(duplicate(&delivery)),
        Effect::Stale => {
            tracing::info!(%key, event, change = %c.change, "webhook: change older than the last deploy; ignored");
            Ok((
                StatusCode::ACCEPTED,
                Json(
                    json!({ "branch": c.branch, "ignored": "older than the preview's last deploy" }),
                ),
            ))
        }
        Effect::Applied(out) => {
            let deploy = matches!(command, Command::WebhookDeploy { .. });
            tracing::info!(%key, event, change = %c.change, deploy, found = out.is_some(), "webhook: labelled pull request");
            let preview = out.as_ref().map(|o| &o.preview);
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({
                    "branch": c.branch,
                    "action": if deploy { "deploy" } else { "destroy" },
                    "commit_sha": deploy.then_some(&c.head_sha),
                    "found": out.is_some(),
                    "changed": out.as_ref().is_some_and(|o| o.changed),
                    "generation": preview.map(|p| p.generation),
                })),
            ))
        }
    }
}

/// Records a delivery that destroys nothing and answers it, or answers it
/// as a duplicate.
async fn remembered(
    state: &AppState,
    delivery: &Delivery,
    status: StatusCode,
    answer: Value,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !state
        .store
        .remember_delivery(delivery, chrono::Utc::now())
        .await?
    {
        return Ok(duplicate(delivery));
    }
    Ok((status, Json(answer)))
}

fn duplicate(delivery: &Delivery) -> (StatusCode, Json<Value>) {
    tracing::info!(delivery = %delivery.id, event = %delivery.event, "webhook delivery seen before; dropped");
    (StatusCode::OK, Json(json!({ "duplicate": true })))
}
