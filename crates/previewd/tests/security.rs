//! The daemon against hostile input: the real `previewd serve` on
//! loopback, each attack of issue 14 sent as an attacker would, and for
//! each the refusal asserted (status, JSON shape, field) and that nothing
//! was written.

mod daemon;

#[path = "security/auth.rs"]
mod auth;
#[path = "security/browser.rs"]
mod browser;
#[path = "security/config.rs"]
mod config;
#[path = "security/hostile.rs"]
mod hostile;
#[path = "security/shapes.rs"]
mod shapes;
#[path = "security/ssrf.rs"]
mod ssrf;
#[path = "security/starvation.rs"]
mod starvation;
#[path = "security/webhook.rs"]
mod webhook;

use daemon::{Daemon, http};
use serde_json::Value;

/// A token of the length `serve` insists on.
pub const TOKEN: &str = "sec-token-4c1Pq0Zr9tLm2Vb8Xn5Hw3Jd7Ks6Fa";

/// The reply as JSON, asserting the one error shape and its field.
pub fn refusal(status: u16, body: &str, want_status: u16, field: &str) -> Value {
    assert_eq!(status, want_status, "{body}");
    let v: Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"));
    assert!(v["error"].is_string(), "no error text: {v}");
    assert_eq!(v["field"], field, "{v}");
    v
}

/// The previews the daemon has, through the API.
pub fn previews(d: &Daemon, token: Option<&str>) -> Vec<Value> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let (status, body) = http(&d.addr, "GET", "/v1/previews", &headers, "");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Vec<Value>>(&body).expect("a JSON list")
}

/// A deploy dispatch body for `branch`.
pub fn deploy_body(branch: &str, callback: Option<&str>) -> String {
    let mut v =
        serde_json::json!({ "action": "deploy", "branch": branch, "commit_sha": "abc1234" });
    if let Some(c) = callback {
        v["callback_url"] = c.into();
    }
    v.to_string()
}
