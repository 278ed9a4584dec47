//! Guards against being driven from a browser: a web page may make a
//! visitor's browser send requests to previewd on loopback or in the VPC.
//!
//! # Guarantees
//! - A request with a body, and every `POST`, must say
//!   `Content-Type: application/json` (415 otherwise): a cross-site form or
//!   `text/plain` fetch cannot, without a CORS preflight previewd never
//!   answers.
//! - A mutating request (`POST`, `PUT`, `PATCH`, `DELETE`) whose
//!   `Sec-Fetch-Site` is not `same-origin` or `none`, or whose `Origin` is
//!   not this very host, is refused 403. Command-line clients send neither.
//! - On a listener bound to loopback, only loopback `Host` names are
//!   served (403 otherwise): a DNS-rebinding page's requests carry its own
//!   host name.

use crate::ApiError;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

fn value(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"))
}

fn mutating(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || value(headers, header::CONTENT_LENGTH).is_some_and(|l| l.trim() != "0")
}

/// `application/json`, with parameters (`; charset=utf-8`) allowed.
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Content type, then cross-site checks, for every route.
pub async fn browser_guard(req: Request, next: Next) -> Result<Response, ApiError> {
    check(req.method(), req.headers())?;
    Ok(next.run(req).await)
}

fn check(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    if (*method == Method::POST || has_body(headers))
        && !value(headers, header::CONTENT_TYPE).is_some_and(is_json)
    {
        return Err(ApiError::refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type",
            "must be application/json",
        ));
    }
    if !mutating(method) {
        return Ok(());
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("");
        if !matches!(site, "same-origin" | "none") {
            return Err(ApiError::refused(
                StatusCode::FORBIDDEN,
                "Sec-Fetch-Site",
                format!("{site:?}: requests from other sites may not change previews"),
            ));
        }
    }
    if let Some(origin) = value(headers, header::ORIGIN) {
        let host = value(headers, header::HOST).unwrap_or("");
        let same = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|o| !host.is_empty() && o.eq_ignore_ascii_case(host));
        if !same {
            return Err(ApiError::refused(
                StatusCode::FORBIDDEN,
                "Origin",
                "requests from other origins may not change previews",
            ));
        }
    }
    Ok(())
}

/// For a listener bound to loopback: only `localhost`, `*.localhost`,
/// `127.0.0.0/8` and `[::1]` as `Host`, with any port.
pub async fn loopback_host(req: Request, next: Next) -> Result<Response, ApiError> {
    let host = value(req.headers(), header::HOST).unwrap_or("");
    if !is_loopback_host(host) {
        return Err(ApiError::refused(
            StatusCode::FORBIDDEN,
            "Host",
            "this listener is on loopback and answers only loopback host names \
             (localhost, 127.0.0.1, [::1])",
        ));
    }
    Ok(next.run(req).await)
}

fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((ip, rest)) if rest.is_empty() || port(rest) => {
                return ip
                    .parse::<std::net::Ipv6Addr>()
                    .is_ok_and(|ip| ip.is_loopback());
            }
            _ => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, rest)) if port(&format!(":{rest}")) => name,
            Some(_) => return false,
            None => host,
        },
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `:` and one to five digits.
fn port(rest: &str) -> bool {
    rest.strip_prefix(':')
        .is_some_and(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn refused_field(method: Method, pairs: &[(&'static str, &str)]) -> Option<String> {
        match check(&method, &headers(pairs)) {
            Ok(()) => None,
            Err(ApiError::Refused { field, .. }) => Some(field.to_string()),
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn bodies_must_be_json() {
        let json = ("content-type", "application/json; charset=utf-8");
        assert_eq!(refused_field(Method::POST, &[json]), None);
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ] {
            assert_eq!(
                refused_field(Method::POST, &[("content-type", ct)]).as_deref(),
                Some("Content-Type")
            );
        }
        assert_eq!(
            refused_field(Method::POST, &[]).as_deref(),
            Some("Content-Type")
        );
        assert_eq!(
            refused_field(Method::DELETE, &[("content-length", "3")]).as_deref(),
            Some("Content-Type")
        );
        assert_eq!(refused_field(Method::GET, &[]), None);
    }

    #[test]
    fn cross_site_mutations_are_refused() {
        let json = ("content-type", "application/json");
        for site in ["cross-site", "same-site"] {
            assert_eq!(
                refused_field(Method::POST, &[json, ("sec-fetch-site", site)]).as_deref(),
                Some("Sec-Fetch-Site")
            );
        }
        assert_eq!(
            refused_field(Method::POST, &[json, ("sec-fetch-site", "none")]),
            None
        );
        assert_eq!(
            refused_field(
                Method::DELETE,
                &[
                    ("origin", "https://evil.example"),
                    ("host", "127.0.0.1:8080")
                ]
            )
            .as_deref(),
            Some("Origin")
        );
        assert_eq!(
            refused_field(Method::DELETE, &[("origin", "null"), ("host", "x")]).as_deref(),
            Some("Origin")
        );
        assert_eq!(
            refused_field(
                Method::DELETE,
                &[
                    ("origin", "http://127.0.0.1:8080"),
                    ("host", "127.0.0.1:8080")
                ]
            ),
            None
        );
        // Reading is not changing: a cross-site GET is the page's problem
        // (the Host check and CSP cover it).
        assert_eq!(
            refused_field(Method::GET, &[("sec-fetch-site", "cross-site")]),
            None
        );
    }

    #[test]
    fn loopback_hosts() {
        for ok in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.",
            "app.localhost:1",
            "127.0.0.1",
            "127.1.2.3:65535",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1",
            "[::2]",
            "[::1]x",
            "localhost:80x",
            "localhost:123456",
            "0.0.0.0:8080",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }
}
