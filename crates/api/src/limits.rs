//! Limits on what one request may be, checked before a handler runs, and a
//! throttle for logging what hostile clients make happen often.

use crate::ApiError;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use std::time::{Duration, Instant};

/// A request target longer than this is refused 414: no route needs more
/// than a branch (255 bytes, percent-encoded at most three times as long)
/// and a short query.
pub const MAX_URI_BYTES: usize = 2048;
/// A request head with more header bytes than this is refused 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// A request with more header lines than this is refused 431.
pub const MAX_HEADERS: usize = 100;
/// The largest dispatch body: its five fields fit in a few kilobytes.
pub const MAX_DISPATCH_BODY: usize = 64 * 1024;
/// The largest webhook body. GitHub's pull-request events run to tens of
/// kilobytes; the rest is somebody else's traffic.
pub const MAX_WEBHOOK_BODY: usize = 1024 * 1024;
/// How long a webhook body may take to arrive once its head has.
pub const WEBHOOK_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Refuses an oversized request target or head with the JSON refusal.
pub async fn request_shape(req: Request, next: Next) -> Result<Response, ApiError> {
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return Err(ApiError::refused(
            StatusCode::URI_TOO_LONG,
            "uri",
            format!("the request target is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Err(ApiError::refused(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers",
            format!("at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes of them"),
        ));
    }
    Ok(next.run(req).await)
}

/// The body length a request declares, refused when absent (411) or over
/// `max` (413), before a byte of the body is read.
pub fn declared_length(headers: &axum::http::HeaderMap, max: usize) -> Result<usize, ApiError> {
    let length = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .ok_or_else(|| {
            ApiError::refused(
                StatusCode::LENGTH_REQUIRED,
                "Content-Length",
                "is required (chunked bodies are not accepted)",
            )
        })?;
    if length > max {
        return Err(ApiError::refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body",
            format!("is {length} bytes; at most {max} are accepted"),
        ));
    }
    Ok(length)
}

/// Lets one event through per `every`, counting the ones it held back, so
/// that a flood of refusals costs a log line per interval, not per request.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    held_back: u64,
}

impl Throttle {
    pub fn new(every: Duration) -> Self {
        Throttle {
            every,
            last: None,
            held_back: 0,
        }
    }

    /// Whether to log now.
    pub fn allow(&mut self) -> bool {
        self.allow_counting().is_some()
    }

    /// `Some(events held back since the last one let through)` when this
    /// one may be logged, `None` when it is held back.
    pub fn allow_counting(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.every)
        {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_lets_one_through_per_interval_and_counts_the_rest() {
        let mut t = Throttle::new(Duration::from_secs(3600));
        assert_eq!(t.allow_counting(), Some(0));
        assert_eq!(t.allow_counting(), None);
        assert!(!t.allow());
        t.last = Some(Instant::now() - Duration::from_secs(7200));
        assert_eq!(t.allow_counting(), Some(2));
    }
}
