//! Bearer-token check for `/v1/*`.
//!
//! # Guarantees
//! - An empty token never matches: the daemon refuses to start with one
//!   (`previewd serve`), and an empty presented token is refused here.
//! - The comparison reveals neither the token nor its length: both sides
//!   are hashed with SHA-256 and the digests compared in constant time.
//! - The scheme is matched case-insensitively (RFC 7235, `bearer` works).
//! - Every refusal is counted (`previewd_auth_failures_total{reason}`) and
//!   logged at most once per ten seconds, with the peer and never with the
//!   presented value.

use crate::limits::Throttle;
use crate::{ApiError, AppState};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use previewd_core::metrics as names;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The daemon's token, kept as its digest so that comparing costs the same
/// whatever the presented token's length.
#[derive(Clone)]
pub struct ApiToken {
    digest: [u8; 32],
}

impl ApiToken {
    /// The shortest token `serve` accepts: 32 characters is 190 bits of a
    /// random base64 token, far beyond guessing at any request rate.
    pub const MIN_LEN: usize = 32;

    /// Checks the token's strength; the error says the rule (the caller
    /// adds where the token came from).
    pub fn new(token: &str) -> Result<Self, String> {
        if token.trim().is_empty() {
            return Err("is empty: every /v1 request would need no token at all".into());
        }
        if token.trim() != token {
            return Err("has leading or trailing whitespace".into());
        }
        if token.chars().count() < Self::MIN_LEN {
            return Err(format!(
                "is shorter than {} characters (e.g. `openssl rand -base64 32`)",
                Self::MIN_LEN
            ));
        }
        if !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err(
                "must be printable ASCII without spaces (it travels in an HTTP header)".into(),
            );
        }
        Ok(ApiToken {
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    fn matches(&self, presented: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(given.ct_eq(&self.digest))
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

/// Why a presented `Authorization` header is refused, or the token in it.
fn presented(header: Option<&str>) -> Result<&str, &'static str> {
    let value = header.ok_or("missing")?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("malformed");
    }
    let token = token.trim_matches(' ');
    if token.is_empty() {
        return Err("empty");
    }
    Ok(token)
}

fn throttle() -> &'static Mutex<Throttle> {
    static LOG: OnceLock<Mutex<Throttle>> = OnceLock::new();
    LOG.get_or_init(|| Mutex::new(Throttle::new(Duration::from_secs(10))))
}

pub async fn require_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(expected) = &state.api_token else {
        return Ok(next.run(req).await);
    };
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let refused = match presented(header) {
        Ok(token) if expected.matches(token) => return Ok(next.run(req).await),
        Ok(_) => "wrong",
        Err(reason) => reason,
    };
    metrics::counter!(names::AUTH_FAILURES, "reason" => refused).increment(1);
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string());
    let suppressed = throttle().lock().map(|mut t| t.allow_counting()).ok();
    if let Some(Some(suppressed)) = suppressed {
        tracing::warn!(
            reason = refused,
            peer = peer.as_deref().unwrap_or("unknown"),
            path = req.uri().path(),
            suppressed,
            "refused a /v1 request: bearer token {refused}"
        );
    }
    Err(ApiError::Unauthorized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_tokens_are_refused_with_the_rule() {
        for (token, rule) in [
            ("", "empty"),
            ("\n", "empty"),
            ("   ", "empty"),
            ("short", "shorter than 32"),
            (" 0123456789abcdef0123456789abcdef", "whitespace"),
            ("0123456789abcdef0123456789abcdef\u{e9}", "printable ASCII"),
        ] {
            let e = ApiToken::new(token).unwrap_err();
            assert!(e.contains(rule), "{token:?}: {e}");
        }
        assert!(ApiToken::new("0123456789abcdef0123456789abcdef").is_ok());
    }

    #[test]
    fn scheme_is_case_insensitive_and_empty_tokens_never_match() {
        let t = ApiToken::new("0123456789abcdef0123456789abcdef").unwrap();
        for header in ["Bearer ", "bearer", "Bearer", "BEARER   "] {
            assert_eq!(presented(Some(header)), Err("empty"), "{header:?}");
        }
        assert_eq!(presented(None), Err("missing"));
        assert_eq!(presented(Some("Basic abc")), Err("malformed"));
        for header in [
            "Bearer 0123456789abcdef0123456789abcdef",
            "bearer 0123456789abcdef0123456789abcdef",
            "BeArEr 0123456789abcdef0123456789abcdef",
        ] {
            assert!(t.matches(presented(Some(header)).unwrap()), "{header}");
        }
        assert!(!t.matches(""));
        assert!(!t.matches("0123456789abcdef0123456789abcde"));
        assert_eq!(format!("{t:?}"), "ApiToken(***)");
    }
}
