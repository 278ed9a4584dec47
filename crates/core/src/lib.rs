//! previewd's core: the model of a preview, the names and tags of its AWS
//! resources, the pure `plan()` that decides what to change, the pure
//! `decide()` that turns a pass's outcome into the next status, the
//! `Command`s that are the only way desired state changes, and the ports
//! (traits) through which the controller reaches storage and the cloud.
//!
//! Nothing in this crate performs IO or reads a clock: time arrives as a
//! value, observed cloud state arrives as data, and decisions leave as data.
//!
//! ```text
//!  desired (store row) ─┐
//!                       ├─▶ plan() ─▶ Vec<Change> ─▶ executor (controller)
//!  observed (cloud)   ──┘                                │ outcome
//!                                                         ▼
//!  row + Outcome + Policy ─▶ decide() ─▶ Decision (status, Action, reports)
//! ```
#![forbid(unsafe_code)]

pub mod access;
pub mod command;
pub mod decide;
pub mod delivery;
pub mod error;
pub mod gauges;
pub mod gc;
pub mod gc_report;
pub mod image;
pub mod key;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod naming;
pub mod observed;
pub mod operations;
pub mod outbox_report;
pub mod plan;
pub mod pool;
pub mod ports;
pub mod pr_comment;
pub mod projects;
pub mod pull_request;
pub mod render;
pub mod sleep;
pub mod stop_reason;
pub mod tagged;
pub mod tags;

pub use command::{Command, Effect, Expiry, Lifetime, ReportTo};
pub use error::{CloudError, ErrorClass};
pub use key::{BranchError, PreviewKey};
pub use model::*;
pub use naming::{NamingConfig, ResourceNames};
