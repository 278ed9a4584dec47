//! previewd's benchmark harness: the real store, controller and API on the
//! simulated AWS with AWS-like latency and rate limits, every scenario run
//! against a naive per-preview baseline on the same sim.
//!
//! ```text
//!  scenario ──▶ Fleet::{Previewd: store + controller + API (HTTP on 127.0.0.1)
//!                      Baseline: one deploy script per preview}
//!                 └──▶ Sim (latency, token buckets, call counters)
//!  result  ──▶ one JSON line on stdout, a summary on stderr
//! ```
#![forbid(unsafe_code)]

pub mod attributed;
pub mod baseline;
pub mod bound;
pub mod clock;
pub mod counted;
pub mod harness;
pub mod scenarios;
pub mod svg;
pub mod tap;
pub mod visitor;
