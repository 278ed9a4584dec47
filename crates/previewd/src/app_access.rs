//! Access protection at start: a project whose previews authenticate
//! visitors is never served from a listener AWS would refuse its rules on.

use super::aws;
use crate::config::{CloudKind, Config};
use anyhow::Context;

/// Refuses to go on when a project has `[access]` and a listener of the
/// pool is not HTTPS (DescribeListeners), naming both: every `CreateRule`
/// there would fail. The simulator's listeners are HTTPS.
pub(crate) async fn refuse_plain_listeners(cfg: &Config) -> anyhow::Result<()> {
    let protected = cfg.protected_projects();
    if protected.is_empty() || cfg.cloud.kind != CloudKind::Aws {
        return Ok(());
    }
    let aws = aws(cfg).await;
    let mut refused = Vec::new();
    for arn in cfg.pool().arns() {
        let protocol = aws
            .listener_protocol(arn)
            .await
            .with_context(|| format!("access: reading the protocol of listener {arn}"))?;
        refused.extend(previewd_core::access::plain_listener(
            arn, &protocol, &protected,
        ));
    }
    if !refused.is_empty() {
        anyhow::bail!("refusing to serve: {}", refused.join("; "));
    }
    for p in cfg.project_list().iter().filter(|p| p.access.is_on()) {
        if let Some(access) = p.access.access() {
            tracing::info!(project = %p.project, auth = %access.auth.summary(), "access protection: preview rules authenticate before they forward");
        }
    }
    Ok(())
}
