//! API errors as JSON: `{"error": "...", "field": "..."}` with the status
//! that fits.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use previewd_core::ports::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON at all.
    #[error("{0}")]
    BadJson(String),
    /// A field broke a rule; `field` names it.
    #[error("{field}: {rule}")]
    Invalid { field: String, rule: String },
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("X-Hub-Signature-256 does not match the body")]
    BadSignature,
    #[error("no preview for branch {0:?}")]
    NotFound(String),
    /// A dependency (AWS, the database) did not answer.
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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, field) = match &self {
            ApiError::BadJson(_) => (StatusCode::BAD_REQUEST, None),
            ApiError::Invalid { field, .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, Some(field.clone()))
            }
            ApiError::Unauthorized | ApiError::BadSignature => (StatusCode::UNAUTHORIZED, None),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, None),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
            ApiError::Store(StoreError::Invalid { field, .. }) => {
                (StatusCode::UNPROCESSABLE_ENTITY, Some(field.to_string()))
            }
            ApiError::Store(e) => {
                tracing::error!(error = %e, "store error in API");
                (StatusCode::SERVICE_UNAVAILABLE, None)
            }
        };
        let body = serde_json::json!({ "error": self.to_string(), "field": field });
        (status, Json(body)).into_response()
    }
}
