//! Every refusal in one shape: `{"error": "...", "field": "..."}` JSON with
//! the status that fits, whether a handler, an extractor, the router or a
//! limit refused the request.
//!
//! # Guarantees
//! - A 5xx reply never carries internal error text (a database message, an
//!   AWS error with account ids): that text is logged with a request id,
//!   and the reply carries only the id.
//! - A refusal that did not come from [`ApiError`] (axum's 404, 405, body
//!   limits, the request timeout) is rewritten into the same JSON shape by
//!   [`json_refusals`].

use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use previewd_core::ports::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON at all; the text names line and column.
    #[error("{0}")]
    BadJson(String),
    /// A field broke a rule; `field` names it.
    #[error("{field}: {rule}")]
    Invalid { field: String, rule: String },
    /// A request refused before its handler, with the status that says why
    /// (403, 411, 413, 414, 415, 431).
    #[error("{field}: {rule}")]
    Refused {
        status: StatusCode,
        field: String,
        rule: String,
    },
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("X-Hub-Signature-256 does not match the body")]
    BadSignature,
    #[error("no preview for branch {0:?}")]
    NotFound(String),
    /// A dependency (AWS, the database) did not answer; the text is logged,
    /// never sent.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.into(),
            rule: rule.into(),
        }
    }

    pub fn refused(status: StatusCode, field: impl Into<String>, rule: impl Into<String>) -> Self {
        ApiError::Refused {
            status,
            field: field.into(),
            rule: rule.into(),
        }
    }

    /// The JSON a refusal (a 4xx) carries, `{"error", "field"}`; `None`
    /// for a failure on previewd's side (a 5xx), whose cause only the log
    /// gets.
    pub fn refusal_json(&self) -> Option<serde_json::Value> {
        let (status, field) = self.status_and_field();
        (!status.is_server_error())
            .then(|| serde_json::json!({ "error": self.to_string(), "field": field }))
    }

    /// A key part that broke a rule, named once.
    pub fn key(e: previewd_core::key::KeyError) -> Self {
        ApiError::invalid(e.field(), e.rule())
    }

    fn status_and_field(&self) -> (StatusCode, Option<String>) {
        match self {
            ApiError::BadJson(_) => (StatusCode::BAD_REQUEST, Some("body".into())),
            ApiError::Invalid { field, .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, Some(field.clone()))
            }
            ApiError::Refused { status, field, .. } => (*status, Some(field.clone())),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, Some("Authorization".into())),
            ApiError::BadSignature => {
                (StatusCode::UNAUTHORIZED, Some("X-Hub-Signature-256".into()))
            }
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, Some("branch".into())),
            ApiError::Store(StoreError::Invalid { field, .. }) => {
                (StatusCode::UNPROCESSABLE_ENTITY, Some(field.to_string()))
            }
            ApiError::Unavailable(_) | ApiError::Store(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, None)
            }
        }
    }
}

impl From<previewd_core::command::Refusal> for ApiError {
    fn from(r: previewd_core::command::Refusal) -> Self {
        ApiError::Invalid {
            field: r.field,
            rule: r.rule,
        }
    }
}

/// A fresh id to find a failed request's log line by.
fn request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The reply for a server-side failure: the id, and nothing of the cause.
fn internal(status: StatusCode, detail: &str) -> Response {
    let id = request_id();
    tracing::error!(request_id = %id, status = status.as_u16(), error = %detail, "request failed");
    let body = serde_json::json!({
        "error": format!("{}; the daemon's log has the cause under request_id {id}",
            status.canonical_reason().unwrap_or("server error")),
        "field": null,
        "request_id": id,
    });
    (status, Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_field();
        match self.refusal_json() {
            Some(body) => (status, Json(body)).into_response(),
            None => internal(status, &self.to_string()),
        }
    }
}

/// The field a bare refusal of this status is about.
fn field_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "path",
        StatusCode::METHOD_NOT_ALLOWED => "method",
        StatusCode::LENGTH_REQUIRED => "Content-Length",
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT => "body",
        StatusCode::URI_TOO_LONG => "uri",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "Content-Type",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers",
        _ => "request",
    }
}

/// Rewrites every error reply that is not already JSON into the JSON
/// shape, keeping its status and headers such as `Allow`.
pub async fn json_refusals(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    if status.is_server_error() {
        return internal(status, "a 5xx reply without detail (see the lines above)");
    }
    // axum's rejections explain themselves in a short text body; keep it.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("refused").to_owned());
    let json = serde_json::json!({ "error": text, "field": field_of(status) });
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(json.to_string()))
}

/// A panicking handler answers 500 with a request id, like any other
/// internal failure, instead of dropping the connection.
pub fn panic_reply(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    internal(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("handler panicked: {what}"),
    )
}
