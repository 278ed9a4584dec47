//! A simulated visitor of the trace scenario: requests through the sim's
//! load balancer (`Sim::visit`, counted in the target group's
//! `RequestCount`); one the listener forwards to the waker goes to
//! previewd's real waker handler (in process, with the preview's Host),
//! and the visitor tries again after the `Retry-After` it answered, until
//! the preview itself answers. Between tries an uncounted probe
//! (`Sim::peek`, every [`PROBE`]) notes when the preview would first have
//! answered, which the visitor's own tries only see to within a
//! `Retry-After`.

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use previewd_sim::{Sim, Visit};
use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;
use tower::ServiceExt;

/// How often the probe looks while a visitor waits.
pub const PROBE: Duration = Duration::from_millis(100);

/// A visitor waiting longer than this for one request gives up on it.
pub const GIVE_UP: Duration = Duration::from_secs(600);

/// One wake, as the visitor who caused it saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Wake {
    /// From the first request to the preview answering (the probe).
    pub answering_secs: f64,
    /// From the first request to the visitor's own try being served.
    pub served_secs: f64,
    /// Answers the visitor got from the waker meanwhile.
    pub waker_answers: u32,
}

/// What one visitor's requests met.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Tally {
    /// Requests through the load balancer, tries included.
    pub requests: u64,
    pub served: u64,
    pub to_waker: u64,
    /// The load balancer's own 503 (a rule forwarding to no healthy
    /// target) or no rule at all: the visitor tried again after 1 s.
    pub unavailable: u64,
    /// The waker forwarded to but answering nothing for the host.
    pub waker_not_found: u64,
    pub gave_up: u64,
    #[serde(skip)]
    pub wakes: Vec<Wake>,
}

/// One request for `host` until the preview answers it.
pub async fn request(sim: &Sim, waker: &Router, host: &str, t: &mut Tally) -> anyhow::Result<()> {
    let first = Instant::now();
    let mut answering: Option<Instant> = None;
    let mut waker_answers = 0;
    loop {
        t.requests += 1;
        let wait = match sim.visit(host) {
            Visit::Served => {
                t.served += 1;
                if waker_answers > 0 {
                    let now = Instant::now();
                    t.wakes.push(Wake {
                        answering_secs: secs(answering.unwrap_or(now) - first),
                        served_secs: secs(now - first),
                        waker_answers,
                    });
                }
                return Ok(());
            }
            Visit::Waker => {
                t.to_waker += 1;
                waker_answers += 1;
                match ask_waker(waker, host).await? {
                    Some(after) => after,
                    None => {
                        t.waker_not_found += 1;
                        Duration::from_secs(1)
                    }
                }
            }
            Visit::Unavailable | Visit::NoRoute => {
                t.unavailable += 1;
                Duration::from_secs(1)
            }
        };
        if first.elapsed() > GIVE_UP {
            t.gave_up += 1;
            return Ok(());
        }
        wait_probing(sim, host, wait, &mut answering).await;
    }
}

/// The waker's answer to a client that is no browser: its `Retry-After`,
/// or `None` when it answers nothing for the host.
async fn ask_waker(waker: &Router, host: &str) -> anyhow::Result<Option<Duration>> {
    let req = Request::builder()
        .uri("/")
        .header(header::HOST, host)
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())?;
    let resp = waker.clone().oneshot(req).await?;
    if resp.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    anyhow::ensure!(
        resp.status() == StatusCode::SERVICE_UNAVAILABLE,
        "the waker answered {} for {host}",
        resp.status()
    );
    let after = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .context("the waker's 503 without a Retry-After in seconds")?;
    Ok(Some(Duration::from_secs(after)))
}

/// Waits `wait`, noting the first probe that finds the preview answering.
async fn wait_probing(sim: &Sim, host: &str, wait: Duration, answering: &mut Option<Instant>) {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if answering.is_none() && sim.peek(host) == Visit::Served {
            *answering = Some(Instant::now());
        }
        tokio::time::sleep_until((Instant::now() + PROBE).min(until)).await;
    }
}

fn secs(d: Duration) -> f64 {
    crate::scenarios::round3(d.as_secs_f64())
}
