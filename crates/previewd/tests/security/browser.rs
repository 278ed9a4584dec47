//! No driving the API from a browser, and no input that deceives a reader.

use crate::daemon::{Daemon, http, raw};
use crate::{deploy_body, previews, refusal};

#[test]
fn a_cross_site_text_plain_post_is_refused_and_writes_nothing() {
    // No token, on loopback: the set-up a web page in the operator's
    // browser could reach.
    let d = Daemon::start(&[]);
    let body = deploy_body("qanote/issue-2", None);
    // What a form or `fetch(…, {mode: "no-cors"})` can send without a
    // preflight.
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let (status, reply) = http(
            &d.addr,
            "POST",
            "/v1/dispatch",
            &[("Content-Type", ct), ("Origin", "https://evil.example")],
            &body,
        );
        refusal(status, &reply, 415, "Content-Type");
    }
    let (status, reply) = http(&d.addr, "POST", "/v1/dispatch", &[], &body);
    refusal(status, &reply, 415, "Content-Type");
    // JSON, but from another site: refused by Origin or Sec-Fetch-Site.
    let json = ("Content-Type", "application/json");
    let (status, reply) = http(
        &d.addr,
        "POST",
        "/v1/dispatch",
        &[json, ("Origin", "https://evil.example")],
        &body,
    );
    refusal(status, &reply, 403, "Origin");
    let (status, reply) = http(
        &d.addr,
        "POST",
        "/v1/dispatch",
        &[json, ("Sec-Fetch-Site", "cross-site")],
        &body,
    );
    refusal(status, &reply, 403, "Sec-Fetch-Site");
    let (status, reply) = http(
        &d.addr,
        "DELETE",
        "/v1/previews/qanote%2Fissue-2",
        &[("Sec-Fetch-Site", "cross-site")],
        "",
    );
    refusal(status, &reply, 403, "Sec-Fetch-Site");
    assert!(
        previews(&d, None).is_empty(),
        "a refused request wrote a row"
    );
    // The command-line client's request goes through.
    let (status, reply) = http(&d.addr, "POST", "/v1/dispatch", &[json], &body);
    assert_eq!(status, 202, "{reply}");
}

#[test]
fn a_dns_rebinding_host_is_refused_on_loopback() {
    let d = Daemon::start(&[]);
    let body = deploy_body("qanote/issue-3", None);
    for path in ["/v1/previews", "/", "/metrics"] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: rebind.evil.example:{}\r\nConnection: close\r\n\r\n",
            d.addr.rsplit(':').next().unwrap()
        );
        let (status, _, reply) = raw(&d.addr, request.as_bytes());
        refusal(status, &reply, 403, "Host");
    }
    let request = format!(
        "POST /v1/dispatch HTTP/1.1\r\nHost: rebind.evil.example\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, _, reply) = raw(&d.addr, request.as_bytes());
    refusal(status, &reply, 403, "Host");
    assert!(previews(&d, None).is_empty());
    // Loopback names are served.
    for host in ["localhost", "127.0.0.1", "[::1]"] {
        let request = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let (status, _, _) = raw(&d.addr, request.as_bytes());
        assert_eq!(status, 200, "{host}");
    }
}

#[test]
fn a_branch_with_a_right_to_left_override_is_refused_naming_the_rule() {
    let d = Daemon::start(&[]);
    let json = ("Content-Type", "application/json");
    for branch in [
        "qanote/\u{202e}24-eussi",
        "qanote/issue\u{200b}-42",
        "\u{feff}main",
        "a\u{2066}b",
    ] {
        let (status, reply) = http(
            &d.addr,
            "POST",
            "/v1/dispatch",
            &[json],
            &deploy_body(branch, None),
        );
        let v = refusal(status, &reply, 422, "branch");
        let error = v["error"].as_str().unwrap();
        assert!(error.contains("invisible or direction-changing"), "{error}");
        assert!(!error.starts_with("branch: branch:"), "{error}");
    }
    assert!(previews(&d, None).is_empty());
}

#[test]
fn every_page_carries_the_security_headers() {
    let d = Daemon::start(&[]);
    let json = ("Content-Type", "application/json");
    let (status, _) = http(
        &d.addr,
        "POST",
        "/v1/dispatch",
        &[json],
        &deploy_body("qanote/issue-4", None),
    );
    assert_eq!(status, 202);
    for path in [
        "/",
        "/previews/qanote%2Fissue-4",
        "/v1/previews",
        "/no-such-page",
    ] {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        let (_, head, _) = raw(&d.addr, request.as_bytes());
        for header in [
            "content-security-policy: default-src 'none'; style-src 'sha256-",
            "frame-ancestors 'none'",
            "x-content-type-options: nosniff",
            "referrer-policy: no-referrer",
            "x-frame-options: deny",
        ] {
            assert!(head.contains(header), "{path}: no {header:?} in\n{head}");
        }
    }
}
