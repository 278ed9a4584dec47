//! previewd's HTTP API: dispatch, previews, health.
#![forbid(unsafe_code)]
