//! A hostile run: 2,400 mixed requests an attacker might send — random
//! bytes, random JSON, forged tokens and signatures, strange paths,
//! methods and hosts — then no 5xx, no panic, no secret (or part of one)
//! in any log line, and no row but those of the requests it accepted.

use crate::TOKEN;
use crate::daemon::{Daemon, fake_github};
use previewd_github::signature_header;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const WEBHOOK_SECRET: &str = "Hx71Pq2Lm8ZtWs0Kd5Yg";
const GITHUB_TOKEN: &str = "ghp_A8s7D6f5G4h3J2k1L0m9N8";
const CALLBACK_SECRET: &str = "Vb4Nm3Qw9Er2Ty6Ui8Op";

/// One request on its own connection; the status, or 0 when the daemon
/// closed without answering (allowed for garbage that is not HTTP).
fn send(addr: &str, request: &[u8]) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(request);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn request(method: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

fn random_string(rng: &mut StdRng, max: usize) -> String {
    const ALPHABET: [&str; 14] = [
        "a",
        "/",
        ".",
        "-",
        "..",
        "@{",
        "\u{202e}",
        "\u{200b}",
        "é",
        "%2F",
        " ",
        "~",
        "\\",
        "qanote/issue-",
    ];
    (0..rng.random_range(0..max))
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
        .collect()
}

fn random_json(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 2 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>()),
        4 => json!(random_string(rng, 20)),
        5 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
        _ => {
            const KEYS: [&str; 7] = [
                "action",
                "branch",
                "commit_sha",
                "ai_run_id",
                "callback_url",
                "x",
                "",
            ];
            let mut m = serde_json::Map::new();
            for _ in 0..rng.random_range(0..6) {
                m.insert(
                    KEYS[rng.random_range(0..KEYS.len())].into(),
                    random_json(rng, depth + 1),
                );
            }
            Value::Object(m)
        }
    }
}

#[test]
fn a_hostile_run_gets_no_5xx_no_panic_no_secret_in_logs_and_writes_nothing_refused() {
    let (fake, _seen) = fake_github();
    let github_url = format!("http://{fake}");
    let d = Daemon::start(&[
        ("PREVIEWD_API_TOKEN", TOKEN),
        ("PREVIEWD_GITHUB_TOKEN", GITHUB_TOKEN),
        ("PREVIEWD_GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("PREVIEWD_CALLBACK_SECRET", CALLBACK_SECRET),
        ("PREVIEWD_GITHUB_API_URL", &github_url),
        ("PREVIEWD_PREVIEWS_PROJECT", "acme/shop"),
        ("PREVIEWD_LOG", "debug"),
    ]);
    let mut rng = StdRng::seed_from_u64(14);
    let bearer = format!("Bearer {TOKEN}");
    let json_ct = ("Content-Type".to_owned(), "application/json".to_owned());
    let mut accepted_branches = BTreeSet::new();
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    for i in 0..2400 {
        let (req, dispatch_branch) = match i % 8 {
            // Random bytes as a dispatch, with the right token.
            0 => {
                let body: Vec<u8> = (0..rng.random_range(0..200))
                    .map(|_| rng.random())
                    .collect();
                let h = vec![json_ct.clone(), ("Authorization".into(), bearer.clone())];
                (request("POST", "/v1/dispatch", &h, &body), None)
            }
            // Random JSON values as a dispatch, with the right token.
            1 | 2 => {
                let body = random_json(&mut rng, 0);
                let branch = body
                    .get("branch")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let h = vec![json_ct.clone(), ("Authorization".into(), bearer.clone())];
                (
                    request("POST", "/v1/dispatch", &h, body.to_string().as_bytes()),
                    branch,
                )
            }
            // A good body with a forged, partial or empty token.
            3 => {
                let forged = match rng.random_range(0..4) {
                    0 => "Bearer ".to_owned(),
                    1 => format!("Bearer {}", &TOKEN[..rng.random_range(0..TOKEN.len())]),
                    2 => format!("Basic {}", random_string(&mut rng, 10)),
                    _ => format!("Bearer {TOKEN}x{}", random_string(&mut rng, 3)),
                };
                let h = vec![json_ct.clone(), ("Authorization".into(), forged)];
                let body =
                    json!({"action": "deploy", "branch": "qanote/forged", "commit_sha": "abc1234"});
                (
                    request("POST", "/v1/dispatch", &h, body.to_string().as_bytes()),
                    None,
                )
            }
            // Webhooks: forged signatures, or a valid signature over junk.
            4 => {
                let body = random_json(&mut rng, 0).to_string();
                let signature = if rng.random::<bool>() {
                    signature_header(WEBHOOK_SECRET.as_bytes(), body.as_bytes())
                } else {
                    signature_header(b"guessed-secret", body.as_bytes())
                };
                let events = ["pull_request", "delete", "ping", "push", ""];
                let h = vec![
                    json_ct.clone(),
                    (
                        "X-GitHub-Event".into(),
                        events[rng.random_range(0..events.len())].into(),
                    ),
                    ("X-GitHub-Delivery".into(), format!("hostile-{i}")),
                    ("X-Hub-Signature-256".into(), signature),
                ];
                (
                    request("POST", "/v1/github/webhook", &h, body.as_bytes()),
                    None,
                )
            }
            // Strange paths and methods.
            5 => {
                let methods = ["GET", "DELETE", "PUT", "PATCH", "OPTIONS", "HEAD", "TRACE"];
                let method = methods[rng.random_range(0..methods.len())];
                let path = format!(
                    "/v1/previews/{}",
                    random_string(&mut rng, 30).replace(' ', "%20")
                );
                let h = vec![("Authorization".into(), bearer.clone())];
                (request(method, &path, &h, b""), None)
            }
            // Content types and origins a browser would send.
            6 => {
                let cts = [
                    "text/plain",
                    "application/x-www-form-urlencoded",
                    "application/jsonx",
                    "",
                ];
                let h = vec![
                    (
                        "Content-Type".into(),
                        cts[rng.random_range(0..cts.len())].into(),
                    ),
                    ("Authorization".into(), bearer.clone()),
                    ("Origin".into(), "https://evil.example".into()),
                ];
                let body = json!({"action": "destroy", "branch": "qanote/csrf"});
                (
                    request("POST", "/v1/dispatch", &h, body.to_string().as_bytes()),
                    None,
                )
            }
            // Not HTTP at all, or a broken head.
            _ => {
                let junk: Vec<u8> = (0..rng.random_range(1..300))
                    .map(|_| rng.random())
                    .collect();
                let mut r = b"GET / HTTP/1.1\r\nHost: ".to_vec();
                r.extend_from_slice(&junk);
                r.extend_from_slice(b"\r\n\r\n");
                (if rng.random::<bool>() { r } else { junk }, None)
            }
        };
        let (status, reply) = send(&d.addr, &req);
        *statuses.entry(status).or_default() += 1;
        assert!(status < 500, "request {i} got {status}: {reply}");
        if (200..300).contains(&status) && i % 8 != 4 {
            accepted_branches.extend(dispatch_branch);
        }
    }
    // Every row belongs to a request that was accepted.
    let (status, body) = crate::daemon::http(
        &d.addr,
        "GET",
        "/v1/previews",
        &[("Authorization", &bearer)],
        "",
    );
    assert_eq!(status, 200);
    let rows: Vec<Value> = serde_json::from_str(&body).unwrap();
    for row in &rows {
        let branch = row["branch"].as_str().unwrap();
        assert!(
            accepted_branches.contains(branch),
            "row {branch:?} was written by a refused request"
        );
    }
    let lines = d.stop();
    assert!(
        !lines.iter().any(|l| l.contains("panicked")),
        "a panic: {:#?}",
        lines
            .iter()
            .filter(|l| l.contains("panicked"))
            .collect::<Vec<_>>()
    );
    for secret in [TOKEN, WEBHOOK_SECRET, GITHUB_TOKEN, CALLBACK_SECRET] {
        // Any eight characters in a row of a secret count as part of it.
        for part in secret.as_bytes().windows(8) {
            let part = std::str::from_utf8(part).unwrap();
            assert!(
                !lines.iter().any(|l| l.contains(part)),
                "{part:?} of a secret reached the log"
            );
        }
    }
    eprintln!("statuses: {statuses:?}; rows {}", rows.len());
}
