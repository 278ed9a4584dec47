//! previewd-github against fake servers on 127.0.0.1: one test binary, one
//! module per area, the fake in `fake`.

mod app_auth;
mod callback_schema;
mod callback_targets;
mod callbacks;
mod comments;
mod deployments;
mod fake;
mod openapi;
mod rate_limits;
mod webhooks;
