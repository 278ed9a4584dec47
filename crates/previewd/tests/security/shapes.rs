//! Every refusal in one shape: `{"error", "field"}` JSON, whatever refused
//! it, and 5xx replies that carry a request id instead of internal text.

use crate::daemon::{Daemon, http, raw};
use crate::{previews, refusal};

#[test]
fn refusals_of_every_kind_are_json_naming_a_field() {
    let d = Daemon::start(&[(
        "PREVIEWD_GITHUB_WEBHOOK_SECRET",
        "webhook-secret-for-shapes",
    )]);
    let json = ("Content-Type", "application/json");
    // 405
    let (status, reply) = http(&d.addr, "GET", "/v1/dispatch", &[], "");
    refusal(status, &reply, 405, "method");
    // 404
    let (status, reply) = http(&d.addr, "GET", "/v2/anything", &[], "");
    refusal(status, &reply, 404, "path");
    // 413: a dispatch body over 64 KiB.
    let big = format!(
        r#"{{"action":"deploy","branch":"a","ai_run_id":"{}"}}"#,
        "x".repeat(70_000)
    );
    let (status, reply) = http(&d.addr, "POST", "/v1/dispatch", &[json], &big);
    refusal(status, &reply, 413, "body");
    // 414
    let path = format!("/v1/previews/{}", "a".repeat(3000));
    let (status, reply) = http(&d.addr, "GET", &path, &[], "");
    refusal(status, &reply, 414, "uri");
    // 431
    let mut request =
        String::from("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for i in 0..120 {
        request.push_str(&format!("X-Filler-{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    let (status, _, reply) = raw(&d.addr, request.as_bytes());
    refusal(status, &reply, 431, "headers");
    // 411: a webhook body without its length.
    let request = "POST /v1/github/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
        Content-Type: application/json\r\nX-GitHub-Event: ping\r\nX-GitHub-Delivery: d-1\r\n\
        X-Hub-Signature-256: sha256=0000000000000000000000000000000000000000000000000000000000000000\r\n\
        Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
    let (status, _, reply) = raw(&d.addr, request.as_bytes());
    refusal(status, &reply, 411, "Content-Length");
    // 415
    let (status, reply) = http(
        &d.addr,
        "POST",
        "/v1/dispatch",
        &[("Content-Type", "text/plain")],
        "{}",
    );
    refusal(status, &reply, 415, "Content-Type");
    // 400: a syntax error names line and column.
    let (status, reply) = http(
        &d.addr,
        "POST",
        "/v1/dispatch",
        &[json],
        "{\n  \"action\": deploy\n}",
    );
    let v = refusal(status, &reply, 400, "body");
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains("line 2") && error.contains("column"),
        "{error}"
    );
    // 422 on a path: the field named once, not `branch: branch: …`.
    let (status, reply) = http(&d.addr, "GET", "/v1/previews/a..b", &[], "");
    let v = refusal(status, &reply, 422, "branch");
    assert_eq!(v["error"], "branch: must not contain `..`");
    assert!(previews(&d, None).is_empty());
}

#[test]
fn a_5xx_carries_a_request_id_and_no_internal_text() {
    // No webhook secret: the webhook route cannot work, a 503.
    let d = Daemon::start(&[]);
    let body = "{}";
    let (status, reply) = http(
        &d.addr,
        "POST",
        "/v1/github/webhook",
        &[
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", "ping"),
        ],
        body,
    );
    assert_eq!(status, 503, "{reply}");
    let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
    let id = v["request_id"].as_str().expect("a request id").to_owned();
    assert!(v["field"].is_null(), "{v}");
    assert!(
        !reply.contains("PREVIEWD_GITHUB_WEBHOOK_SECRET"),
        "internal text in the reply: {reply}"
    );
    let lines = d.stop();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&id) && l.contains("PREVIEWD_GITHUB_WEBHOOK_SECRET")),
        "the cause is not logged under {id}: {lines:#?}"
    );
}

#[test]
fn a_request_whose_body_never_arrives_times_out_in_the_json_shape() {
    let d = Daemon::start(&[("PREVIEWD_SERVER_REQUEST_TIMEOUT_SECS", "1")]);
    // The head promises 100 bytes of body and none come.
    let request = "POST /v1/dispatch HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
        Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
    let (status, _, reply) = raw(&d.addr, request.as_bytes());
    refusal(status, &reply, 408, "body");
    assert!(previews(&d, None).is_empty());
}
