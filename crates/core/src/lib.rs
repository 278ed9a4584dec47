//! previewd's core: the model of a preview, the names and tags of its AWS
//! resources, the pure `plan()` that decides what to change, the pure
//! `decide()` that turns a pass's outcome into the next status, and the ports
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

pub mod decide;
pub mod error;
pub mod gauges;
pub mod gc;
pub mod gc_report;
pub mod key;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod naming;
pub mod observed;
pub mod operations;
pub mod plan;
pub mod ports;
pub mod render;
pub mod report;
pub mod tagged;
pub mod tags;

pub use error::{CloudError, ErrorClass};
pub use key::{BranchError, PreviewKey};
pub use model::*;
pub use naming::{NamingConfig, ResourceNames};
