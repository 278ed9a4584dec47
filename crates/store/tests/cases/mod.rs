//! The conformance cases, each an `async fn(Arc<dyn Store>)` written once.

mod commands;
mod deliveries;
mod events;
mod outbox;
mod previews;
mod races;
mod schedule;

pub use commands::*;
pub use deliveries::*;
pub use events::*;
pub use outbox::*;
pub use previews::*;
pub use races::*;
pub use schedule::*;
