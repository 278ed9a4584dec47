//! HTTP plumbing shared by the GitHub and callback clients: one reqwest
//! client with rustls on ring, and how a response's status and headers turn
//! into "wait this long" for rate limits.

use reqwest::header::HeaderMap;
use std::time::Duration;

/// GitHub's advice when a 403/429 names no time: wait at least a minute.
pub(crate) const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// A reset far in the future is clock skew or a bug; never park for longer.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Makes ring the process's rustls provider unless one is already set.
/// reqwest is built with `rustls-no-provider` so that aws-lc never enters
/// the build, and then panics on TLS set-up without a process default.
pub fn install_ring_provider() {
    // Err means a provider is already installed: ring or the binary's
    // choice, either is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A reqwest client for outbound reports. `follow_redirects` is off for
/// callbacks: a redirect could lead past the host allowlist.
pub(crate) fn client(
    user_agent: &str,
    timeout: Duration,
    follow_redirects: bool,
) -> reqwest::Result<reqwest::Client> {
    builder(user_agent, timeout, follow_redirects).build()
}

/// [`client`]'s settings, for a caller to add to (the callback client adds
/// its resolver).
pub(crate) fn builder(
    user_agent: &str,
    timeout: Duration,
    follow_redirects: bool,
) -> reqwest::ClientBuilder {
    install_ring_provider();
    let redirects = if follow_redirects {
        reqwest::redirect::Policy::limited(5)
    } else {
        reqwest::redirect::Policy::none()
    };
    reqwest::Client::builder()
        .user_agent(user_agent)
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(redirects)
}

/// How long a 403 or 429 asks the caller to wait, or `None` when the
/// response is no rate limit (a 403 for a missing permission).
///
/// In GitHub's order: `retry-after` (seconds or an HTTP date); else
/// `x-ratelimit-remaining: 0` until `x-ratelimit-reset` (epoch seconds);
/// else a 429, or a 403 whose message speaks of a rate limit (the
/// secondary limits), waits a minute. `now` is epoch seconds.
pub(crate) fn rate_limit_wait(
    status: u16,
    headers: &HeaderMap,
    message: &str,
    now: i64,
) -> Option<Duration> {
    if status != 403 && status != 429 {
        return None;
    }
    if let Some(wait) = retry_after(headers, now) {
        return Some(wait);
    }
    if header(headers, "x-ratelimit-remaining") == Some("0") {
        let wait = header(headers, "x-ratelimit-reset")
            .and_then(|v| v.parse::<i64>().ok())
            .map(|reset| seconds(reset - now))
            .unwrap_or(DEFAULT_RATE_LIMIT_WAIT);
        return Some(wait);
    }
    if status == 429 || message.to_ascii_lowercase().contains("rate limit") {
        return Some(DEFAULT_RATE_LIMIT_WAIT);
    }
    None
}

/// The `retry-after` header as a wait, in either of its two forms.
pub(crate) fn retry_after(headers: &HeaderMap, now: i64) -> Option<Duration> {
    let value = header(headers, "retry-after")?;
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_WAIT));
    }
    // An HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT") parses as RFC 2822.
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(seconds(at.timestamp() - now))
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// A wait of `secs`, at least one second (a reset in the past means the
/// clocks disagree a little) and at most an hour.
fn seconds(secs: i64) -> Duration {
    Duration::from_secs(secs.clamp(1, MAX_WAIT.as_secs() as i64) as u64)
}

/// At most `max` characters of a response body, for error messages: a
/// proxy's HTML error page must not flood the outbox row.
pub(crate) fn snippet(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn retry_after_seconds_wins() {
        let h = headers(&[("retry-after", "30"), ("x-ratelimit-remaining", "0")]);
        assert_eq!(
            rate_limit_wait(403, &h, "", NOW),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn retry_after_as_http_date() {
        let h = headers(&[("retry-after", "Tue, 14 Nov 2023 22:14:20 GMT")]);
        // NOW is 22:13:20 that day.
        assert_eq!(
            rate_limit_wait(429, &h, "", NOW),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn exhausted_quota_waits_until_reset() {
        let reset = (NOW + 120).to_string();
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset),
        ]);
        assert_eq!(
            rate_limit_wait(403, &h, "", NOW),
            Some(Duration::from_secs(120))
        );
        let past = (NOW - 5).to_string();
        let h = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &past)]);
        assert_eq!(
            rate_limit_wait(403, &h, "", NOW),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn secondary_limit_and_bare_429_wait_a_minute() {
        let msg = "You have exceeded a secondary rate limit. Please wait a few minutes.";
        assert_eq!(
            rate_limit_wait(403, &HeaderMap::new(), msg, NOW),
            Some(DEFAULT_RATE_LIMIT_WAIT)
        );
        assert_eq!(
            rate_limit_wait(429, &HeaderMap::new(), "", NOW),
            Some(DEFAULT_RATE_LIMIT_WAIT)
        );
    }

    #[test]
    fn a_permission_403_is_no_rate_limit() {
        let h = headers(&[("x-ratelimit-remaining", "4999")]);
        let msg = "Resource not accessible by integration";
        assert_eq!(rate_limit_wait(403, &h, msg, NOW), None);
        assert_eq!(
            rate_limit_wait(500, &headers(&[("retry-after", "3")]), "", NOW),
            None
        );
    }

    #[test]
    fn building_a_tls_client_does_not_panic_without_aws_lc() {
        client("previewd/test", Duration::from_secs(1), true).unwrap();
        client("previewd/test", Duration::from_secs(1), false).unwrap();
    }
}
